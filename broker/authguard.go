package broker

import (
	"net/netip"
	"sync"
	"time"

	"github.com/fleetmq/fleetmq/broker/authz"
)

// The broker's half of the password-guessing defence. A wrong password is
// never cached, so each guess costs a PBKDF2 run; authz bounds how many run
// at once (hashing slots), and the broker backs off sources and usernames
// that keep failing: past a few failures, a CONNECT that would need a hash
// is refused (v5 0x9F Connection rate exceeded, 3.1.1 rc 3) for a delay
// that doubles with each further failure, up to a cap. A CONNECT the
// Authorizer can decide without a hash (CachedAuthorizer: a password
// verified before) is never held back, so guessing cannot lock out a
// device whose password is known good, even one behind the same NAT.
const (
	// sourceFreeFailures is generous: many devices may share an address
	// (NAT, a node's SNAT in front of a Service).
	sourceFreeFailures = 10
	userFreeFailures   = 5
	backoffBase        = time.Second
	backoffMax         = time.Minute
	// backoffForget drops a record this long after its last failure.
	backoffForget = 10 * time.Minute
	// backoffEntries bounds each table (~100 bytes an entry); past it,
	// forgotten records are swept, then arbitrary ones dropped.
	backoffEntries = 16384
)

// authGuard tracks recent authentication failures per source and per
// username. Its zero value is ready; it lives as long as the Server, across
// auth reloads.
type authGuard struct {
	sources backoff
	users   backoff
}

// Why a CONNECT is throttled.
const (
	notThrottled = iota
	throttledSource
	throttledUser
)

// throttled says why a CONNECT from source as username must not be
// checked now, or notThrottled when it may.
func (g *authGuard) throttled(source, username string, now time.Time) int {
	switch {
	case g.sources.blocked(source, now):
		return throttledSource
	case g.users.blocked(username, now):
		return throttledUser
	}
	return notThrottled
}

// record notes the outcome of a password check: a wrong password or
// unknown user counts against source and username; a right password clears
// the username's failures (not the source's: one valid account must not
// reset guessing from an address).
func (g *authGuard) record(source, username string, res authz.AuthResult, now time.Time) {
	switch res {
	case authz.AuthBadCredentials:
		g.sources.fail(source, sourceFreeFailures, now)
		g.users.fail(username, userFreeFailures, now)
	case authz.AuthOK, authz.AuthNotAuthorized:
		g.users.clear(username)
	}
}

// sourceKey is the address a client's failures are counted against: its
// IP, or for IPv6 its /64, which one host usually has whole. An address
// that does not parse (a test's pipe) counts as itself.
func sourceKey(remote string) string {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return remote
	}
	a := ap.Addr().Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// backoff is a bounded table of failure records with exponential delays.
type backoff struct {
	mu sync.Mutex // mu guards m
	m  map[string]strikes
}

// strikes are the recent failures of one key.
type strikes struct {
	failures int
	until    int64 // unix nanoseconds: refused until then
	last     int64 // unix nanoseconds of the last failure
}

// blocked reports whether key is backing off at now.
func (b *backoff) blocked(key string, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.m[key]
	return ok && now.UnixNano() < r.until
}

// fail counts a failure of key; past free failures, key backs off for
// backoffBase, doubling with each failure after, up to backoffMax.
func (b *backoff) fail(key string, free int, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := now.UnixNano()
	r, ok := b.m[key]
	if !ok || t-r.last > int64(backoffForget) {
		if len(b.m) >= backoffEntries {
			b.sweepLocked(t)
		}
		if b.m == nil {
			b.m = make(map[string]strikes)
		}
		r = strikes{}
	}
	r.failures++
	r.last = t
	if over := r.failures - free; over > 0 {
		d := min(backoffBase<<min(over-1, 16), backoffMax)
		r.until = t + int64(d)
	}
	b.m[key] = r
}

// clear forgets key's failures.
func (b *backoff) clear(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.m, key)
}

// sweepLocked drops records forgotten by t, then, if the table is still
// full, arbitrary ones (Go's map order) until a quarter is free. Caller
// holds b.mu.
func (b *backoff) sweepLocked(t int64) {
	for k, r := range b.m {
		if t-r.last > int64(backoffForget) {
			delete(b.m, k)
		}
	}
	for k := range b.m {
		if len(b.m) < backoffEntries*3/4 {
			break
		}
		delete(b.m, k)
	}
}

// len is the number of records, for tests of the bound.
func (b *backoff) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}
