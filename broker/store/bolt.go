package store

import (
	"bytes"
	"encoding/binary"
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

	"github.com/fleetmq/fleetmq/broker/session"
	"github.com/fleetmq/fleetmq/broker/topic"
)

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

	snap *Snapshot // until Load hands it over

	// mu guards pending, taken, groups, closed, crashed and failed.
	mu      sync.Mutex
	cond    *sync.Cond
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
	closeErr  error

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

// load checks the file's pages, decodes every record, and purges expired
// sessions and messages and records no session owns, in one transaction.
func (b *Bolt) load(now time.Time) (err error) {
	defer b.recoverCorrupt(&err)
	ns := now.UnixNano()
	corrupt := func(what string, k []byte, err error) error {
		return fmt.Errorf("%w: %s: %s %q: %w", ErrCorrupt, b.path, what, k, err)
	}
	snap := &Snapshot{}
	err = b.db.Update(func(tx *bolt.Tx) error {
		for cerr := range tx.Check() {
			return fmt.Errorf("%w: %s: %w", ErrCorrupt, b.path, cerr)
		}
		var purge []op
		byID := make(map[string]*Session)
		err := tx.Bucket(bucketSessions).ForEach(func(k, v []byte) error {
			s := &Session{ClientID: string(k)}
			if err := decodeSession(v, s); err != nil {
				return corrupt("session", k, err)
			}
			if s.DisconnectedAt != 0 && ns-s.DisconnectedAt >= int64(s.Expiry)*int64(time.Second) {
				purge = append(purge, op{kind: opDeleteSession, bucket: bSessions, key: bytes.Clone(k)})
				return nil
			}
			byID[s.ClientID] = s
			snap.Sessions = append(snap.Sessions, s)
			return nil
		})
		if err != nil {
			return err
		}
		owned := func(bucket uint8, what string, fn func(s *Session, rest, v []byte) (keep bool, err error)) error {
			return tx.Bucket(allBuckets[bucket]).ForEach(func(k, v []byte) error {
				id, rest, err := splitClientKey(k)
				if err != nil {
					return corrupt(what, k, err)
				}
				s := byID[id]
				keep := false
				if s != nil {
					if keep, err = fn(s, rest, v); err != nil {
						return corrupt(what, k, err)
					}
				}
				if !keep {
					purge = append(purge, op{kind: opDelete, bucket: bucket, key: bytes.Clone(k)})
				}
				return nil
			})
		}
		err = owned(bSubs, "subscription", func(s *Session, rest, v []byte) (bool, error) {
			sub, err := decodeSubscription(v)
			if err != nil {
				return false, err
			}
			s.Subscriptions = append(s.Subscriptions, Subscription{Key: string(rest), Sub: sub})
			return true, nil
		})
		if err != nil {
			return err
		}
		err = owned(bDeliveries, "delivery", func(s *Session, rest, v []byte) (bool, error) {
			d, err := decodeDelivery(v)
			if err != nil {
				return false, err
			}
			if len(rest) != 8 || binary.BigEndian.Uint64(rest) != d.Seq {
				return false, errors.New("key does not match the record's sequence number")
			}
			if d.Msg.Expired(ns) && d.State != session.AwaitComp {
				return false, nil
			}
			s.Deliveries = append(s.Deliveries, d)
			return true, nil
		})
		if err != nil {
			return err
		}
		err = owned(bInbound, "inbound QoS 2 id", func(s *Session, rest, v []byte) (bool, error) {
			if len(rest) != 2 {
				return false, errors.New("bad packet id")
			}
			s.InboundQoS2 = append(s.InboundQoS2, binary.BigEndian.Uint16(rest))
			return true, nil
		})
		if err != nil {
			return err
		}
		err = owned(bWills, "will", func(s *Session, rest, v []byte) (bool, error) {
			if len(rest) != 0 {
				return false, errors.New("bad will key")
			}
			w, err := decodeWill(v)
			if err != nil {
				return false, err
			}
			s.Will = w
			return true, nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketRetained).ForEach(func(k, v []byte) error {
			m, err := decodeRetained(v)
			if err != nil {
				return corrupt("retained message", k, err)
			}
			if m.Topic != string(k) {
				return corrupt("retained message", k, fmt.Errorf("topic %q in the record", m.Topic))
			}
			if m.Expired(ns) {
				purge = append(purge, op{kind: opDelete, bucket: bRetained, key: bytes.Clone(k)})
				return nil
			}
			snap.Retained = append(snap.Retained, m)
			return nil
		})
		if err != nil {
			return err
		}
		return applyOps(tx, purge)
	})
	if err != nil && !errors.Is(err, ErrCorrupt) {
		err = fmt.Errorf("store %s: %w", b.path, err)
	}
	b.snap = snap
	return err
}

// Load returns the content loaded at Open; a second call returns an empty
// snapshot.
func (b *Bolt) Load() (*Snapshot, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.snap
	b.snap = nil
	if s == nil {
		s = &Snapshot{}
	}
	return s, nil
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

func (b *Bolt) submit(o op) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		if o.done != nil {
			go o.done(ErrClosed) // never synchronously: the caller may hold locks
		}
		return
	}
	b.pending = append(b.pending, o)
	if len(b.pending) == 1 {
		b.cond.Signal()
	}
	b.mu.Unlock()
}

