package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/domicile-go/domicile/auditlog"
	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"
)

// keys writes a key pair named example.com/domicile into dir.
func keys(t *testing.T, dir, prefix string) (key, pub string) {
	t.Helper()
	key, pub = filepath.Join(dir, prefix+".key"), filepath.Join(dir, prefix+".pub")
	if code, _, log := auditRun(t, "keygen", "-name", "example.com/domicile", "-key", key, "-pub", pub); code != 0 {
		t.Fatalf("keygen exited %d: %s", code, log)
	}
	return key, pub
}

// grow makes changes of every kind through a Router: placements, a
// transfer agreement, a move across regions, a data center drained and
// activated again.
func grow(t *testing.T, r *residency.Router, prefix string) {
	t.Helper()
	ctx := context.Background()
	for _, c := range []string{"DE", "FR", "US"} {
		if _, err := r.Place(ctx, residency.PlaceRequest{AccountID: prefix + "-" + c, Country: c}); err != nil {
			t.Fatal(err)
		}
	}
	id := prefix + "-DE"
	if err := r.GrantTransfer(ctx, residency.Transfer{AccountID: id, To: region.US, Reference: "T-" + prefix}); err != nil {
		t.Fatal(err)
	}
	m, err := r.BeginMove(ctx, id, "aws-us-west-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.CompleteMove(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if err := r.Drain(ctx, "linode-us"); err != nil {
		t.Fatal(err)
	}
	if err := r.Activate(ctx, "linode-us"); err != nil {
		t.Fatal(err)
	}
}

// growFile opens the store file at path with a Router, grows it and
// closes it.
func growFile(t *testing.T, path, prefix string) {
	t.Helper()
	r, err := residency.Open(context.Background(), residency.WithPath(path))
	if err != nil {
		t.Fatal(err)
	}
	grow(t, r, prefix)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

// writeCheckpoint runs checkpoint and keeps its output in a file.
func writeCheckpoint(t *testing.T, db, key, file string) []byte {
	t.Helper()
	code, out, log := auditRun(t, "checkpoint", "-db", db, "-key", key)
	if code != 0 {
		t.Fatalf("checkpoint exited %d: %s", code, log)
	}
	if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	return []byte(out)
}

// wantVerify runs verify and checks its exit status and that its output
// holds each of want.
func wantVerify(t *testing.T, name string, wantCode int, db, pub, checkpoint string, want ...string) {
	t.Helper()
	wantRun(t, name, wantCode, []string{"verify", "-db", db, "-pub", pub, "-checkpoint", checkpoint}, want...)
}

// wantHistory runs history for account as wantVerify runs verify.
func wantHistory(t *testing.T, name string, wantCode int, db, pub, checkpoint, account string, want ...string) {
	t.Helper()
	wantRun(t, name, wantCode, []string{"history", "-db", db, "-pub", pub, "-checkpoint", checkpoint, "-account", account}, want...)
}

// wantRun runs the tool with args and checks its exit status and that its
// output holds each of want.
func wantRun(t *testing.T, name string, wantCode int, args []string, want ...string) {
	t.Helper()
	code, out, log := auditRun(t, args...)
	if code != wantCode {
		t.Errorf("%s: %s exited %d, want %d\nstdout: %s\nstderr: %s", name, args[0], code, wantCode, out, log)
		return
	}
	for _, w := range want {
		if !strings.Contains(out+log, w) {
			t.Errorf("%s: %s's output lacks %q:\nstdout: %s\nstderr: %s", name, args[0], w, out, log)
		}
	}
}

// seal is the file store's record form (residency/codec.go): the payload
// and CRC-32C of the kind, the key and the payload, as one who rewrites
// the file would compute it.
func seal(kind byte, key, payload []byte) []byte {
	c := crc32.Update(0, crc32.MakeTable(crc32.Castagnoli), append(append([]byte{kind}, key...), payload...))
	return binary.LittleEndian.AppendUint32(bytes.Clone(payload), c)
}

// logEntry returns entry i of the log of the store file path.
func logEntry(t *testing.T, path string, i int64) []byte {
	t.Helper()
	ctx := context.Background()
	r, err := residency.Open(ctx, residency.WithPath(path))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var entry []byte
	err = r.LogEntries(ctx, i, func(_ int64, e []byte) error {
		entry = e
		return errStop
	})
	if err != nil && !errors.Is(err, errStop) {
		t.Fatal(err)
	}
	return entry
}

var errStop = errors.New("stop")

// tamper copies the store file at src and changes the copy with fn.
func tamper(t *testing.T, src string, fn func(tx *bolt.Tx) error) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "tampered.db")
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(dst, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	return dst
}

