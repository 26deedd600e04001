package store

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// The checkpointer: sealed log segments are applied to the bbolt file, one
// transaction per segment, and then removed. replay (load.go) applies the
// segments left at Open the same way.

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
