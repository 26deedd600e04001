package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fleetmq/fleetmq/broker/outbox"
)

// What Open reads back: the log segments a previous run left are replayed
// into the bbolt file, then the file is checked and decoded into the
// Snapshot that Load hands to the broker, purging what has expired or
// belongs to no session.

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
			if d.Msg.Expired(ns) && d.State != outbox.AwaitComp {
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
