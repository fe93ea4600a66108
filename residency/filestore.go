package residency

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"runtime/debug"
	"time"

	"github.com/domicile-go/domicile/provider"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// fileStore is the embedded durable store of [WithPath]: one bbolt file,
// every Apply one bbolt transaction, committed and fsynced before it
// returns. The Router's group commit puts many changes in one Apply.
//
// Layout (format version 2):
//
//	meta        "format" -> "2"
//	accounts    account ID -> placement (codec.go)
//	events      account ID, 0x00, version (8 bytes, big-endian) -> event
//	agreements  account ID, 0x00, reference -> agreement
//	datacenters data center ID -> runtime status (new in version 2)
//
// A version 1 file is upgraded when opened.
//
// Account IDs hold no NUL byte, so an account's events and agreements
// sort together, right after those of any account ID that is a prefix of
// its own: Load merges the three buckets in one pass.
type fileStore struct {
	db   *bolt.DB
	path string
}

const fileFormat = "2"

var (
	bucketMeta       = []byte("meta")
	bucketAccounts   = []byte("accounts")
	bucketEvents     = []byte("events")
	bucketAgreements = []byte("agreements")
	bucketStatus     = []byte("datacenters")
	keyFormat        = []byte("format")
)

// lockWait bounds how long Open waits for a store file another process
// holds, unless the context's deadline comes first.
const lockWait = time.Second

// OpenFileStore opens or creates the embedded store file at path (mode
// 0600), as [WithPath] does; it is for callers that wrap the store, such as
// a dry run that discards what Apply is given. Errors are as for WithPath.
func OpenFileStore(ctx context.Context, path string) (Store, error) {
	s, err := openFileStore(ctx, path)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func openFileStore(ctx context.Context, path string) (s *fileStore, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	wait := lockWait
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
		wait = max(time.Until(deadline), time.Millisecond)
	}
	if err := checkNotTruncated(path); err != nil {
		return nil, err
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverCorrupt(path, &err)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: wait, FreelistType: bolt.FreelistMapType})
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("%w: %s: still locked after %v", ErrLocked, path, wait)
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("residency: opening store: %w", err)
	case err != nil:
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, path, err)
	}
	s = &fileStore{db: db, path: path}
	if err := s.init(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// recoverCorrupt turns a panic of bbolt on a damaged file into ErrCorrupt.
// bbolt reads the file through mmap: a truncated file faults (SIGBUS) where
// bbolt expects a page, so the callers also set debug.SetPanicOnFault to
// make such faults panics that can be recovered.
func recoverCorrupt(path string, err *error) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("%w: %s: %v", ErrCorrupt, path, p)
	}
}

// checkNotTruncated refuses a bbolt file shorter than its meta page says.
// bbolt itself would fault reading a page past the end of its mmap while
// opening, before it can return an error and with the file still locked.
// The meta page (bbolt's internal/common/meta.go) follows a 16-byte page
// header: magic, version, page size, flags (4 bytes each), root bucket (16),
// freelist page, high-water page, txid and an FNV-1a checksum of what
// precedes it (8 each), in the machine's byte order. bbolt uses the valid
// meta page with the higher txid.
func checkNotTruncated(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // bbolt creates it
	}
	if err != nil {
		return fmt.Errorf("residency: opening store: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("residency: opening store: %w", err)
	}
	const header, metaLen, sumAt = 16, 64, 56
	var best struct{ txid, need uint64 }
	found := false
	offset := int64(0)
	for i := range 2 {
		buf := make([]byte, metaLen)
		if _, err := f.ReadAt(buf, offset+header); err != nil {
			break
		}
		m := buf
		ne := binary.NativeEndian
		pageSize := uint64(ne.Uint32(m[8:]))
		h := fnv.New64a()
		h.Write(m[:sumAt])
		if ne.Uint32(m[0:]) == 0xED0CDAED && ne.Uint64(m[sumAt:]) == h.Sum64() && pageSize >= 512 {
			if txid := ne.Uint64(m[48:]); !found || txid > best.txid {
				best.txid, best.need = txid, ne.Uint64(m[40:])*pageSize
				found = true
			}
			if i == 0 {
				offset = int64(pageSize)
				continue
			}
		}
		if i == 0 {
			offset = int64(os.Getpagesize())
		}
	}
	if found && uint64(info.Size()) < best.need {
		return fmt.Errorf("%w: %s: truncated to %d bytes, its last transaction needs %d", ErrCorrupt, path, info.Size(), best.need)
	}
	return nil
}

