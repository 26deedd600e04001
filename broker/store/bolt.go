package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
	keyFormat        = []byte("format")

	allBuckets = [][]byte{bucketMeta, bucketSessions, bucketSubs, bucketDeliveries, bucketInbound, bucketRetained}
	// ownedBuckets hold keys prefixed by clientKey.
	ownedBuckets = [][]byte{bucketSubs, bucketDeliveries, bucketInbound}
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
}

// Bolt is the Store on a bbolt file.
type Bolt struct {
	db   *bolt.DB
	path string

	snap *Snapshot // until Load hands it over

	// mu guards pending and closed.
	mu       sync.Mutex
	cond     *sync.Cond
	pending  []op
	closed   bool
	loopDone chan struct{}

	closeOnce sync.Once
	closeErr  error

	commits atomic.Int64
	ops     atomic.Int64
}

type opKind uint8

const (
	opPut opKind = iota
	opDelete
	opDeleteSession
	opSync
)

type op struct {
	kind   opKind
	bucket []byte
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
	b = &Bolt{db: db, path: path, loopDone: make(chan struct{})}
	b.cond = sync.NewCond(&b.mu)
	if err := b.init(); err != nil {
		return nil, err
	}
	if err := b.load(opts.Now()); err != nil {
		return nil, err
	}
	go b.loop()
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
			if tx.Bucket(name) == nil {
				return fmt.Errorf("%w: %s: bucket %s missing", ErrCorrupt, b.path, name)
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
				purge = append(purge, op{kind: opDeleteSession, key: bytes.Clone(k)})
				return nil
			}
			byID[s.ClientID] = s
			snap.Sessions = append(snap.Sessions, s)
			return nil
		})
		if err != nil {
			return err
		}
		owned := func(bucket []byte, what string, fn func(s *Session, rest, v []byte) (keep bool, err error)) error {
			return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
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
		err = owned(bucketSubs, "subscription", func(s *Session, rest, v []byte) (bool, error) {
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
		err = owned(bucketDeliveries, "delivery", func(s *Session, rest, v []byte) (bool, error) {
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
		err = owned(bucketInbound, "inbound QoS 2 id", func(s *Session, rest, v []byte) (bool, error) {
			if len(rest) != 2 {
				return false, errors.New("bad packet id")
			}
			s.InboundQoS2 = append(s.InboundQoS2, binary.BigEndian.Uint16(rest))
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
				purge = append(purge, op{kind: opDelete, bucket: bucketRetained, key: bytes.Clone(k)})
				return nil
			}
			snap.Retained = append(snap.Retained, m)
			return nil
		})
		if err != nil {
			return err
		}
		for i := range purge {
			if err := applyOp(tx, &purge[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrCorrupt) {
		err = fmt.Errorf("store %s: %w", b.path, err)
	}
	b.snap = snap
	return err
}

// Path is the database file.
func (b *Bolt) Path() string { return b.path }

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
func (b *Bolt) Stats() Stats { return Stats{Commits: b.commits.Load(), Ops: b.ops.Load()} }

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

// loop is the group commit: whatever was queued while the previous
// transaction was being written goes into the next one, so many
// connections share one fsync, and no timer adds latency.
func (b *Bolt) loop() {
	defer close(b.loopDone)
	var batch []op
	for {
		b.mu.Lock()
		for len(b.pending) == 0 && !b.closed {
			b.cond.Wait()
		}
		if len(b.pending) == 0 {
			b.mu.Unlock()
			return
		}
		batch, b.pending = b.pending, batch[:0]
		b.mu.Unlock()

		err := b.commit(batch)
		for i := range batch {
			if batch[i].done != nil {
				batch[i].done(err)
			}
			batch[i] = op{}
		}
		if cap(batch) > 4096 {
			batch = nil
		}
	}
}

func (b *Bolt) commit(batch []op) error {
	writes := 0
	for i := range batch {
		if batch[i].kind != opSync {
			writes++
		}
	}
	if writes == 0 {
		return nil
	}
	err := b.db.Update(func(tx *bolt.Tx) error {
		for i := range batch {
			if err := applyOp(tx, &batch[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store %s: commit: %w", b.path, err)
	}
	b.commits.Add(1)
	b.ops.Add(int64(writes))
	return nil
}

func applyOp(tx *bolt.Tx, o *op) error {
	switch o.kind {
	case opPut:
		return tx.Bucket(o.bucket).Put(o.key, o.val)
	case opDelete:
		return tx.Bucket(o.bucket).Delete(o.key)
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

// Close applies what is queued and closes the file.
func (b *Bolt) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		b.cond.Broadcast()
		b.mu.Unlock()
		<-b.loopDone
		b.closeErr = b.db.Close()
	})
	return b.closeErr
}

func (b *Bolt) SaveSession(clientID string, expiry uint32, disconnectedAt int64) {
	b.submit(op{kind: opPut, bucket: bucketSessions, key: []byte(clientID), val: encodeSession(expiry, disconnectedAt)})
}

func (b *Bolt) DeleteSession(clientID string) {
	b.submit(op{kind: opDeleteSession, key: []byte(clientID)})
}

func (b *Bolt) SaveSubscription(clientID, key string, sub topic.Subscription) {
	k := append(clientKey(nil, clientID), key...)
	b.submit(op{kind: opPut, bucket: bucketSubs, key: k, val: encodeSubscription(sub)})
}

func (b *Bolt) DeleteSubscription(clientID, key string) {
	k := append(clientKey(nil, clientID), key...)
	b.submit(op{kind: opDelete, bucket: bucketSubs, key: k})
}

func deliveryKey(clientID string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(clientKey(make([]byte, 0, len(clientID)+10), clientID), seq)
}

func (b *Bolt) PutDelivery(clientID string, d Delivery) {
	b.submit(op{kind: opPut, bucket: bucketDeliveries, key: deliveryKey(clientID, d.Seq), val: encodeDelivery(&d)})
}

func (b *Bolt) DeleteDelivery(clientID string, seq uint64) {
	b.submit(op{kind: opDelete, bucket: bucketDeliveries, key: deliveryKey(clientID, seq)})
}

func inboundKey(clientID string, id uint16) []byte {
	return binary.BigEndian.AppendUint16(clientKey(nil, clientID), id)
}

func (b *Bolt) SaveInboundQoS2(clientID string, packetID uint16) {
	b.submit(op{kind: opPut, bucket: bucketInbound, key: inboundKey(clientID, packetID), val: []byte{}})
}

func (b *Bolt) ReleaseInboundQoS2(clientID string, packetID uint16) {
	b.submit(op{kind: opDelete, bucket: bucketInbound, key: inboundKey(clientID, packetID)})
}

func (b *Bolt) SetRetained(m *session.Message) {
	b.submit(op{kind: opPut, bucket: bucketRetained, key: []byte(m.Topic), val: encodeRetained(m)})
}

func (b *Bolt) DeleteRetained(topic string) {
	b.submit(op{kind: opDelete, bucket: bucketRetained, key: []byte(topic)})
}

func (b *Bolt) Sync(done func(error)) {
	b.submit(op{kind: opSync, done: done})
}

var _ Store = (*Bolt)(nil)
