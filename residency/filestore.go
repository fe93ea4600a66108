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
	"sync"
	"time"

	"github.com/domicile-go/domicile/auditlog"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// fileStore is the embedded durable store of [WithPath]: one bbolt file,
// every Apply one bbolt transaction, committed and fsynced before it
// returns. The Router's group commit puts many changes in one Apply.
//
// Layout (format version 9):
//
//	meta        "format" -> "9" (not checksummed: it says how to read the rest)
//	            "counts" -> counts of accounts, agreements, statuses,
//	            consents and objections
//	            "tail" -> the newest entries of the log, waiting to move
//	            to it (new in format 9; formats 7 and 8 kept one record
//	            per entry, under "tail" and the entry's index)
//	accounts    account ID -> placement (a deleted account's has no data center)
//	events      account ID, 0x00, version (8 bytes, big-endian) -> event
//	agreements  account ID, 0x00, reference -> agreement
//	datacenters data center ID -> runtime status
//	consents    account ID, 0x00, reference -> consent (new in format 4)
//	objections  account ID, 0x00, reference -> objection (new in format 4)
//	log         first entry index (8 bytes, big-endian), number of
//	            entries (1 byte) -> a chunk of consecutive audit log
//	            entries, each with the tlog stored hashes its append added
//	            (new in format 9; formats 5 to 8 kept one record per
//	            entry, under its 8-byte index; the entry in binary from
//	            format 8, codec_entry.go)
//
// The log holds [EncodeEntry] of every change Apply commits (stored in
// binary and given back as EncodeEntry's bytes), in commit order, each
// with the stored hashes of the log's Merkle tree that its append added
// (filestore_log.go), written in Apply's transaction. The entries of a
// commit join the tail in the meta bucket, whose page every commit
// rewrites anyway, until it is full; then they and the tail's move to
// the log bucket, packed in chunks of several entries: bbolt rewrites
// every page on the path to a changed record, three or four in the log
// bucket, and most of a commit's cost is in those pages and the Puts. The
// store is the log's only writer: it keeps the tree's right edge (an
// auditlog.Frontier) in memory, loaded at open from at most 64 stored
// hashes, and appends to a copy of it in each transaction, kept only once
// the transaction committed.
//
// Format 8 stored one record per entry, and the tail as records under
// "tail" and the index; format 9 reads them as they are (filestore_log.go).
// Opening a file of format 8 for writing moves its tail's records to the
// log bucket, as they are, and sets the format to 9; its new entries are
// stored in chunks. Read-only, it is read as it is. Format 7 stored every
// log entry as its JSON, which format 9 reads as it is (codec_entry.go),
// and is upgraded as 8 is. Format 6 lacked the tail, and is read and
// upgraded as 7 is (its tail is empty). Format 5 lacked the status
// records' versions (codec.go): opening a file of format 5 sets the format
// to 9, as its records read as they are.
// Format 4 lacked the log bucket: opening a file of format 4, or of any
// older format, writes its log (upgradeLog) in the transaction of the
// upgrade. The log of an upgraded file starts at the upgrade: the changes
// committed before it are not entries, and its first entries are a
// snapshot of the state then.
//
// Format 3 lacked the consents and objections buckets and their counts:
// opening a file of format 3 adds them (upgrade3).
//
// Every record but the format carries a CRC-32C of its key and payload;
// codec.go describes the records. Format 2 had the buckets of format 3
// without checksums and counts, and times as Unix nanoseconds; format 1
// lacked the datacenters bucket. Opening a file of either upgrades it to 5
// in one fsynced transaction (upgrade, upgrade3, upgradeLog).
//
// Account IDs hold no NUL byte, so an account's events, agreements,
// consents and objections sort together, right after those of any account
// ID that is a prefix of its own: Load merges the five buckets in one pass.
type fileStore struct {
	db       *bolt.DB
	path     string
	readOnly bool
	// held is a descriptor of the file, open until Close
	// (checkFileTrees).
	held *os.File

	// mu guards frontier, the audit log's right edge as last committed,
	// and stale, set when a commit failed and the frontier must be
	// reloaded from the file (the commit may have reached it).
	mu       sync.Mutex
	frontier auditlog.Frontier
	stale    bool

	// noLog exists only to measure what the audit log costs: set, Apply
	// writes a change without its log entry, which leaves a log that no
	// longer holds every change. Only BenchmarkLogCost
	// (logcost_bench_test.go) sets it, on a store it opened itself; no
	// Option or exported name reaches it.
	noLog bool
}

const fileFormat = "9"