// init creates the buckets of a new file, upgrades a version 1 file, or
// checks an existing file's format version. A file that needs neither is
// only read: opening a store does not write it.
func (s *fileStore) init() error {
	errWrite := errors.New("needs a write")
	err := s.db.View(func(tx *bolt.Tx) error { return s.setup(tx, errWrite) })
	if err == errWrite {
		err = s.db.Update(func(tx *bolt.Tx) error { return s.setup(tx, nil) })
	}
	return err
}

// setup checks the file's format and buckets. Where the file is new or
// of version 1 it returns errWrite, when set, and otherwise makes it current.
func (s *fileStore) setup(tx *bolt.Tx, errWrite error) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		empty := true
		tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
		switch {
		case !empty:
			return fmt.Errorf("%w: %s has no domicile format version", ErrCorrupt, s.path)
		case errWrite != nil:
			return errWrite
		}
		for _, name := range [][]byte{bucketMeta, bucketAccounts, bucketEvents, bucketAgreements, bucketStatus} {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keyFormat, []byte(fileFormat))
	}
	switch v := meta.Get(keyFormat); string(v) {
	case fileFormat:
	case "":
		return fmt.Errorf("%w: %s has no format version", ErrCorrupt, s.path)
	case "1":
		if errWrite != nil {
			return errWrite
		}
		if _, err := tx.CreateBucketIfNotExists(bucketStatus); err != nil {
			return err
		}
		if err := meta.Put(keyFormat, []byte(fileFormat)); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: %s has format %q, this version reads %q and %q", ErrFormat, s.path, v, "1", fileFormat)
	}
	for _, name := range [][]byte{bucketAccounts, bucketEvents, bucketAgreements, bucketStatus} {
		if tx.Bucket(name) == nil {
			return fmt.Errorf("%w: %s lacks bucket %s", ErrCorrupt, s.path, name)
		}
	}
	return nil
}

func (s *fileStore) Close() error { return s.db.Close() }

func eventKey(accountID string, version uint64) []byte {
	k := make([]byte, 0, len(accountID)+9)
	k = append(append(k, accountID...), 0)
	return binary.BigEndian.AppendUint64(k, version)
}

func agreementKey(accountID, reference string) []byte {
	return append(append(append(make([]byte, 0, len(accountID)+1+len(reference)), accountID...), 0), reference...)
}

