package store

import (
	"fmt"
	"slices"
	"time"
)

// The group commit: write methods queue operations (submit); one
// goroutine, writeLoop, takes everything queued that no open group holds
// back, appends it to the log as one record with one fdatasync, runs the
// callbacks, and seals full segments for the checkpointer.

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
