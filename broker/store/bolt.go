package store

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Bolt and its life cycle: the bucket layout, Options, Open (which checks
// the file, replays the log and loads what is stored), Close, and the rule
// that a panic inside bbolt means a corrupt file. The rest of Bolt:
//
//	load.go        what Open reads back: log replay, the Snapshot
//	commit.go      the group commit: queueing, groups, the log writer
//	checkpoint.go  applying sealed log segments to the bbolt file
//	api.go         the Store methods that queue writes, and their keys
//	wal.go         the log's segment files and record format
//	codec.go       the record (value) encodings

// FileName is the database file inside the data directory.
const FileName = "fleetmq.db"

// MaxKeySize bounds a key: a client id plus a topic or filter.
const MaxKeySize = bolt.MaxKeySize

// formatVersion is the layout of buckets and keys; a store written by a
// later, incompatible version is refused, not misread.
const formatVersion = 1

var (
	bucketMeta       = []byte("meta")
	bucketSessions   = []byte("sessions")
	bucketSubs       = []byte("subscriptions")
	bucketDeliveries = []byte("deliveries")
	bucketInbound    = []byte("inbound-qos2")
	bucketRetained   = []byte("retained")
	bucketWills      = []byte("wills")
	keyFormat        = []byte("format")

	// allBuckets is indexed by the b* constants, which the log records.
	allBuckets = [][]byte{bucketMeta, bucketSessions, bucketSubs, bucketDeliveries, bucketInbound, bucketRetained, bucketWills}
	// ownedBuckets hold keys prefixed by clientKey.
	ownedBuckets = [][]byte{bucketSubs, bucketDeliveries, bucketInbound, bucketWills}
	// addedBuckets came after format 1 was released: a store without them
	// is older, not damaged, and gets them created.
	addedBuckets = [][]byte{bucketWills}
)

// Indexes into allBuckets. Never renumber: log segments record them.
const (
	bMeta uint8 = iota
	bSessions
	bSubs
	bDeliveries
	bInbound
	bRetained
	bWills
)

// Options configure Open.
type Options struct {
	// LockTimeout is how long Open waits for another process to let go of
	// the file (default 2 s), so a second broker on the same directory
	// fails clearly instead of hanging.
	LockTimeout time.Duration
	// Now is the clock used to purge expired sessions and messages at open
	// (default time.Now).
	Now func() time.Time
	// SegmentBytes is the size at which a log segment is sealed and
	// applied to the bbolt file (default DefaultSegmentBytes).
	SegmentBytes int64
}

// Bolt is the Store: a write-ahead log (wal.go) in front of a bbolt file.
type Bolt struct {
	db        *bolt.DB
	dir, path string

	// mu guards snap (once Open returns), pending, taken, groups, closed,
	// crashed and failed. cond, on mu, wakes the log writer when there is
	// work or the store closes.
	mu      sync.Mutex
	cond    *sync.Cond
	snap    *Snapshot // until Load hands it over
	pending []op
	taken   uint64  // operations the log writer took from pending so far
	groups  []Group // open groups: where each began, counting from the first op ever queued
	closed  bool
	crashed bool // test hook: stop as a kill would, applying nothing more
	// failed is the first log or checkpoint error. It sticks: after a
	// failed fdatasync the kernel may have dropped the dirty pages, so
	// nothing written later could be trusted to be durable.
	failed error

	log        segmentWriter // the log writer goroutine's only
	sealed     chan uint64   // sealed segments, log writer → checkpointer
	writerDone chan struct{}
	ckptDone   chan struct{}
	prepDone   chan struct{}

	closeOnce sync.Once
	closeErr  error // set once, inside closeOnce

	commits       atomic.Int64
	ops           atomic.Int64
	logBytes      atomic.Int64
	commitNanos   atomic.Int64
	checkpoints   atomic.Int64
	checkpointOps atomic.Int64
	replayed      int64 // set by Open
	torn          int64 // set by Open
}

type opKind uint8

const (
	opPut opKind = iota
	opDelete
	opDeleteSession
	opSync
)

// op is one queued operation; bucket indexes allBuckets.
type op struct {
	kind   opKind
	bucket uint8
	key    []byte
	val    []byte
	done   func(error)
}

// Open opens (or creates) the store in dir, checks it and loads it. A file
// that cannot be trusted is an error wrapping ErrCorrupt that names it; a
// file held by another process is ErrLocked.
func Open(dir string, opts Options) (b *Bolt, err error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = 2 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = DefaultSegmentBytes
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	path := filepath.Join(dir, FileName)
	db, err := openBolt(path, opts.LockTimeout)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			db.Close()
		}
	}()
	b = &Bolt{
		db: db, dir: dir, path: path,
		log: segmentWriter{
			dir: dir, segmentBytes: opts.SegmentBytes,
			wantSpare: make(chan struct{}, 1), spares: make(chan *os.File, 1),
		},
		sealed:     make(chan uint64, sealedBacklog),
		writerDone: make(chan struct{}),
		ckptDone:   make(chan struct{}),
		prepDone:   make(chan struct{}),
	}
	b.cond = sync.NewCond(&b.mu)
	if err := b.init(); err != nil {
		return nil, err
	}
	next, err := b.replay()
	if err != nil {
		return nil, err
	}
	if err := b.load(opts.Now()); err != nil {
		return nil, err
	}
	if err := b.log.create(next, min(opts.SegmentBytes, firstSegmentBytes)); err != nil {
		return nil, err
	}
	go b.writeLoop()
	go b.checkpointLoop()
	go b.log.prepare(b.prepDone)
	return b, nil
}

