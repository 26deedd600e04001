package broker

import (
	"fmt"
	"testing"
	"time"

	"github.com/fleetmq/fleetmq/broker/authz"
)

// TestAuthGuardBounded: guessing with ever new usernames from ever new
// addresses cannot grow the guard's tables past backoffEntries.
func TestAuthGuardBounded(t *testing.T) {
	t.Parallel()
	var g authGuard
	now := time.Now()
	for i := range 3 * backoffEntries {
		g.record(fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255), fmt.Sprint("user-", i), authz.AuthBadCredentials, now)
	}
	if n, m := g.sources.len(), g.users.len(); n > backoffEntries || m > backoffEntries {
		t.Errorf("tables hold %d sources and %d usernames, want at most %d each", n, m, backoffEntries)
	}
}

// TestAuthGuardBackoff: free failures, then a delay that doubles up to
// the cap, forgotten after backoffForget; a right password clears the
// username, not the source.
func TestAuthGuardBackoff(t *testing.T) {
	t.Parallel()
	var g authGuard
	now := time.Now()
	fail := func() { g.record("src", "u", authz.AuthBadCredentials, now) }
	for range userFreeFailures {
		fail()
	}
	if why := g.throttled("src", "u", now); why != notThrottled {
		t.Fatalf("after %d failures: throttled (%d)", userFreeFailures, why)
	}
	fail()
	if g.throttled("other", "u", now) != throttledUser || g.throttled("other", "u", now.Add(backoffBase)) != notThrottled {
		t.Errorf("first delay is not %v", backoffBase)
	}
	fail()
	if g.throttled("other", "u", now.Add(2*backoffBase-1)) != throttledUser {
		t.Errorf("second delay is not %v", 2*backoffBase)
	}
	for range 40 {
		fail()
	}
	if g.throttled("other", "u", now.Add(backoffMax)) != notThrottled {
		t.Errorf("delay above the cap %v", backoffMax)
	}
	if g.throttled("src", "x", now) != throttledSource {
		t.Errorf("source not throttled after %d failures", 42+userFreeFailures)
	}
	g.record("src", "u", authz.AuthOK, now)
	if g.throttled("other", "u", now) != notThrottled || g.throttled("src", "x", now) != throttledSource {
		t.Errorf("a right password must clear the username only")
	}
	later := now.Add(backoffForget + time.Second)
	g.record("src", "v", authz.AuthBadCredentials, later)
	if g.throttled("src", "x", later) != notThrottled {
		t.Errorf("source failures not forgotten after %v", backoffForget)
	}
}

func TestSourceKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ remote, want string }{
		{"192.0.2.7:51234", "192.0.2.7"},
		{"[::ffff:192.0.2.7]:1", "192.0.2.7"},
		{"[2001:db8:1:2:3:4:5:6]:1883", "2001:db8:1:2::/64"},
		{"pipe", "pipe"},
	} {
		if got := sourceKey(tc.remote); got != tc.want {
			t.Errorf("sourceKey(%q) = %q, want %q", tc.remote, got, tc.want)
		}
	}
}