// logPacked is the chunk or tail of the log (format 9) that holds an
// entry: its entries, each its stored hashes and stored entry, from index
// first, and put, which stores entries in its place, resealed.
type logPacked struct {
	first   int64
	entries [][2][]byte
	put     func(entries [][2][]byte) error
}

// findPacked returns the chunk of the log bucket, or the tail in the meta
// bucket, that holds entry i. A chunk's key is its first index (8 bytes,
// big-endian) and its number of entries (1 byte); the tail's value starts
// with both as uvarints; each entry is packed as its stored hashes, the
// length of the stored entry (uvarint) and the stored entry.
func findPacked(tx *bolt.Tx, i int64) (logPacked, error) {
	split := func(first, n int64, p []byte) [][2][]byte {
		var out [][2][]byte
		for x := first; x < first+n; x++ {
			h := int(tlog.StoredHashCount(x+1)-tlog.StoredHashCount(x)) * 32
			l, w := binary.Uvarint(p[h:])
			out = append(out, [2][]byte{bytes.Clone(p[:h]), bytes.Clone(p[h+w : h+w+int(l)])})
			p = p[h+w+int(l):]
		}
		return out
	}
	pack := func(entries [][2][]byte) []byte {
		var p []byte
		for _, e := range entries {
			p = append(binary.AppendUvarint(append(p, e[0]...), uint64(len(e[1]))), e[1]...)
		}
		return p
	}
	log := tx.Bucket([]byte("log"))
	c := log.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		first, n := int64(binary.BigEndian.Uint64(k)), int64(k[8])
		if i < first || i >= first+n {
			continue
		}
		return logPacked{first, split(first, n, v[:len(v)-4]), func(entries [][2][]byte) error {
			if err := log.Delete(bytes.Clone(k)); err != nil || len(entries) == 0 {
				return err
			}
			nk := append(index(first), byte(len(entries)))
			return log.Put(nk, seal('l', nk, pack(entries)))
		}}, nil
	}
	meta := tx.Bucket([]byte("meta"))
	v := meta.Get([]byte("tail"))
	if v == nil {
		return logPacked{}, errors.New("no tail")
	}
	first, w1 := binary.Uvarint(v)
	n, w2 := binary.Uvarint(v[w1:])
	if i < int64(first) || i >= int64(first+n) {
		return logPacked{}, fmt.Errorf("no entry %d", i)
	}
	return logPacked{int64(first), split(int64(first), int64(n), v[w1+w2:len(v)-4]), func(entries [][2][]byte) error {
		if len(entries) == 0 {
			return meta.Delete([]byte("tail"))
		}
		p := binary.AppendUvarint(binary.AppendUvarint(nil, first), uint64(len(entries)))
		return meta.Put([]byte("tail"), seal('l', []byte("tail"), append(p, pack(entries)...)))
	}}, nil
}

func index(i int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(i)) }