func (b *Bolt) fail(err error) {
	b.mu.Lock()
	if b.failed == nil {
		b.failed = err
	}
	b.mu.Unlock()
}

func (b *Bolt) BeginGroup() Group {
	b.mu.Lock()
	g := Group(b.taken + uint64(len(b.pending)))
	b.groups = append(b.groups, g)
	b.mu.Unlock()
	return g
}

func (b *Bolt) EndGroup(g Group) {
	b.mu.Lock()
	if i := slices.Index(b.groups, g); i >= 0 {
		b.groups = slices.Delete(b.groups, i, i+1)
		b.cond.Signal()
	}
	b.mu.Unlock()
}

// readyLocked is how many pending operations the next commit may take:
// those before the oldest open group (all of them once closing: no
// connection is left to end a group).
func (b *Bolt) readyLocked() int {
	n := len(b.pending)
	if b.closed {
		return n
	}
	for _, g := range b.groups {
		n = min(n, int(uint64(g)-b.taken))
	}
	return n
}

// writeLoop is the group commit: whatever was queued while the previous
// record was being written goes into the next one, so many connections
// share one fdatasync, and no timer adds latency.
func (b *Bolt) writeLoop() {
	defer close(b.writerDone)
	defer close(b.sealed)
	defer close(b.log.wantSpare)
	var batch []op
	for {
		b.mu.Lock()
		n := b.readyLocked()
		for n == 0 && !b.closed {
			b.cond.Wait()
			n = b.readyLocked()
		}
		if b.crashed {
			batch, b.pending = b.pending, nil
			b.mu.Unlock()
			runCallbacks(batch, ErrClosed)
			if b.log.f != nil {
				_ = b.log.seal() // a crash: the file stays as it is
			}
			return
		}
		if n == 0 {
			b.mu.Unlock()
			break
		}
		if n == len(b.pending) {
			batch, b.pending = b.pending, batch[:0]
		} else {
			batch = append(batch[:0], b.pending[:n]...)
			rest := copy(b.pending, b.pending[n:])
			clear(b.pending[rest:])
			b.pending = b.pending[:rest]
		}
		b.taken += uint64(n)
		err := b.failed
		b.mu.Unlock()

		if err == nil {
			err = b.write(batch)
		}
		runCallbacks(batch, err)
		clear(batch)
		if cap(batch) > 4096 {
			batch = nil
		}
	}
	// Closing: what is queued is written; the checkpointer applies the
	// active segment too, so a clean shutdown leaves no log behind.
	if b.log.f != nil {
		if err := b.sealActive(); err != nil {
			b.fail(err)
		}
	}
}