// Apply writes the changes in one transaction, checking each account's
// version first. A context ended before it starts writes nothing; once
// begun, the transaction runs to its end.
func (s *fileStore) Apply(ctx context.Context, changes []Change) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverCorrupt(s.path, &err)
	return s.db.Update(func(tx *bolt.Tx) error {
		accounts, events, agreements := tx.Bucket(bucketAccounts), tx.Bucket(bucketEvents), tx.Bucket(bucketAgreements)
		for i := range changes {
			c := &changes[i]
			if st := c.DataCenter; st != nil {
				e := encoder{}
				e.str(string(st.Status))
				e.time(st.Changed)
				if err := tx.Bucket(bucketStatus).Put([]byte(st.ID), e.b); err != nil {
					return err
				}
				continue
			}
			id := []byte(c.Placement.AccountID)
			var stored uint64
			if old := accounts.Get(id); old != nil {
				d := decoder{b: old}
				stored = d.uint()
			}
			if stored+1 != c.Placement.Version {
				var cur Placement // as ConflictError allows: the account ID and version only
				if stored != 0 {
					cur = Placement{AccountID: c.Placement.AccountID, Version: stored}
				}
				return staleWrite(&c.Placement, cur)
			}
			if err := accounts.Put(id, encodePlacement(&c.Placement)); err != nil {
				return err
			}
			if err := events.Put(eventKey(c.Placement.AccountID, c.Event.Version), encodeEvent(&c.Event)); err != nil {
				return err
			}
			if ag := c.Agreement; ag != nil {
				if err := agreements.Put(agreementKey(ag.AccountID, ag.Reference), encodeAgreement(ag)); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// DataCenters reads the data centers' runtime statuses.
func (s *fileStore) DataCenters(ctx context.Context) (out []DataCenterState, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverCorrupt(s.path, &err)
	err = s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketStatus).ForEach(func(k, v []byte) error {
			d := decoder{b: v}
			st := DataCenterState{ID: string(k), Status: provider.Status(d.unique()), Changed: d.time()}
			if err := d.done("status of " + st.ID); err != nil {
				return err
			}
			if !st.Status.IsValid() {
				return fmt.Errorf("%w: data center %s has status %q", ErrCorrupt, st.ID, st.Status)
			}
			out = append(out, st)
			return nil
		})
	})
	return out, err
}

// Load reads every account with its events and agreements.
func (s *fileStore) Load(ctx context.Context, fn func(StoredAccount) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverCorrupt(s.path, &err)
	return s.db.View(func(tx *bolt.Tx) error {
		rd := newAccountReader(tx)
		n := 0
		return tx.Bucket(bucketAccounts).ForEach(func(k, v []byte) error {
			if n++; n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			a, err := rd.read(k, v)
			if err != nil {
				return err
			}
			return fn(a)
		})
	})
}

// LoadAccounts calls fn with each of the accounts ids that the store holds,
// in the order given; it skips the others.
func (s *fileStore) LoadAccounts(ctx context.Context, ids []string, fn func(StoredAccount) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverCorrupt(s.path, &err)
	return s.db.View(func(tx *bolt.Tx) error {
		rd := newAccountReader(tx)
		accounts := tx.Bucket(bucketAccounts)
		for _, id := range ids {
			if err := ctx.Err(); err != nil {
				return err
			}
			k := []byte(id)
			v := accounts.Get(k)
			if v == nil {
				continue
			}
			rd.seek(k)
			a, err := rd.read(k, v)
			if err != nil {
				return err
			}
			if err := fn(a); err != nil {
				return err
			}
		}
		return nil
	})
}

// accountReader decodes stored accounts with their events and agreements,
// whose keys start with the account ID and a NUL byte. Its cursors move
// forward with the accounts read in key order; seek moves them to an
// account out of order.
type accountReader struct {
	d                  decoder
	events, agreements *bolt.Cursor
	ek, ev, ak, av     []byte
}

func newAccountReader(tx *bolt.Tx) *accountReader {
	rd := &accountReader{events: tx.Bucket(bucketEvents).Cursor(), agreements: tx.Bucket(bucketAgreements).Cursor()}
	rd.ek, rd.ev = rd.events.First()
	rd.ak, rd.av = rd.agreements.First()
	return rd
}

func (rd *accountReader) seek(accountKey []byte) {
	prefix := append(accountKey[:len(accountKey):len(accountKey)], 0)
	rd.ek, rd.ev = rd.events.Seek(prefix)
	rd.ak, rd.av = rd.agreements.Seek(prefix)
}

// read decodes the account of key k and placement record v, with the
// events and agreements at the cursors' positions.
func (rd *accountReader) read(k, v []byte) (StoredAccount, error) {
	d := &rd.d
	id := string(k)
	prefix := append(k[:len(k):len(k)], 0)
	d.b = v
	a := StoredAccount{Placement: d.placement(id)}
	if err := d.done("placement of " + id); err != nil {
		return StoredAccount{}, err
	}
	for ; rd.ek != nil && bytes.HasPrefix(rd.ek, prefix); rd.ek, rd.ev = rd.events.Next() {
		rest := rd.ek[len(prefix):]
		if len(rest) != 8 {
			return StoredAccount{}, fmt.Errorf("%w: event key of account %q", ErrCorrupt, id)
		}
		d.b = rd.ev
		a.History = append(a.History, d.event(id, binary.BigEndian.Uint64(rest)))
		if err := d.done("event of " + id); err != nil {
			return StoredAccount{}, err
		}
	}
	for ; rd.ak != nil && bytes.HasPrefix(rd.ak, prefix); rd.ak, rd.av = rd.agreements.Next() {
		d.b = rd.av
		a.Agreements = append(a.Agreements, d.agreement(id, string(rd.ak[len(prefix):])))
		if err := d.done("agreement of " + id); err != nil {
			return StoredAccount{}, err
		}
	}
	if len(a.History) == 0 || a.History[len(a.History)-1].Version != a.Placement.Version {
		return StoredAccount{}, fmt.Errorf("%w: account %q: audit trail does not end at version %d", ErrCorrupt, id, a.Placement.Version)
	}
	return a, nil
}