// rewriteLog copies the store file db and rewrites each entry of its log
// of 16 as fn returns it, and every stored hash to match, as one who
// rewrites the file and the tree would.
func rewriteLog(t *testing.T, db string, fn func(i int64, entry []byte) []byte) string {
	t.Helper()
	var all [][]byte
	for i := range int64(16) {
		all = append(all, fn(i, logEntry(t, db, i)))
	}
	var hashes auditlog.MemoryHashes
	if _, err := hashes.Append(all...); err != nil {
		t.Fatal(err)
	}
	return tamper(t, db, func(tx *bolt.Tx) error {
		for i, e := range all {
			p, err := findPacked(tx, int64(i))
			if err != nil {
				return err
			}
			var indexes []int64
			for x := tlog.StoredHashCount(int64(i)); x < tlog.StoredHashCount(int64(i)+1); x++ {
				indexes = append(indexes, x)
			}
			hs, err := hashes.ReadHashes(indexes)
			if err != nil {
				return err
			}
			var stored []byte
			for _, h := range hs {
				stored = append(stored, h[:]...)
			}
			p.entries[int64(i)-p.first] = [2][]byte{stored, e}
			if err := p.put(p.entries); err != nil {
				return err
			}
		}
		return nil
	})
}

// TestVerifyFile keeps checkpoints of a store file, and checks that verify
// accepts the log as it grows honestly and refuses every kind of
// tampering, naming what fails.
func TestVerifyFile(t *testing.T) {
	dir := t.TempDir()
	key, pub := keys(t, dir, "log")
	otherKey, _ := keys(t, dir, "other")
	db := filepath.Join(dir, "domicile.db")
	growFile(t, db, "a")
	c1 := filepath.Join(dir, "c1")
	writeCheckpoint(t, db, key, c1)
	wantVerify(t, "unchanged", 0, db, pub, c1, "OK: the log of 8 entries extends the checkpoint of 8", "3 accounts and 1 data center statuses agree")

	growFile(t, db, "b")
	wantVerify(t, "grown", 0, db, pub, c1, "OK: the log of 16 entries extends the checkpoint of 8", "6 accounts")
	c2 := filepath.Join(dir, "c2")
	signed := writeCheckpoint(t, db, key, c2)
	wantVerify(t, "grown, newer checkpoint", 0, db, pub, c2, "OK: the log of 16 entries extends the checkpoint of 16")

	code, out, log := auditRun(t, "history", "-db", db, "-pub", pub, "-checkpoint", c2, "-account", "a-DE")
	if code != 0 {
		t.Fatalf("history exited %d: %s", code, log)
	}
	if !strings.Contains(out, `4 entries of account "a-DE", each proved in the checkpoint of 16 entries`) || strings.Count(out, "\n") != 5 {
		t.Errorf("history output:\n%s", out)
	}
	wantHistory(t, "unknown account", 0, db, pub, c2, "A-DE", `no entries of account "A-DE" in the checkpoint of 16 entries (account IDs are case-sensitive)`)
	wantHistory(t, "one entry", 0, db, pub, c2, "a-FR", "\n1 entry of account \"a-FR\", proved in the checkpoint of 16 entries\n")
	wantHistory(t, "older checkpoint", 0, db, pub, c1, "a-DE", `entries of account "a-DE", each proved in the checkpoint of 8 entries; the log now holds 16, keep a newer checkpoint to see later ones`)

	// A checkpoint whose text was changed after signing.
	forged := filepath.Join(dir, "forged")
	os.WriteFile(forged, bytes.Replace(signed, []byte("\n16\n"), []byte("\n15\n"), 1), 0o644)
	wantVerify(t, "forged checkpoint", 1, db, pub, forged, "invalid checkpoint signature")
	// A checkpoint signed by another key with the log's name.
	other := filepath.Join(dir, "other")
	writeCheckpoint(t, db, otherKey, other)
	wantVerify(t, "checkpoint of another key", 1, db, pub, other, "not signed by a known key")
	// A checkpoint of another log, signed with the log's key: history too
	// checks every entry it covers, not only the account's (here none).
	otherDB := filepath.Join(dir, "other.db")
	growFile(t, otherDB, "z")
	otherLog := filepath.Join(dir, "other-log")
	writeCheckpoint(t, otherDB, key, otherLog)
	wantVerify(t, "checkpoint of another log", 1, db, pub, otherLog, "the checkpoint is of another log")
	wantHistory(t, "checkpoint of another log", 1, db, pub, otherLog, "a-DE", "the checkpoint is of another log")
	wantHistory(t, "checkpoint of another log, account without entries", 1, db, pub, otherLog, "nobody", "the checkpoint is of another log")

	// The log cut short: its last entry (with its hashes) removed.
	cut := tamper(t, db, func(tx *bolt.Tx) error {
		p, err := findPacked(tx, 15)
		if err != nil {
			return err
		}
		if p.first+int64(len(p.entries)) != 16 {
			return errors.New("entry 15 is not the last")
		}
		return p.put(p.entries[:len(p.entries)-1])
	})
	wantVerify(t, "log cut short", 1, cut, pub, c2, "log shorter than its checkpoint")
	wantHistory(t, "log cut short", 1, cut, pub, c2, "a-DE", "log shorter than its checkpoint")
	// Against an older checkpoint the log still extends it, but the stored
	// state is ahead of the log: linode-us was activated again.
	wantVerify(t, "log cut short, older checkpoint", 1, cut, pub, c1, "stored status of data center linode-us (active) disagrees with the log (draining)")

	// An entry rewritten, its checksum made right: the account was placed
	// elsewhere. The store keeps the entry in binary, or as its JSON (as
	// format 7 did), which it reads as it is: the rewritten entry is JSON.
	entry1 := logEntry(t, db, 1)
	rewritten := tamper(t, db, func(tx *bolt.Tx) error {
		p, err := findPacked(tx, 1)
		if err != nil {
			return err
		}
		var c map[string]any
		if err := json.Unmarshal(entry1, &c); err != nil {
			return err
		}
		c["placement"].(map[string]any)["datacenter"] = "aws-eu-central-1"
		e, _ := json.Marshal(c)
		p.entries[1-p.first][1] = e // its hashes kept as they are
		return p.put(p.entries)
	})
	wantVerify(t, "entry rewritten", 1, rewritten, pub, c1, "entry 1: entry does not match its stored hashes")
	wantHistory(t, "entry rewritten, another account's history", 1, rewritten, pub, c1, "nobody", "entry 1: entry does not match its stored hashes")

	// Every entry of a-DE rewritten as a-XX's, and every stored hash
	// recomputed to match: each entry agrees with its hashes, and the tree
	// they make is another than the checkpoint's. Checking only a-DE's
	// entries, history would find none and say so at exit 0.
	renamed := rewriteLog(t, db, func(_ int64, e []byte) []byte {
		return bytes.ReplaceAll(e, []byte(`"account_id":"a-DE"`), []byte(`"account_id":"a-XX"`))
	})
	wantHistory(t, "account rewritten as another, hashes recomputed", 1, renamed, pub, c2, "a-DE", "the first 16 entries hash to", "(the log was rewritten since, or the checkpoint is of another log)")
	wantHistory(t, "account rewritten as another, hashes recomputed, the other's history", 1, renamed, pub, c2, "a-XX", "(the log was rewritten since, or the checkpoint is of another log)")
	wantVerify(t, "account rewritten as another, hashes recomputed", 1, renamed, pub, c2, "(the log was rewritten since, or the checkpoint is of another log)")
	// An entry rewritten into one that does not decode: history names the
	// entry that disagrees with its hashes. With its hashes recomputed and
	// the log checkpointed again, the entry is the checkpoint's: history
	// says that it does not decode, and fails.
	garbled := func(i int64, e []byte) []byte {
		if i == 1 {
			return []byte(`{"placement":5}`)
		}
		return e
	}
	undecodable := tamper(t, db, func(tx *bolt.Tx) error {
		p, err := findPacked(tx, 1)
		if err != nil {
			return err
		}
		p.entries[1-p.first][1] = garbled(1, nil)
		return p.put(p.entries)
	})
	wantHistory(t, "entry rewritten, does not decode", 1, undecodable, pub, c2, "a-FR", "the log's first 16 entries are not those of the checkpoint: auditlog: entry 1: entry does not match its stored hashes")
	undecodable = rewriteLog(t, db, garbled)
	resigned := filepath.Join(dir, "resigned")
	writeCheckpoint(t, undecodable, key, resigned)
	wantHistory(t, "entry in the checkpoint does not decode", 1, undecodable, pub, resigned, "a-DE", "audit history: entry 1, in the checkpoint, does not decode: residency: ")
	// A chunk of the log damaged (its checksum no longer matches): the
	// store cannot read the log, which history does not call another log.
	// A log of 24 entries has chunks (one of 16 may still be all in the
	// tail, whose damage the store finds when it opens).
	chunked := filepath.Join(dir, "chunked.db")
	for _, prefix := range []string{"c", "d", "e"} {
		growFile(t, chunked, prefix)
	}
	c3 := filepath.Join(dir, "c3")
	writeCheckpoint(t, chunked, key, c3)
	damaged := tamper(t, chunked, func(tx *bolt.Tx) error {
		k, v := tx.Bucket([]byte("log")).Cursor().First()
		if k == nil {
			return errors.New("no chunk in a log of 24 entries")
		}
		v = bytes.Clone(v)
		v[len(v)-1] ^= 1
		return tx.Bucket([]byte("log")).Put(bytes.Clone(k), v)
	})
	wantHistory(t, "chunk damaged", 1, damaged, pub, c3, "c-DE", "audit history: reading the log's first 24 entries: auditlog: entry 0: ", "residency: store is damaged")

	// A state record rewritten, its checksum made right: account a-FR
	// claims the placement of b-US.
	state := tamper(t, db, func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("accounts"))
		v := b.Get([]byte("b-US"))
		return b.Put([]byte("a-FR"), seal('p', []byte("a-FR"), v[:len(v)-4]))
	})
	wantVerify(t, "state rewritten", 1, state, pub, c2, `stored account "a-FR" disagrees with the log`)

	// A data center status rewritten.
	status := tamper(t, db, func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("datacenters"))
		return b.Delete([]byte("linode-us"))
	})
	wantVerify(t, "status removed", 1, status, pub, c2)

	// Usage errors.
	for _, args := range [][]string{
		{"verify", "-db", db, "-pub", pub},
		{"verify", "-db", db, "-checkpoint", c1},
		{"history", "-db", db, "-pub", pub, "-checkpoint", c1},
		{"checkpoint", "-db", db},
	} {
		if code, _, _ := auditRun(t, args...); code != 2 {
			t.Errorf("audit %q exited %d, want 2", args, code)
		}
	}
}

// TestCheckpointIsTheRouters checks that the tool's checkpoint is the one
// the Router signs, and that the tool opens the file without writing it.
func TestCheckpointIsTheRouters(t *testing.T) {
	dir := t.TempDir()
	key, pub := keys(t, dir, "log")
	db := filepath.Join(dir, "domicile.db")
	growFile(t, db, "a")
	signer, err := readSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := readVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r, err := residency.Open(ctx, residency.WithPath(db), residency.WithLogSigner(signer))
	if err != nil {
		t.Fatal(err)
	}
	signed, err := r.SignedCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want, err := auditlog.OpenCheckpoint(signed, verifier)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	before, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	out := writeCheckpoint(t, db, key, filepath.Join(dir, "c"))
	got, err := auditlog.OpenCheckpoint(out, verifier)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("checkpoint = %v, the Router's %v", got, want)
	}
	wantVerify(t, "the Router's checkpoint", 0, db, pub, filepath.Join(dir, "c"))
	if after, err := os.ReadFile(db); err != nil || !bytes.Equal(before, after) {
		t.Errorf("checkpoint and verify changed the store file (%v)", err)
	}
}