var (
	bucketMeta       = []byte("meta")
	bucketAccounts   = []byte("accounts")
	bucketEvents     = []byte("events")
	bucketAgreements = []byte("agreements")
	bucketStatus     = []byte("datacenters")
	bucketConsents   = []byte("consents")
	bucketObjections = []byte("objections")
	bucketLog        = []byte("log")
	keyFormat        = []byte("format")
	keyCounts        = []byte("counts")
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

// boltOptions are the options of every store file. The store's promise
// (durable when Apply returns) rests on bbolt's defaults that these keep:
// NoSync, NoGrowSync and NoFreelistSync false, so that every commit is
// fdatasynced with its freelist. TestFileStoreSyncs checks the open DB.
func boltOptions(wait time.Duration) *bolt.Options {
	return &bolt.Options{Timeout: wait, FreelistType: bolt.FreelistMapType}
}

// OpenFileStoreReadOnly opens the existing store file at path for reading
// only, as an auditor's tool does: it writes nothing, so it neither
// creates nor upgrades a file (files of formats 5 to 8 are read as they
// are; one of format 4 or older, which only an upgrade gives a log, is
// refused with an error matching [ErrFormat]: open it once with [WithPath]
// to upgrade it), and its Apply fails. Other read-only opens may share the file; a
// Router holding it keeps it locked (an error matching [ErrLocked]).
func OpenFileStoreReadOnly(ctx context.Context, path string) (LogStore, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("residency: opening store: %w", err)
	}
	s, err := openStoreFile(ctx, path, true)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func openFileStore(ctx context.Context, path string) (s *fileStore, err error) {
	return openStoreFile(ctx, path, false)
}

func openStoreFile(ctx context.Context, path string, readOnly bool) (s *fileStore, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	wait := lockWait
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
		wait = max(time.Until(deadline), time.Millisecond)
	}
	if err := checkHeader(path); err != nil {
		return nil, err
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverCorrupt(path, &err)
	opts := boltOptions(wait)
	opts.ReadOnly = readOnly
	db, err := bolt.Open(path, 0o600, opts)
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("%w: %s: still locked after %v", ErrLocked, path, wait)
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("residency: opening store: %w", err)
	case err != nil:
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, path, err)
	}
	s = &fileStore{db: db, path: path, readOnly: readOnly}
	// Now that no other process writes the file, check its trees before
	// anything walks them; then init. A panic of either on a damaged file
	// closes it too: recoverCorrupt above would make it ErrCorrupt but
	// leave the file open and locked.
	if err := func() (err error) {
		defer recoverCorrupt(path, &err)
		if s.held, err = checkFileTrees(path); err != nil {
			return err
		}
		return s.init(readOnly)
	}(); err != nil {
		s.Close()
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

// The layout of a bbolt page (bbolt's internal/common/page.go): a header
// of id (8 bytes), flags, count (2 each) and overflow (4); then count
// elements of 16 bytes: on a branch page pos, ksize (4 each) and the
// child's page number (8), on a leaf page flags, pos, ksize and vsize (4
// each), bucketFlag marking the value of a bucket.
const (
	headerLen, elemLen   = 16, 16
	branchPage, leafPage = 0x01, 0x02
	bucketFlag           = 0x01
)

// checkHeader refuses an existing file that is empty, whose bbolt meta
// pages are not both valid, that is shorter than its meta page says, or
// that keeps no freelist.
// Only a path where no file exists makes a new store: bbolt would make an
// empty file into one, and a server on it would answer that no account
// exists. bbolt keeps two meta pages and, when the newer is damaged, opens
// the file as it was one transaction earlier: a change acknowledged as
// durable would silently vanish, so a damaged meta page is ErrCorrupt too.
// bbolt itself would also fault reading a page past the end of its mmap
// while opening, before it can return an error and with the file still
// locked.
//
// The meta page (bbolt's internal/common/meta.go) follows a 16-byte page
// header: magic, version, page size, flags (4 bytes each), root bucket (16),
// freelist page, high-water page, txid and an FNV-1a checksum of what
// precedes it (8 each), in the machine's byte order. Meta page 0 starts the
// file, meta page 1 follows one page later; bbolt uses the valid one with
// the higher txid.
func checkHeader(path string) error {
	f, size, err := openForCheck(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // bbolt creates it
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if size == 0 {
		return fmt.Errorf("%w: %s is empty (a store is created only where no file exists)", ErrCorrupt, path)
	}
	_, err = readShape(f, path, size)
	return err
}

// openForCheck opens the file at path for reading, and returns its size.
func openForCheck(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("residency: opening store: %w", err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("residency: opening store: %w", err)
	}
	return f, info.Size(), nil
}

// shape is where a bbolt file's current tree is: its root page (whole,
// overflow included) and its number, the page size, and the number of
// pages in use.
type shape struct {
	root                []byte
	rootID, pageSize, n uint64
}

// readShape reads the shape of the bbolt file f, of size bytes, from the
// valid meta page of the newer transaction, and checks its root page.
func readShape(f *os.File, path string, size int64) (shape, error) {
	const metaLen, sumAt = 64, 56
	ne := binary.NativeEndian
	var best struct{ txid, need, root, freelist, pageSize uint64 }
	offset := int64(0)
	for i := range 2 {
		m := make([]byte, metaLen)
		if _, err := f.ReadAt(m, offset+headerLen); err != nil {
			return shape{}, fmt.Errorf("%w: %s: reading bbolt meta page %d: %v", ErrCorrupt, path, i, err)
		}
		pageSize := uint64(ne.Uint32(m[8:]))
		h := fnv.New64a()
		h.Write(m[:sumAt])
		if ne.Uint32(m[0:]) != 0xED0CDAED || ne.Uint64(m[sumAt:]) != h.Sum64() || pageSize < 512 || pageSize > 1<<16 {
			return shape{}, fmt.Errorf("%w: %s: bbolt meta page %d is damaged, or this is not a bbolt file", ErrCorrupt, path, i)
		}
		if txid := ne.Uint64(m[48:]); i == 0 || txid > best.txid {
			best.txid, best.need = txid, ne.Uint64(m[40:])*pageSize
			best.root, best.freelist, best.pageSize = ne.Uint64(m[16:]), ne.Uint64(m[32:]), pageSize
		}
		offset = int64(pageSize)
	}
	if uint64(size) < best.need {
		return shape{}, fmt.Errorf("%w: %s: truncated to %d bytes, its last transaction needs %d", ErrCorrupt, path, size, best.need)
	}
	if best.root >= best.need/best.pageSize {
		return shape{}, fmt.Errorf("%w: %s: root page %d is past the end of the file", ErrCorrupt, path, best.root)
	}
	// Domicile's files always keep their freelist (boltOptions). Without
	// one, bbolt's writable Open would rebuild it by walking every tree,
	// in a goroutine of its own, before checkTrees can check them.
	if best.freelist < 2 || best.freelist >= best.need/best.pageSize {
		return shape{}, fmt.Errorf("%w: %s: freelist page %d is not within the file's %d pages", ErrCorrupt, path, best.freelist, best.need/best.pageSize)
	}
	page := make([]byte, best.pageSize)
	if _, err := f.ReadAt(page, int64(best.root*best.pageSize)); err != nil {
		return shape{}, fmt.Errorf("%w: %s: reading the root page: %v", ErrCorrupt, path, err)
	}
	if overflow := uint64(ne.Uint32(page[12:])); overflow > 0 { // a page of several
		if best.root+1+overflow > best.need/best.pageSize {
			return shape{}, fmt.Errorf("%w: %s: root page %d overflows past the end of the file", ErrCorrupt, path, best.root)
		}
		page = make([]byte, (1+overflow)*best.pageSize)
		if _, err := f.ReadAt(page, int64(best.root*best.pageSize)); err != nil {
			return shape{}, fmt.Errorf("%w: %s: reading the root page: %v", ErrCorrupt, path, err)
		}
	}
	if err := checkRootPage(page); err != nil {
		return shape{}, fmt.Errorf("%w: %s: root page %d: %v", ErrCorrupt, path, best.root, err)
	}
	return shape{root: page, rootID: best.root, pageSize: best.pageSize, n: best.need / best.pageSize}, nil
}

// checkFileTrees is checkTrees of the file at path, which this process
// has opened with bbolt and so locked: no other process writes it. It
// returns the descriptor it read the file through, which must stay open
// until the store closes: where locks are fcntl's (AIX, Solaris), closing
// any descriptor of a file drops the process's lock on it.
func checkFileTrees(path string) (*os.File, error) {
	f, size, err := openForCheck(path)
	if err != nil {
		return nil, err
	}
	defer func() {
		if p := recover(); p != nil { // a fault on the mapping, say
			f.Close()
			panic(p)
		}
	}()
	sh, err := readShape(f, path, size)
	if err == nil {
		page, release := mapPages(f, sh.pageSize, sh.n)
		defer release()
		if err = checkTrees(page, sh.rootID, sh.n); err != nil {
			err = fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
		}
	}
	return f, err
}

// checkTrees checks the shape of the B+trees of the file's root bucket,
// from its root page rootID, and of the buckets it holds, before bbolt
// walks them: bbolt trusts every page number it reads, and a damaged one
// that points back up a tree sends its cursor round a cycle, to a fatal
// stack overflow or for ever, which no recover catches. Every page
// reachable from the root must be within the file's n pages (past the two
// meta pages), carry its own number in its header, be a branch or a leaf,
// and be reached once, at most maxDepth levels down a tree; the root
// bucket's leaves must pass checkRootPage. page returns page id's bytes:
// its header at least, and the whole of a branch or of the root bucket's
// leaf.
func checkTrees(page func(id uint64, whole bool) ([]byte, error), rootID, n uint64) error {
	ne := binary.NativeEndian
	const maxDepth = 32
	visited := make([]bool, n)
	// walk checks page id, depth levels down a tree, and the pages below
	// it; those of the buckets it holds too if it is the root bucket's.
	var walk func(id uint64, depth int, rootBucket bool) error
	walk = func(id uint64, depth int, rootBucket bool) error {
		switch {
		case id < 2 || id >= n:
			return fmt.Errorf("page %d is outside the file's %d pages", id, n)
		case visited[id]:
			return fmt.Errorf("page %d is reached twice", id)
		case depth > maxDepth:
			return fmt.Errorf("page %d is %d levels down", id, depth)
		}
		visited[id] = true
		h, err := page(id, false)
		if err != nil {
			return err
		}
		if got := ne.Uint64(h); got != id {
			return fmt.Errorf("page %d says it is page %d", id, got)
		}
		if overflow := uint64(ne.Uint32(h[12:])); id+overflow >= n {
			return fmt.Errorf("page %d overflows past the end of the file", id)
		}
		flags := ne.Uint16(h[8:])
		switch {
		case flags == leafPage && !rootBucket:
			return nil
		case flags == leafPage:
			return walkBuckets(page, id, walk)
		case flags != branchPage:
			return fmt.Errorf("page %d has flags %#x", id, flags)
		}
		p, err := page(id, true)
		if err != nil {
			return err
		}
		count := uint64(ne.Uint16(p[10:]))
		if headerLen+count*elemLen > uint64(len(p)) {
			return fmt.Errorf("branch page %d: %d elements do not fit", id, count)
		}
		for i := range count {
			e := p[headerLen+i*elemLen:]
			if err := walk(ne.Uint64(e[8:]), depth+1, rootBucket); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(rootID, 0, true)
}

// walkBuckets checks the root bucket's leaf page id with checkRootPage
// and walks the trees of the buckets it holds: an inline one has no pages
// of its own.
func walkBuckets(page func(id uint64, whole bool) ([]byte, error), id uint64, walk func(id uint64, depth int, rootBucket bool) error) error {
	ne := binary.NativeEndian
	p, err := page(id, true)
	if err != nil {
		return err
	}
	if err := checkRootPage(p); err != nil {
		return fmt.Errorf("page %d: %v", id, err)
	}
	for i := range int(ne.Uint16(p[10:])) {
		e := p[headerLen+i*elemLen:]
		if ne.Uint32(e)&bucketFlag == 0 {
			continue
		}
		at := uint64(headerLen + i*elemLen)
		v := at + uint64(ne.Uint32(e[4:])) + uint64(ne.Uint32(e[8:]))
		if child := ne.Uint64(p[v:]); child != 0 {
			if err := walk(child, 0, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// readPage returns a page reader for checkTrees that reads the file f
// (of n pages of pageSize bytes), page by page.
func readPage(f *os.File, pageSize, n uint64) func(id uint64, whole bool) ([]byte, error) {
	return func(id uint64, whole bool) ([]byte, error) {
		size := uint64(16)
		if whole {
			h := make([]byte, 16)
			if _, err := f.ReadAt(h, int64(id*pageSize)); err != nil {
				return nil, fmt.Errorf("reading page %d: %v", id, err)
			}
			size = (1 + uint64(binary.NativeEndian.Uint32(h[12:]))) * pageSize
		}
		p := make([]byte, size)
		if _, err := f.ReadAt(p, int64(id*pageSize)); err != nil {
			return nil, fmt.Errorf("reading page %d: %v", id, err)
		}
		return p, nil
	}
}

// checkRootPage checks the bounds of the root page of a bbolt file and of
// the small ("inline") buckets it holds, which is where a file of a few
// accounts keeps all its buckets. bbolt copies an inline bucket to the Go
// heap when it is not aligned, and reads it there through unsafe pointers
// without checking its bounds: a damaged count or offset would read past
// the copy (a fatal error under the race detector's pointer checks, which
// no recover catches). In a leaf page (see headerLen), an element's key
// starts pos bytes after the element, its value right after the key; an
// inline bucket's value is the bucket header (root page 0 and sequence, 8
// bytes each) followed by a leaf page. The root page of a domicile file
// with few buckets is a leaf; checkTrees checks the leaves of one that is
// a branch.
func checkRootPage(page []byte) error {
	ne := binary.NativeEndian
	switch flags := ne.Uint16(page[8:]); flags {
	case branchPage:
		return nil // many buckets: checkTrees checks its leaves
	case leafPage:
	default:
		return fmt.Errorf("flags %#x", flags)
	}
	// leafElems checks the elements of the leaf page p (the root, or an
	// inline bucket's page) and calls fn with each value of a bucket.
	leafElems := func(p []byte, fn func(v []byte) error) error {
		if len(p) < headerLen {
			return errors.New("short page")
		}
		n := int(ne.Uint16(p[10:]))
		if headerLen+n*elemLen > len(p) {
			return fmt.Errorf("%d elements do not fit in %d bytes", n, len(p))
		}
		for i := range n {
			e := p[headerLen+i*elemLen:]
			at := uint64(headerLen + i*elemLen)
			k := at + uint64(ne.Uint32(e[4:]))
			v := k + uint64(ne.Uint32(e[8:]))
			end := v + uint64(ne.Uint32(e[12:]))
			if end > uint64(len(p)) {
				return fmt.Errorf("element %d ends at %d, past the page's %d bytes", i, end, len(p))
			}
			if ne.Uint32(e)&bucketFlag != 0 && fn != nil {
				if err := fn(p[v:end]); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return leafElems(page, func(v []byte) error {
		if len(v) < 16 {
			return errors.New("short bucket header")
		}
		if ne.Uint64(v) != 0 {
			return nil // not inline: its pages are read from the file's mmap
		}
		if len(v) < 16+headerLen {
			return errors.New("short inline bucket")
		}
		if flags := ne.Uint16(v[16+8:]); flags != leafPage {
			return fmt.Errorf("inline bucket page flags %#x", flags)
		}
		return leafElems(v[16:], func([]byte) error { return errors.New("nested bucket") })
	})
}

// init creates the buckets of a new file, upgrades a file of version 1 or
// 2, or checks an existing file's format version. A file that needs
// neither is only read: opening a store does not write it.
func (s *fileStore) init(readOnly bool) error {
	errWrite := errors.New("needs a write")
	err := s.db.View(func(tx *bolt.Tx) error { return s.setup(tx, errWrite) })
	if err == errWrite && readOnly {
		var v []byte
		s.db.View(func(tx *bolt.Tx) error {
			if meta := tx.Bucket(bucketMeta); meta != nil {
				v = bytes.Clone(meta.Get(keyFormat))
			}
			return nil
		})
		if v == nil {
			return fmt.Errorf("%w: %s holds no store yet, and a read-only open creates none", ErrFormat, s.path)
		}
		return fmt.Errorf("%w: %s has format %s, which a writable open upgrades to format %s; a read-only open cannot", ErrFormat, s.path, v, fileFormat)
	}
	if err == errWrite {
		err = s.db.Update(func(tx *bolt.Tx) error { return s.setup(tx, nil) })
	}
	if err != nil {
		return err
	}
	return s.db.View(func(tx *bolt.Tx) (err error) {
		s.frontier, err = loadFrontier(tx)
		return err
	})
}

// setup checks the file's format and buckets. Where the file is new or of
// an older version it returns errWrite, when set, and otherwise makes it
// current.
func (s *fileStore) setup(tx *bolt.Tx, errWrite error) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		empty := true
		tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
		switch {
		case !empty:
			return fmt.Errorf("%w: %s has no domicile format version", ErrCorrupt, s.path)
		case errWrite != nil && tx.ID() > 1:
			// bbolt makes a new file with transaction IDs 0 and 1 and no
			// buckets; a later transaction made the buckets. A file
			// written since that shows none lost them to damage (a
			// flipped bit of the root page's element count).
			return fmt.Errorf("%w: %s holds no buckets after %d transactions", ErrCorrupt, s.path, tx.ID())
		case errWrite != nil:
			return errWrite
		}
		for _, name := range [][]byte{bucketMeta, bucketAccounts, bucketEvents, bucketAgreements, bucketStatus, bucketConsents, bucketObjections, bucketLog} {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		meta = tx.Bucket(bucketMeta)
		if err := meta.Put(keyCounts, seal(kindCounts, keyCounts, counts{}.encode())); err != nil {
			return err
		}
		return meta.Put(keyFormat, []byte(fileFormat))
	}
	v := meta.Get(keyFormat)
	if err := metaKeys(meta); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrCorrupt, s.path, err)
	}
	// A format older than the buckets the file holds is damage (a flipped
	// bit turns "7" into "5" or "3"), not a file to upgrade: upgrading it
	// would read its records in a format they are not in.
	for _, later := range []struct {
		bucket []byte
		since  string
	}{{bucketConsents, "4"}, {bucketObjections, "4"}, {bucketLog, "5"}} {
		if isFormatVersion(v) && len(v) == 1 && string(v) < later.since && tx.Bucket(later.bucket) != nil {
			return fmt.Errorf("%w: %s says format %s, but holds bucket %s of format %s", ErrCorrupt, s.path, v, later.bucket, later.since)
		}
	}
	if isFormatVersion(v) && len(v) == 1 {
		// The tails of formats 7 and 8, and of 9, hold keys the others
		// do not.
		records, tail := oldTail(meta)
		switch {
		case string(v) < "7" && (records || tail):
			return fmt.Errorf("%w: %s says format %s, but holds a log tail of format 7", ErrCorrupt, s.path, v)
		case string(v) < "9" && tail:
			return fmt.Errorf("%w: %s says format %s, but holds a log tail of format 9", ErrCorrupt, s.path, v)
		case string(v) == "9" && records:
			return fmt.Errorf("%w: %s says format 9, but holds a log tail of format 7", ErrCorrupt, s.path)
		}
	}
	switch string(v) {
	case fileFormat:
	case "5", "6", "7", "8":
		// Format 8 is the layout of 9 with a record per entry (and the
		// tail of 7), which 9 reads too (filestore_log.go); 7 that of 8
		// with every log entry stored as JSON, which 8 reads too; 6 is 7
		// with an empty tail; format 5 is 6 with status records without
		// a version, which read as version 1: all readable as they are.
		// Opening one for writing moves its tail's records to the log
		// bucket, as they are.
		if s.readOnly {
			break
		}
		if errWrite != nil {
			return errWrite
		}
		log := tx.Bucket(bucketLog)
		if log == nil {
			return fmt.Errorf("%w: %s lacks bucket %s", ErrCorrupt, s.path, bucketLog)
		}
		if err := moveOldTail(log, meta); err != nil {
			return fmt.Errorf("residency: upgrading %s from format %s to %s: %w", s.path, v, fileFormat, err)
		}
		if err := tx.Bucket(bucketMeta).Put(keyFormat, []byte(fileFormat)); err != nil {
			return fmt.Errorf("residency: upgrading %s from format %s to %s: %w", s.path, v, fileFormat, err)
		}
	case "":
		return fmt.Errorf("%w: %s has no format version", ErrCorrupt, s.path)
	case "1", "2":
		if errWrite != nil {
			return errWrite
		}
		if err := s.upgrade(tx, string(v)); err != nil {
			return fmt.Errorf("residency: upgrading %s from format %s to %s: %w", s.path, v, fileFormat, err)
		}
		if err := s.upgradeLog(tx); err != nil {
			return fmt.Errorf("residency: upgrading %s from format %s to %s: %w", s.path, v, fileFormat, err)
		}
	case "3":
		if errWrite != nil {
			return errWrite
		}
		if err := upgrade3(tx); err != nil {
			return fmt.Errorf("residency: upgrading %s from format 3 to %s: %w", s.path, fileFormat, err)
		}
		if err := s.upgradeLog(tx); err != nil {
			return fmt.Errorf("residency: upgrading %s from format 3 to %s: %w", s.path, fileFormat, err)
		}
	case "4":
		if errWrite != nil {
			return errWrite
		}
		if err := s.upgradeLog(tx); err != nil {
			return fmt.Errorf("residency: upgrading %s from format 4 to %s: %w", s.path, fileFormat, err)
		}
	default:
		if !isFormatVersion(v) { // a damaged meta page, not a newer format
			return fmt.Errorf("%w: %s has format %.40q", ErrCorrupt, s.path, v)
		}
		return fmt.Errorf("%w: %s has format %q, this version reads %q to %q", ErrFormat, s.path, v, "1", fileFormat)
	}
	for _, name := range [][]byte{bucketAccounts, bucketEvents, bucketAgreements, bucketStatus, bucketConsents, bucketObjections, bucketLog} {
		if tx.Bucket(name) == nil {
			return fmt.Errorf("%w: %s lacks bucket %s", ErrCorrupt, s.path, name)
		}
	}
	if meta.Get(keyCounts) == nil {
		return fmt.Errorf("%w: %s lacks its record counts", ErrCorrupt, s.path)
	}
	return nil
}

// isFormatVersion reports whether v looks like a format version: one to
// four decimal digits.
func isFormatVersion(v []byte) bool {
	if len(v) == 0 || len(v) > 4 {
		return false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// upgrade3 makes a file of format 3 one of format 4 (upgradeLog then
// makes it 5): it adds the consents
// and objections buckets, empty, and their counts, zero.
func upgrade3(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	v, err := unseal(kindCounts, keyCounts, meta.Get(keyCounts))
	if err != nil {
		return err
	}
	d := decoder{b: v}
	n := counts{accounts: d.uint(), agreements: d.uint(), statuses: d.uint()} // format 3's counts
	if err := d.done("counts"); err != nil {
		return err
	}
	for _, name := range [][]byte{bucketConsents, bucketObjections} {
		if _, err := tx.CreateBucket(name); err != nil {
			return err
		}
	}
	if err := meta.Put(keyCounts, seal(kindCounts, keyCounts, n.encode())); err != nil {
		return err
	}
	return meta.Put(keyFormat, []byte("4"))
}

// upgrade rewrites every record of a file of format 1 or 2 in format 4
// (upgradeLog then makes it 5),
// in the transaction tx: it decodes each in the old format, encodes it
// anew with its checksum and counts the records. A record that does not
// decode fails the upgrade, and the file is left as it was.
func (s *fileStore) upgrade(tx *bolt.Tx, from string) error {
	for _, name := range [][]byte{bucketStatus, bucketConsents, bucketObjections} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	var n counts
	for _, name := range [][]byte{bucketAccounts, bucketEvents, bucketAgreements, bucketStatus} {
		b := tx.Bucket(name)
		if b == nil {
			return fmt.Errorf("%w: %s lacks bucket %s", ErrCorrupt, s.path, name)
		}
		err := rewrite(b, func(k, v []byte) ([]byte, error) {
			d := decoder{b: v, unixNano: true}
			switch string(name) {
			case string(bucketAccounts):
				n.accounts++
				p := d.placement(string(k))
				return seal(kindPlacement, k, encodePlacement(&p)), d.done("placement of " + string(k))
			case string(bucketEvents):
				id, version, ok := splitEventKey(k)
				if !ok {
					return nil, fmt.Errorf("%w: event key %q", ErrCorrupt, k)
				}
				e := d.event(id, version)
				return seal(kindEvent, k, encodeEvent(&e)), d.done("event of " + id)
			case string(bucketAgreements):
				id, ref, ok := bytes.Cut(k, []byte{0})
				if !ok {
					return nil, fmt.Errorf("%w: agreement key %q", ErrCorrupt, k)
				}
				n.agreements++
				a := d.agreement(string(id), string(ref))
				return seal(kindAgreement, k, encodeAgreement(&a)), d.done("agreement of " + string(id))
			default:
				n.statuses++
				st := d.status(string(k))
				return seal(kindStatus, k, encodeStatus(&st)), d.done("status of " + string(k))
			}
		})
		if err != nil {
			return err
		}
	}
	meta := tx.Bucket(bucketMeta)
	if err := meta.Put(keyCounts, seal(kindCounts, keyCounts, n.encode())); err != nil {
		return err
	}
	return meta.Put(keyFormat, []byte("4"))
}

// rewrite replaces every value of b with what fn makes of it. bbolt's
// cursors are not valid across a Put, so it copies a chunk of records, puts
// their new values, and seeks past the last of them.
func rewrite(b *bolt.Bucket, fn func(k, v []byte) ([]byte, error)) error {
	type record struct{ k, v []byte }
	var chunk []record
	var from []byte
	for {
		chunk = chunk[:0]
		c := b.Cursor()
		for k, v := c.Seek(from); k != nil && len(chunk) < 1024; k, v = c.Next() {
			if v == nil {
				return fmt.Errorf("%w: nested bucket %q", ErrCorrupt, k)
			}
			nv, err := fn(k, v)
			if err != nil {
				return err
			}
			chunk = append(chunk, record{bytes.Clone(k), nv})
		}
		if len(chunk) == 0 {
			return nil
		}
		for _, r := range chunk {
			if err := b.Put(r.k, r.v); err != nil {
				return err
			}
		}
		from = append(bytes.Clone(chunk[len(chunk)-1].k), 0) // the next key after the last
	}
}

func splitEventKey(k []byte) (accountID string, version uint64, ok bool) {
	n := len(k) - 9
	if n < 1 || k[n] != 0 {
		return "", 0, false
	}
	return string(k[:n]), binary.BigEndian.Uint64(k[n+1:]), true
}

// readCounts reads the record counts of the file.
func readCounts(tx *bolt.Tx) (counts, error) {
	v, err := unseal(kindCounts, keyCounts, tx.Bucket(bucketMeta).Get(keyCounts))
	if err != nil {
		return counts{}, err
	}
	d := decoder{b: v}
	n := d.counts()
	return n, d.done("counts")
}

func (s *fileStore) Close() error {
	err := s.db.Close()
	if s.held != nil {
		s.held.Close()
	}
	return err
}

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
// begun, the transaction runs to its end. A time the format cannot hold
// refuses the whole unit before anything is written.
func (s *fileStore) Apply(ctx context.Context, changes []Change) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	for i := range changes {
		if err := changes[i].Check(); err != nil {
			return fmt.Errorf("residency: the store refuses change %d: %w", i, err)
		}
		if err := changeTimes(&changes[i]); err != nil {
			id := changes[i].Placement.AccountID
			if dc := changes[i].DataCenter; dc != nil {
				id = "data center " + dc.ID
			}
			return fmt.Errorf("residency: the store cannot hold the change of %s: %w", id, err)
		}
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverCorrupt(s.path, &err)
	s.mu.Lock()
	next, stale := s.frontier, s.stale
	s.stale = true // until the commit is known to have succeeded
	s.mu.Unlock()
	// The log's entries (JSON, hashes, binary) of a group commit are made
	// beside the transaction's writes of the state, on another core when
	// one is free: the leader's commit is what every waiting caller waits
	// for. Those of a few changes take less than handing them over.
	var batch logBatch
	var prepared chan error
	if !s.noLog && !stale && len(changes) >= prepareAside {
		prepared = make(chan error, 1)
		go func() { prepared <- batch.prepareOrErr(next, changes) }()
		defer func() {
			if prepared != nil {
				<-prepared // changes are the caller's once Apply returns
			}
		}()
	}
	if !s.noLog && !stale && prepared == nil {
		if err := batch.prepareOrErr(next, changes); err != nil {
			return err // stale stays set: the next Apply reads the frontier
		}
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		n, err := readCounts(tx)
		if err != nil {
			return err
		}
		accounts, events, agreements := tx.Bucket(bucketAccounts), tx.Bucket(bucketEvents), tx.Bucket(bucketAgreements)
		statuses := tx.Bucket(bucketStatus)
		consents, objections := tx.Bucket(bucketConsents), tx.Bucket(bucketObjections)
		for i := range changes {
			c := &changes[i]
			if st := c.DataCenter; st != nil {
				k := []byte(st.ID)
				var stored uint64
				if old := statuses.Get(k); old != nil {
					v, err := unseal(kindStatus, k, old)
					if err != nil {
						return err
					}
					d := decoder{b: v}
					if stored = d.status(st.ID).Version; d.err != nil {
						return d.err
					}
				} else {
					n.statuses++
				}
				if st.Version != stored+1 {
					return staleStatus(st, stored)
				}
				if err := statuses.Put(k, seal(kindStatus, k, encodeStatus(st))); err != nil {
					return err
				}
				continue
			}
			id := []byte(c.Placement.AccountID)
			var stored uint64
			if old := accounts.Get(id); old != nil {
				v, err := unseal(kindPlacement, id, old)
				if err != nil {
					return err
				}
				d := decoder{b: v}
				if stored = d.uint(); d.err != nil {
					return d.err
				}
			} else {
				n.accounts++
			}
			if stored+1 != c.Placement.Version {
				var cur Placement // as ConflictError allows: the account ID and version only
				if stored != 0 {
					cur = Placement{AccountID: c.Placement.AccountID, Version: stored}
				}
				return staleWrite(&c.Placement, cur)
			}
			if err := accounts.Put(id, seal(kindPlacement, id, encodePlacement(&c.Placement))); err != nil {
				return err
			}
			k := eventKey(c.Placement.AccountID, c.Event.Version)
			if err := events.Put(k, seal(kindEvent, k, encodeEvent(&c.Event))); err != nil {
				return err
			}
			if ag := c.Agreement; ag != nil {
				k := agreementKey(ag.AccountID, ag.Reference)
				if agreements.Get(k) == nil {
					n.agreements++
				}
				if err := agreements.Put(k, seal(kindAgreement, k, encodeAgreement(ag))); err != nil {
					return err
				}
			}
			if cr := c.Consent; cr != nil {
				k := agreementKey(cr.AccountID, cr.Reference)
				if consents.Get(k) == nil {
					n.consents++
				}
				if err := consents.Put(k, seal(kindConsent, k, encodeConsent(cr))); err != nil {
					return err
				}
			}
			if o := c.Objection; o != nil {
				k := agreementKey(o.AccountID, o.Reference)
				if objections.Get(k) == nil {
					n.objections++
				}
				if err := objections.Put(k, seal(kindObjection, k, encodeObjection(o))); err != nil {
					return err
				}
			}
		}
		if !s.noLog {
			var err error
			switch {
			case prepared != nil:
				err, prepared = <-prepared, nil
			case stale:
				if next, err = loadFrontier(tx); err == nil {
					err = batch.prepare(next, changes)
				}
			}
			if err == nil {
				err = batch.store(tx)
			}
			if err != nil {
				return err
			}
			next = batch.next
		}
		return tx.Bucket(bucketMeta).Put(keyCounts, seal(kindCounts, keyCounts, n.encode()))
	})
	if err == nil {
		s.mu.Lock()
		s.frontier, s.stale = next, false
		s.mu.Unlock()
	}
	return err
}

// DataCenters reads the data centers' runtime statuses.
func (s *fileStore) DataCenters(ctx context.Context) (out []DataCenterState, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverCorrupt(s.path, &err)
	err = s.db.View(func(tx *bolt.Tx) error {
		n, err := readCounts(tx)
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketStatus).ForEach(func(k, v []byte) error {
			st, err := readStatus(k, v)
			if err != nil {
				return err
			}
			out = append(out, st)
			return nil
		})
		if err == nil && uint64(len(out)) != n.statuses {
			err = fmt.Errorf("%w: %d data center statuses found, the store counts %d", ErrCorrupt, len(out), n.statuses)
		}
		return err
	})
	return out, err
}

// metaKeys checks that the meta bucket holds only the records a format
// has there: the format, the counts, the log's tail and (formats 7 and 8)
// the tail's records. Any other key is damage: a flipped bit in "tail"
// would otherwise hide the tail's entries, and the log would open short.
func metaKeys(meta *bolt.Bucket) error {
	return meta.ForEach(func(k, _ []byte) error {
		switch {
		case bytes.Equal(k, keyFormat), bytes.Equal(k, keyCounts), bytes.Equal(k, keyTail):
		case len(k) == len(keyTail)+8 && bytes.HasPrefix(k, keyTail):
		default:
			return fmt.Errorf("unknown record %.40q in bucket %s", k, bucketMeta)
		}
		return nil
	})
}

// readStatus reads the status bucket's record of key k and value v.
func readStatus(k, v []byte) (DataCenterState, error) {
	v, err := unseal(kindStatus, k, v)
	if err != nil {
		return DataCenterState{}, err
	}
	d := decoder{b: v}
	st := d.status(string(k))
	if err := d.done("status of " + st.ID); err != nil {
		return DataCenterState{}, err
	}
	if !st.Status.IsValid() {
		return DataCenterState{}, fmt.Errorf("%w: data center %s has status %q", ErrCorrupt, st.ID, st.Status)
	}
	return st, nil
}

// Load reads every account with its events and agreements, and checks that
// no record is missing or left over.
func (s *fileStore) Load(ctx context.Context, fn func(StoredAccount) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverCorrupt(s.path, &err)
	return s.db.View(func(tx *bolt.Tx) error {
		want, err := readCounts(tx)
		if err != nil {
			return err
		}
		rd := newAccountReader(tx)
		var n uint64
		err = tx.Bucket(bucketAccounts).ForEach(func(k, v []byte) error {
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
		switch {
		case err != nil:
			return err
		case rd.ek != nil:
			return fmt.Errorf("%w: event %q of an account that has no placement", ErrCorrupt, rd.ek)
		case rd.ak != nil:
			return fmt.Errorf("%w: agreement %q of an account that has no placement", ErrCorrupt, rd.ak)
		case rd.ck != nil:
			return fmt.Errorf("%w: consent %q of an account that has no placement", ErrCorrupt, rd.ck)
		case rd.ok != nil:
			return fmt.Errorf("%w: objection %q of an account that has no placement", ErrCorrupt, rd.ok)
		case n != want.accounts || rd.agreementsRead != want.agreements:
			return fmt.Errorf("%w: %d accounts and %d agreements found, the store counts %d and %d",
				ErrCorrupt, n, rd.agreementsRead, want.accounts, want.agreements)
		case rd.consentsRead != want.consents || rd.objectionsRead != want.objections:
			return fmt.Errorf("%w: %d consents and %d objections found, the store counts %d and %d",
				ErrCorrupt, rd.consentsRead, rd.objectionsRead, want.consents, want.objections)
		}
		return nil
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
// account out of order. It counts the agreements it reads.
type accountReader struct {
	d                            decoder
	events, agreements           *bolt.Cursor
	ek, ev, ak, av               []byte
	agreementsRead               uint64
	consents, objections         *bolt.Cursor
	ck, cv, ok, ov               []byte
	consentsRead, objectionsRead uint64
}

func newAccountReader(tx *bolt.Tx) *accountReader {
	rd := &accountReader{events: tx.Bucket(bucketEvents).Cursor(), agreements: tx.Bucket(bucketAgreements).Cursor(),
		consents: tx.Bucket(bucketConsents).Cursor(), objections: tx.Bucket(bucketObjections).Cursor()}
	rd.ek, rd.ev = rd.events.First()
	rd.ak, rd.av = rd.agreements.First()
	rd.ck, rd.cv = rd.consents.First()
	rd.ok, rd.ov = rd.objections.First()
	return rd
}

func (rd *accountReader) seek(accountKey []byte) {
	prefix := append(accountKey[:len(accountKey):len(accountKey)], 0)
	rd.ek, rd.ev = rd.events.Seek(prefix)
	rd.ak, rd.av = rd.agreements.Seek(prefix)
	rd.ck, rd.cv = rd.consents.Seek(prefix)
	rd.ok, rd.ov = rd.objections.Seek(prefix)
}

// read decodes the account of key k and placement record v, with the
// events and agreements at the cursors' positions. The events must be
// versions 1 to the placement's, and no event or agreement may come
// before the account's own: their account would have no placement.
func (rd *accountReader) read(k, v []byte) (StoredAccount, error) {
	d := &rd.d
	id := string(k)
	prefix := append(k[:len(k):len(k)], 0)
	var err error
	if d.b, err = unseal(kindPlacement, k, v); err != nil {
		return StoredAccount{}, err
	}
	a := StoredAccount{Placement: d.placement(id)}
	if err := d.done("placement of " + id); err != nil {
		return StoredAccount{}, err
	}
	if rd.ek != nil && bytes.Compare(rd.ek, prefix) < 0 {
		return StoredAccount{}, fmt.Errorf("%w: event %q of an account that has no placement", ErrCorrupt, rd.ek)
	}
	if rd.ak != nil && bytes.Compare(rd.ak, prefix) < 0 {
		return StoredAccount{}, fmt.Errorf("%w: agreement %q of an account that has no placement", ErrCorrupt, rd.ak)
	}
	if rd.ck != nil && bytes.Compare(rd.ck, prefix) < 0 {
		return StoredAccount{}, fmt.Errorf("%w: consent %q of an account that has no placement", ErrCorrupt, rd.ck)
	}
	if rd.ok != nil && bytes.Compare(rd.ok, prefix) < 0 {
		return StoredAccount{}, fmt.Errorf("%w: objection %q of an account that has no placement", ErrCorrupt, rd.ok)
	}
	for ; rd.ek != nil && bytes.HasPrefix(rd.ek, prefix); rd.ek, rd.ev = rd.events.Next() {
		rest := rd.ek[len(prefix):]
		if len(rest) != 8 {
			return StoredAccount{}, fmt.Errorf("%w: event key of account %q", ErrCorrupt, id)
		}
		version := binary.BigEndian.Uint64(rest)
		if version != uint64(len(a.History))+1 {
			return StoredAccount{}, fmt.Errorf("%w: account %q: event %d follows event %d", ErrCorrupt, id, version, len(a.History))
		}
		if d.b, err = unseal(kindEvent, rd.ek, rd.ev); err != nil {
			return StoredAccount{}, err
		}
		a.History = append(a.History, d.event(id, version))
		if err := d.done("event of " + id); err != nil {
			return StoredAccount{}, err
		}
	}
	for ; rd.ak != nil && bytes.HasPrefix(rd.ak, prefix); rd.ak, rd.av = rd.agreements.Next() {
		if d.b, err = unseal(kindAgreement, rd.ak, rd.av); err != nil {
			return StoredAccount{}, err
		}
		a.Agreements = append(a.Agreements, d.agreement(id, string(rd.ak[len(prefix):])))
		if err := d.done("agreement of " + id); err != nil {
			return StoredAccount{}, err
		}
		rd.agreementsRead++
	}
	for ; rd.ck != nil && bytes.HasPrefix(rd.ck, prefix); rd.ck, rd.cv = rd.consents.Next() {
		if d.b, err = unseal(kindConsent, rd.ck, rd.cv); err != nil {
			return StoredAccount{}, err
		}
		a.Consents = append(a.Consents, d.consent(id, string(rd.ck[len(prefix):])))
		if err := d.done("consent of " + id); err != nil {
			return StoredAccount{}, err
		}
		rd.consentsRead++
	}
	for ; rd.ok != nil && bytes.HasPrefix(rd.ok, prefix); rd.ok, rd.ov = rd.objections.Next() {
		if d.b, err = unseal(kindObjection, rd.ok, rd.ov); err != nil {
			return StoredAccount{}, err
		}
		a.Objections = append(a.Objections, d.objection(id, string(rd.ok[len(prefix):])))
		if err := d.done("objection of " + id); err != nil {
			return StoredAccount{}, err
		}
		rd.objectionsRead++
	}
	if len(a.History) == 0 || a.History[len(a.History)-1].Version != a.Placement.Version {
		return StoredAccount{}, fmt.Errorf("%w: account %q: audit trail does not end at version %d", ErrCorrupt, id, a.Placement.Version)
	}
	return a, nil
}
