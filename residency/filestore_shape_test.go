package residency_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
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
	if res, err := r.Import(ctx, rowsIn("acct-%05d", n)); err != nil || res.Imported != n {
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
	path := filepath.Join(t.TempDir(), "damaged.db")
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

// branchRoot rewrites the store file data (as storeFile returns it) so
// that its root bucket's root is a branch page, with one child: the old
// root leaf, copied to a new page past the old end. bbolt makes such
// roots of files whose root leaf outgrows a page (many large inline
// buckets); child, if not 0, is the branch's child page instead.
func branchRoot(t *testing.T, data []byte, pageSize, metaAt int, root, child uint64) []byte {
	t.Helper()
	ne := binary.LittleEndian
	o := int(root) * pageSize
	if ne.Uint16(data[o+8:]) != 0x02 || ne.Uint32(data[o+12:]) != 0 {
		t.Fatal("the root is not a leaf of one page")
	}
	leaf := ne.Uint64(data[metaAt+40:]) // the high-water page: a new one
	if end := int(leaf+1) * pageSize; len(data) < end {
		data = append(data, make([]byte, end-len(data))...)
	}
	copy(data[int(leaf)*pageSize:], data[o:o+pageSize])
	ne.PutUint64(data[int(leaf)*pageSize:], leaf)
	if child == 0 {
		child = leaf
	}
	// The branch's key is its child's first: the leaf's element 0's key.
	e := o + 16
	first := bytes.Clone(data[e+int(ne.Uint32(data[e+4:])):][:ne.Uint32(data[e+8:])])
	clear(data[o+8 : o+pageSize])
	ne.PutUint16(data[o+8:], 0x01) // a branch
	ne.PutUint16(data[o+10:], 1)   // of one element
	ne.PutUint32(data[o+16:], 16)  // whose key follows it
	ne.PutUint32(data[o+16+4:], uint32(len(first)))
	ne.PutUint64(data[o+16+8:], child)
	copy(data[o+32:], first)
	ne.PutUint64(data[metaAt+40:], leaf+1)
	resum(data, metaAt)
	return data
}

// TestFileStoreBranchRoot: a file whose root bucket's root is a branch
// opens, both ways, and is read and written; one whose root branch points
// at itself is ErrCorrupt. checkTrees walked only a root leaf's buckets,
// and bbolt the cycle of a root branch, to a fatal stack overflow (from
// review).
func TestFileStoreBranchRoot(t *testing.T) {
	ctx := context.Background()
	data, pageSize, metaAt, root := storeFile(t, 3)
	path := filepath.Join(t.TempDir(), "branch-root.db")
	if err := os.WriteFile(path, branchRoot(t, bytes.Clone(data), pageSize, metaAt, root, 0), 0o600); err != nil {
		t.Fatal(err)
	}
	ls, err := residency.OpenFileStoreReadOnly(ctx, path)
	if err != nil {
		t.Fatalf("OpenFileStoreReadOnly of a file with a branch root: %v", err)
	}
	accounts, entries := 0, 0
	err = ls.Load(ctx, func(residency.StoredAccount) error { accounts++; return nil })
	if err == nil {
		err = ls.LogEntries(ctx, 0, func(int64, []byte) error { entries++; return nil })
	}
	ls.Close()
	if err != nil || accounts != 3 || entries != 3 {
		t.Fatalf("reading a file with a branch root: %d accounts, %d entries, %v; want 3, 3", accounts, entries, err)
	}
	r, err := residency.Open(ctx, residency.WithPath(path))
	if err != nil {
		t.Fatalf("Open of a file with a branch root: %v", err)
	}
	place(t, r, "after", "DE")
	r.Close()
	r, err = residency.Open(ctx, residency.WithPath(path))
	if err != nil {
		t.Fatalf("Open after a write: %v", err)
	}
	if _, err := r.Lookup("after"); err != nil {
		t.Errorf("Lookup after reopening: %v", err)
	}
	r.Close()

	openInChild(t, "a root branch pointing at itself", branchRoot(t, bytes.Clone(data), pageSize, metaAt, root, root))
}

// TestFileStoreCyclicBranchPage damages a store file the way one
// flipped bit of a child page number can: a branch page whose first
// element points back at the page itself. README, Durability: a damaged
// file gets ErrCorrupt, "Never a panic". Opening it (read-only, as the
// audit tool does, or with WithPath) walked the cycle inside bbolt and the
// process died of a fatal stack overflow (or ran for ever), which no
// recover catches (from an adversarial trial); checkTrees now refuses it.
// Each open runs in a child process (openInChild), so that the test
// reports a crash instead of dying of it.
func TestFileStoreCyclicBranchPage(t *testing.T) {
	if path := os.Getenv("DOMICILE_CYCLIC_OPEN"); path != "" {
		cyclicOpenChild(path)
		return
	}
	data, pageSize, _, _ := storeFile(t, 3000)
	ne := binary.LittleEndian
	branches := 0
	for pg := 2; pg < len(data)/pageSize && branches < 2; pg++ {
		o := pg * pageSize
		if ne.Uint64(data[o:]) != uint64(pg) || ne.Uint16(data[o+8:]) != 0x01 { // a live branch page
			continue
		}
		branches++
		damaged := bytes.Clone(data)
		ne.PutUint64(damaged[o+16+8:], uint64(pg)) // element 0's child: the page itself
		openInChild(t, fmt.Sprintf("branch page %d pointing at itself", pg), damaged)
	}
	if branches == 0 {
		t.Fatal("no branch page in a store of 3000 accounts")
	}
}

// cyclicOpenChild opens the store file at path read-only and reads all of
// it, then opens it with WithPath, and says what each open answered.
func cyclicOpenChild(path string) {
	ctx := context.Background()
	say := func(what string, err error) {
		switch {
		case errors.Is(err, residency.ErrCorrupt):
			fmt.Printf("child: %s ErrCorrupt\n", what)
		default:
			fmt.Printf("child: %s %v\n", what, err)
		}
	}
	ls, err := residency.OpenFileStoreReadOnly(ctx, path)
	if err == nil {
		err = ls.Load(ctx, func(residency.StoredAccount) error { return nil })
		if err == nil {
			err = ls.LogEntries(ctx, 0, func(int64, []byte) error { return nil })
		}
		ls.Close()
	}
	say("read-only", err)
	r, err := residency.Open(ctx, residency.WithPath(path))
	if err == nil {
		r.Close()
	}
	say("WithPath", err)
}

// TestFileStoreFlippedTailKey flips one bit in the name of the meta
// bucket's "tail" key, where the audit log entries of the last few commits
// wait. README, Durability: "Every record carries a CRC-32C of its key and
// value, and the file counts its records, so damage is refused rather than
// loaded as another state"; a damaged file is ErrCorrupt. The file opened
// instead, writable and read-only, with the log cut short, and Verify
// passed: the next write would reuse the lost entries' indexes (from an
// adversarial trial).
func TestFileStoreFlippedTailKey(t *testing.T) {
	data, _, _, _ := storeFile(t, 2)
	// The meta bucket's leaf: "counts" and its value, "format" "9", "tail"
	// and its value. Copies in free pages are left by earlier commits:
	// flip the bit in each.
	n := 0
	for at := bytes.Index(data, []byte("format9tail")); at >= 0; at = bytes.Index(data, []byte("format9tail")) {
		data[at+len("format9")] ^= 0x01 // "tail" -> "uail"
		n++
	}
	if n == 0 {
		t.Fatal("no meta leaf holding a tail")
	}
	openInChild(t, "a meta bucket whose tail key has a bit flipped", data)
}
