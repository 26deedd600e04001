package authz

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"sync/atomic"
)

// cacheKeySecret keys the HMAC that stands for a password in the
// verification cache, so the cache never holds a fast, unsalted digest of a
// password.
var cacheKeySecret = func() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}()

// minCacheEntries is the floor of the cache bound. Only successes are
// cached and a user has one password hash per policy, so the bound of
// minCacheEntries + users is reached only by inherited or colliding entries.
const minCacheEntries = 1024

type cacheKey struct {
	username string
	mac      [sha256.Size]byte
}

// verifyCache remembers successful password verifications.
type verifyCache struct {
	max int

	// mu guards ok and inflight.
	mu       sync.Mutex
	ok       map[cacheKey]string // value: the passwordHash verified against
	inflight map[cacheKey]*verifyCall

	hashes atomic.Int64 // PBKDF2 runs, observed by tests
}

// verifyCall is one PBKDF2 run that concurrent identical attempts wait for.
type verifyCall struct {
	done   chan struct{}
	result verifyResult
}

// verifyResult is the outcome of a verification.
type verifyResult int

const (
	verifyOK    verifyResult = iota
	verifyWrong              // the password does not match
	verifyBusy               // no hashing slot within hashWait (guard.go)
)

func (c *verifyCache) init(users int) {
	c.max = minCacheEntries + users
	c.ok = make(map[cacheKey]string)
	c.inflight = make(map[cacheKey]*verifyCall)
}

func passwordKey(username string, password []byte) cacheKey {
	m := hmac.New(sha256.New, cacheKeySecret)
	m.Write(password)
	k := cacheKey{username: username}
	m.Sum(k.mac[:0])
	return k
}

// hit reports whether password succeeded for u before, under this policy
// (or one WarmCache copied from).
func (c *verifyCache) hit(u *compiledUser, password []byte) bool {
	k := passwordKey(u.name, password)
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.ok[k]
	return ok
}

// verify checks password for u, running PBKDF2 only when this (username,
// password) has not succeeded before under this policy, and then only in
// one of the process's hashing slots (guard.go).
func (c *verifyCache) verify(u *compiledUser, password []byte) verifyResult {
	k := passwordKey(u.name, password)
	c.mu.Lock()
	if _, hit := c.ok[k]; hit {
		c.mu.Unlock()
		return verifyOK
	}
	if call := c.inflight[k]; call != nil {
		c.mu.Unlock()
		<-call.done
		return call.result
	}
	call := &verifyCall{done: make(chan struct{})}
	c.inflight[k] = call
	c.mu.Unlock()

	call.result = verifyBusy
	if hashSlots.acquire() {
		c.hashes.Add(1)
		call.result = verifyWrong
		if u.hash.verify(password) {
			call.result = verifyOK
		}
		hashSlots.release()
	}

	c.mu.Lock()
	delete(c.inflight, k)
	if call.result == verifyOK {
		c.storeLocked(k, u.hashStr)
	}
	c.mu.Unlock()
	close(call.done)
	return call.result
}

// storeLocked adds an entry, evicting an arbitrary one when full. mu must
// be held.
func (c *verifyCache) storeLocked(k cacheKey, hash string) {
	if len(c.ok) >= c.max {
		for old := range c.ok {
			delete(c.ok, old)
			break
		}
	}
	c.ok[k] = hash
}

// WarmCache copies old's successful verifications into p for users whose
// password hash did not change, so a reload does not make the next connect
// storm pay PBKDF2 again. Call it before publishing p.
func (p *Policy) WarmCache(old *Policy) {
	if old == nil || old == p {
		return
	}
	old.cache.mu.Lock()
	entries := make(map[cacheKey]string, len(old.cache.ok))
	for k, h := range old.cache.ok {
		entries[k] = h
	}
	old.cache.mu.Unlock()

	p.cache.mu.Lock()
	defer p.cache.mu.Unlock()
	for k, h := range entries {
		if u := p.users[k.username]; u != nil && u.hashStr == h {
			p.cache.storeLocked(k, h)
		}
	}
}
