package authz

import (
	"runtime"
	"time"
)

// hashSlots bounds the PBKDF2 runs in progress in the process. A wrong
// password is never cached, so guessing costs a hash (~20 ms of CPU) per
// attempt: without a bound, 16 sockets guessing kept both cores of a
// 2-core machine busy and an honest connect waited ~100 ms for the CPU.
// With GOMAXPROCS-1 slots (at least one) one core is always left for
// everything else, and a cache hit never needs a slot. The slots belong
// to the process, not to a Policy, so a reload does not reset them.
var hashSlots = newSlots(max(1, runtime.GOMAXPROCS(0)-1))

// hashWait is how long a verification waits for a slot before the CONNECT
// is refused as busy (AuthBusy): long enough for a reconnect storm of
// honest clients to queue through, short enough that guesses pile up
// as refusals rather than as waiting goroutines.
var hashWait = time.Second

// slots is a counting semaphore with a bounded wait.
type slots chan struct{}

func newSlots(n int) slots { return make(slots, n) }

// acquire takes a slot, waiting at most hashWait; it reports whether it got
// one.
func (s slots) acquire() bool {
	select {
	case s <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(hashWait)
	defer t.Stop()
	select {
	case s <- struct{}{}:
		return true
	case <-t.C:
		return false
	}
}

func (s slots) release() { <-s }
