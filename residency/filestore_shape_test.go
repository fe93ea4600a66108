package residency_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/domicile-go/domicile/residency"
)

// storeFile returns the bytes of a closed store file of n imported
// accounts, and bbolt's page size, the newer meta page's offset and its
// root page (checked to be a bbolt file of version 2).
func storeFile(t *testing.T, n int) (data []byte, pageSize, metaAt int, root uint64) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "good.db")
	r, err := residency.Open(ctx, residency.WithPath(path))
	if err != nil {
		t.Fatal(err)
	}
	if res, err := r.Import(ctx, func(yield func(residency.ImportRow) bool) {
		for j := range n {
			if !yield(residency.ImportRow{AccountID: fmt.Sprintf("acct-%05d", j), Country: "DE"}) {
				return
			}
		}
	}); err != nil || res.Imported != n {
		t.Fatalf("Import: %+v, %v", res, err)
	}
	r.Close()
	if data, err = os.ReadFile(path); err != nil {
		t.Fatal(err)
	}
	ne := binary.LittleEndian
	if ne.Uint32(data[16:]) != 0xED0CDAED || ne.Uint32(data[16+4:]) != 2 {
		t.Fatal("not a little-endian bbolt file of version 2")
	}
	pageSize = int(ne.Uint32(data[16+8:]))
	var best uint64
	for i := range 2 {
		m := i*pageSize + 16
		if tx := ne.Uint64(data[m+48:]); i == 0 || tx > best {
			best, metaAt, root = tx, m, ne.Uint64(data[m+16:])
		}
	}
	return data, pageSize, metaAt, root
}

// resum rewrites the checksum of the meta page at metaAt.
func resum(data []byte, metaAt int) {
	h := fnv.New64a()
	h.Write(data[metaAt : metaAt+56])
	binary.LittleEndian.PutUint64(data[metaAt+56:], h.Sum64())
}

// openInChild opens the store file data both ways in a child process
// (cyclicOpenChild) and fails unless both opens are ErrCorrupt.
func openInChild(t *testing.T, name string, data []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestFileStoreCyclicBranchPage$")
	cmd.Env = append(os.Environ(), "DOMICILE_CYCLIC_OPEN="+path)
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("child: read-only ErrCorrupt\nchild: WithPath ErrCorrupt\n")) {
		first, _, _ := bytes.Cut(out, []byte("\n\n"))
		t.Errorf("%s: opening it: %v; want ErrCorrupt from both opens; output:\n%.600s", name, err, first)
	}
}

// TestFileStoreNoFreelist damages a store file's newer meta page (with
// its checksum) to say that the file keeps no freelist, which domicile's
// files always keep (boltOptions). bbolt's writable Open then rebuilds the
// freelist by walking every bucket's tree, before checkTrees could check
// them, in a goroutine of its own: a branch page pointing at itself, or
// at a page past the file, crashed the process (from review).
func TestFileStoreNoFreelist(t *testing.T) {
	data, pageSize, metaAt, _ := storeFile(t, 3000)
	ne := binary.LittleEndian
	ne.PutUint64(data[metaAt+32:], ^uint64(0)) // bbolt's PgidNoFreelist
	resum(data, metaAt)
	openInChild(t, "no-freelist", data)
	for name, child := range map[string]uint64{"self": 0, "past the file": 1 << 40} {
		damaged := bytes.Clone(data)
		found := false
		for pg := 2; pg < len(damaged)/pageSize && !found; pg++ {
			o := pg * pageSize
			if ne.Uint64(damaged[o:]) != uint64(pg) || ne.Uint16(damaged[o+8:]) != 0x01 { // a live branch page
				continue
			}
			found = true
			if child == 0 {
				child = uint64(pg)
			}
			ne.PutUint64(damaged[o+16+8:], child) // element 0's child
		}
		if !found {
			t.Fatal("no branch page in a store of 3000 accounts")
		}
		openInChild(t, "no-freelist, a branch's child "+name, damaged)
	}
}