// runCallbacks runs the callbacks of batch, in order.
func runCallbacks(batch []op, err error) {
	for i := range batch {
		if batch[i].done != nil {
			batch[i].done(err)
		}
	}
}

// sealActive closes the active segment and hands it to the checkpointer,
// waiting while sealedBacklog segments are unapplied.
func (b *Bolt) sealActive() error {
	seg := b.log.seg
	if err := b.log.seal(); err != nil {
		return fmt.Errorf("store: log: %w", err)
	}
	b.sealed <- seg
	return nil
}

// write appends the write operations of batch to the log, durably.
func (b *Bolt) write(batch []op) error {
	writes := 0
	for i := range batch {
		if batch[i].kind != opSync {
			writes++
		}
	}
	if writes == 0 {
		return nil // everything before it is durable already
	}
	start := time.Now()
	n, err := b.log.append(batch)
	b.commitNanos.Add(int64(time.Since(start)))
	b.logBytes.Add(int64(n))
	if err != nil {
		b.fail(err)
		return err
	}
	b.commits.Add(1)
	b.ops.Add(int64(writes))
	if b.log.full() {
		// batch is durable whatever happens here; a failure stops the
		// writes after it.
		err := b.sealActive()
		if err == nil {
			err = b.log.create(b.log.seg+1, 0)
		}
		if err != nil {
			b.fail(err)
		}
	}
	return nil
}

// checkpointLoop applies sealed segments to the bbolt file, in order.
func (b *Bolt) checkpointLoop() {
	defer close(b.ckptDone)
	for seg := range b.sealed {
		b.mu.Lock()
		skip := b.crashed || b.failed != nil
		b.mu.Unlock()
		if skip {
			continue // the segment stays on disk for the next open
		}
		if _, err := b.checkpoint(seg, false); err != nil {
			b.fail(err)
		}
	}
}

// replay applies the segments a previous run left (all of them, after a
// crash) and returns the number for the next segment.
func (b *Bolt) replay() (next uint64, err error) {
	if err := os.Remove(filepath.Join(b.dir, spareName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("store: %w", err)
	}
	segs, err := listSegments(b.dir)
	if err != nil {
		return 0, err
	}
	for i, seg := range segs {
		c, err := b.checkpoint(seg, i == len(segs)-1)
		if err != nil {
			return 0, err
		}
		b.replayed += int64(len(c.ops))
		b.torn += int64(c.torn)
	}
	if len(segs) == 0 {
		return 1, nil
	}
	return segs[len(segs)-1] + 1, nil
}

// checkpoint applies one segment to the bbolt file in one transaction and
// removes it. tail is true for the last segment at open, which may end in
// an interrupted write.
func (b *Bolt) checkpoint(seg uint64, tail bool) (c segmentContent, err error) {
	defer b.recoverCorrupt(&err)
	path := filepath.Join(b.dir, segmentName(seg))
	data, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("store: log: %w", err)
	}
	if c, err = decodeSegment(data, tail); err != nil {
		return c, fmt.Errorf("%w: %s: %w", ErrCorrupt, path, err)
	}
	ops := coalesce(c.ops)
	if len(ops) > 0 {
		if err = b.db.Update(func(tx *bolt.Tx) error { return applyOps(tx, ops) }); err != nil {
			return c, fmt.Errorf("store %s: applying %s: %w", b.path, path, err)
		}
	}
	// One removal made durable at a time: the segments left are always
	// the log's newest, so a replay never applies an older one alone.
	if err := os.Remove(path); err != nil {
		return c, fmt.Errorf("store: log: %w", err)
	}
	if err := syncDir(b.dir); err != nil {
		return c, fmt.Errorf("store: log: %w", err)
	}
	b.checkpoints.Add(1)
	b.checkpointOps.Add(int64(len(ops)))
	return c, nil
}