func openBolt(path string, timeout time.Duration) (db *bolt.DB, err error) {
	defer func() {
		// bbolt panics on some kinds of damage; that is a corrupt file too.
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, r)
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{
		Timeout: timeout,
		// The freelist is written with every commit (NoFreelistSync off):
		// rebuilding it at open scans the pages in a goroutine of bbolt's
		// own, where a corrupt page would crash the process instead of
		// failing Open.
		FreelistType: bolt.FreelistMapType,
	})
	var pe *fs.PathError
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("%w: %s (waited %s)", ErrLocked, path, timeout)
	case errors.As(err, &pe) && !errors.Is(err, bolterrors.ErrInvalid):
		return nil, fmt.Errorf("store: %w", err) // permissions, missing directory: not corruption
	default:
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, path, err)
	}
}

// init creates the buckets of a new file and checks the format of an
// existing one.
func (b *Bolt) init() (err error) {
	defer b.recoverCorrupt(&err)
	err = b.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			fresh := true
			_ = tx.ForEach(func([]byte, *bolt.Bucket) error { fresh = false; return nil })
			if !fresh {
				return fmt.Errorf("%w: %s: no format marker (not a fleetmq store?)", ErrCorrupt, b.path)
			}
			for _, name := range allBuckets {
				if _, err := tx.CreateBucket(name); err != nil {
					return err
				}
			}
			return tx.Bucket(bucketMeta).Put(keyFormat, []byte{formatVersion})
		}
		if v := meta.Get(keyFormat); len(v) != 1 || v[0] != formatVersion {
			return fmt.Errorf("%w: %s: format %x, this broker reads %d", ErrCorrupt, b.path, v, formatVersion)
		}
		for _, name := range allBuckets {
			if tx.Bucket(name) != nil {
				continue
			}
			if !slices.ContainsFunc(addedBuckets, func(a []byte) bool { return bytes.Equal(a, name) }) {
				return fmt.Errorf("%w: %s: bucket %s missing", ErrCorrupt, b.path, name)
			}
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrCorrupt) {
		err = fmt.Errorf("store %s: %w", b.path, err)
	}
	return err
}

func (b *Bolt) recoverCorrupt(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: %s: %v", ErrCorrupt, b.path, r)
	}
}

// Stats returns the work done so far.
func (b *Bolt) Stats() Stats {
	b.mu.Lock()
	pending := len(b.pending)
	failed := b.failed != nil
	b.mu.Unlock()
	return Stats{
		Commits: b.commits.Load(), Ops: b.ops.Load(),
		LogBytes: b.logBytes.Load(), CommitSeconds: float64(b.commitNanos.Load()) / 1e9,
		Checkpoints: b.checkpoints.Load(), CheckpointOps: b.checkpointOps.Load(),
		Pending: int64(pending), Replayed: b.replayed, TornBytes: b.torn, Failed: failed,
	}
}

// Close writes what is queued, applies the log to the bbolt file and
// closes it. It returns the store's first failure, if any.
func (b *Bolt) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		b.cond.Broadcast()
		b.mu.Unlock()
		<-b.writerDone
		<-b.ckptDone
		<-b.prepDone
		b.mu.Lock()
		failed := b.failed
		b.mu.Unlock()
		b.closeErr = errors.Join(failed, b.db.Close())
	})
	return b.closeErr
}

// crash stops the store as a kill would at this instant: queued writes
// are dropped (their callbacks get ErrClosed), nothing more is applied to
// the bbolt file, and the files are closed as they are. For tests.
func (b *Bolt) crash() {
	b.mu.Lock()
	b.crashed = true
	b.mu.Unlock()
	b.Close()
}