func applyOps(tx *bolt.Tx, ops []op) error {
	for i := range ops {
		if err := applyOp(tx, &ops[i]); err != nil {
			return err
		}
	}
	return nil
}

func applyOp(tx *bolt.Tx, o *op) error {
	switch o.kind {
	case opPut:
		return tx.Bucket(allBuckets[o.bucket]).Put(o.key, o.val)
	case opDelete:
		return tx.Bucket(allBuckets[o.bucket]).Delete(o.key)
	case opDeleteSession:
		if err := tx.Bucket(bucketSessions).Delete(o.key); err != nil {
			return err
		}
		prefix := clientKey(nil, string(o.key))
		for _, name := range ownedBuckets {
			bk := tx.Bucket(name)
			var keys [][]byte
			c := bk.Cursor()
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				keys = append(keys, bytes.Clone(k))
			}
			for _, k := range keys {
				if err := bk.Delete(k); err != nil {
					return err
				}
			}
		}
	}
	return nil
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

func (b *Bolt) SaveSession(clientID string, expiry uint32, disconnectedAt int64) {
	b.submit(op{kind: opPut, bucket: bSessions, key: []byte(clientID), val: encodeSession(expiry, disconnectedAt)})
}

func (b *Bolt) DeleteSession(clientID string) {
	b.submit(op{kind: opDeleteSession, bucket: bSessions, key: []byte(clientID)})
}

func (b *Bolt) SaveSubscription(clientID, key string, sub topic.Subscription) {
	k := append(clientKey(nil, clientID), key...)
	b.submit(op{kind: opPut, bucket: bSubs, key: k, val: encodeSubscription(sub)})
}

func (b *Bolt) DeleteSubscription(clientID, key string) {
	k := append(clientKey(nil, clientID), key...)
	b.submit(op{kind: opDelete, bucket: bSubs, key: k})
}

func deliveryKey(clientID string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(clientKey(make([]byte, 0, len(clientID)+10), clientID), seq)
}

func (b *Bolt) PutDelivery(clientID string, d Delivery) {
	b.submit(op{kind: opPut, bucket: bDeliveries, key: deliveryKey(clientID, d.Seq), val: encodeDelivery(&d)})
}

func (b *Bolt) DeleteDelivery(clientID string, seq uint64) {
	b.submit(op{kind: opDelete, bucket: bDeliveries, key: deliveryKey(clientID, seq)})
}

func inboundKey(clientID string, id uint16) []byte {
	return binary.BigEndian.AppendUint16(clientKey(nil, clientID), id)
}

func (b *Bolt) SaveInboundQoS2(clientID string, packetID uint16) {
	b.submit(op{kind: opPut, bucket: bInbound, key: inboundKey(clientID, packetID), val: []byte{}})
}

func (b *Bolt) ReleaseInboundQoS2(clientID string, packetID uint16) {
	b.submit(op{kind: opDelete, bucket: bInbound, key: inboundKey(clientID, packetID)})
}

func (b *Bolt) SaveWill(clientID string, w Will) {
	b.submit(op{kind: opPut, bucket: bWills, key: clientKey(nil, clientID), val: encodeWill(&w)})
}

func (b *Bolt) DeleteWill(clientID string) {
	b.submit(op{kind: opDelete, bucket: bWills, key: clientKey(nil, clientID)})
}

func (b *Bolt) SetRetained(m *session.Message) {
	b.submit(op{kind: opPut, bucket: bRetained, key: []byte(m.Topic), val: encodeRetained(m)})
}

func (b *Bolt) DeleteRetained(topic string) {
	b.submit(op{kind: opDelete, bucket: bRetained, key: []byte(topic)})
}

func (b *Bolt) Sync(done func(error)) {
	b.submit(op{kind: opSync, done: done})
}

var _ Store = (*Bolt)(nil)
