package authz

import (
	"sync"
	"testing"
)

func TestAuthenticate(t *testing.T) {
	tests := []struct {
		name        string
		anonymous   bool // bundle.AllowAnonymous
		username    string
		hasUsername bool
		password    string
		want        AuthResult
	}{
		{"right password", false, "alice", true, "pw-alice", AuthOK},
		{"wrong password", false, "alice", true, "pw-bob", AuthBadCredentials},
		{"empty password", false, "alice", true, "", AuthBadCredentials},
		{"unknown user", false, "mallory", true, "pw-mallory", AuthBadCredentials},
		{"empty username", false, "", true, "pw-", AuthBadCredentials},
		{"empty username with anonymous allowed", true, "", true, "pw-", AuthBadCredentials},
		{"disabled user, right password", false, "carol", true, "pw-carol", AuthNotAuthorized},
		{"disabled user, wrong password", false, "carol", true, "nope", AuthBadCredentials},
		{"no username, anonymous refused", false, "", false, "", AuthNotAuthorized},
		{"no username, anonymous allowed", true, "", false, "", AuthOK},
		{"no username but a password, anonymous allowed", true, "", false, "pw-alice", AuthOK},
		{"unknown user with anonymous allowed", true, "mallory", true, "x", AuthBadCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := testBundle(t)
			b.AllowAnonymous = tt.anonymous
			p := mustCompile(t, b)
			id, got := p.Authenticate(tt.username, tt.hasUsername, []byte(tt.password), "cid")
			if got != tt.want {
				t.Fatalf("Authenticate: got %v, want %v", got, tt.want)
			}
			if (id != nil) != (got == AuthOK) {
				t.Fatalf("Authenticate: got identity %v with result %v", id, got)
			}
			if id == nil {
				return
			}
			if id.Username() != tt.username || id.ClientID() != "cid" || id.Anonymous() == tt.hasUsername || id.Policy() != p {
				t.Errorf("identity: got user %q client %q anonymous %v policy %p; want %q cid %v %p",
					id.Username(), id.ClientID(), id.Anonymous(), id.Policy(), tt.username, !tt.hasUsername, p)
			}
		})
	}
}

func TestAuthResultCodes(t *testing.T) {
	tests := []struct {
		r      AuthResult
		v3, v5 byte
	}{
		{AuthOK, 0, 0},
		{AuthBadCredentials, 4, 0x86},
		{AuthNotAuthorized, 5, 0x87},
	}
	for _, tt := range tests {
		if got := tt.r.V3ReturnCode(); got != tt.v3 {
			t.Errorf("%v.V3ReturnCode(): got %d, want %d", tt.r, got, tt.v3)
		}
		if got := tt.r.V5ReasonCode(); got != tt.v5 {
			t.Errorf("%v.V5ReasonCode(): got %#x, want %#x", tt.r, got, tt.v5)
		}
	}
}

func TestVerificationCache(t *testing.T) {
	p := mustCompile(t, testBundle(t))
	auth := func(pw string) AuthResult {
		_, r := p.Authenticate("alice", true, []byte(pw), "c")
		return r
	}
	steps := []struct {
		password   string
		want       AuthResult
		wantHashes int64 // PBKDF2 runs so far
	}{
		{"pw-alice", AuthOK, 1},
		{"pw-alice", AuthOK, 1}, // hit
		{"wrong", AuthBadCredentials, 2},
		{"wrong", AuthBadCredentials, 3}, // failures are not cached
		{"pw-alice", AuthOK, 3},
	}
	for i, s := range steps {
		if got := auth(s.password); got != s.want {
			t.Fatalf("step %d: Authenticate(%q): got %v, want %v", i, s.password, got, s.want)
		}
		if got := p.cache.hashes.Load(); got != s.wantHashes {
			t.Fatalf("step %d: got %d PBKDF2 runs, want %d", i, got, s.wantHashes)
		}
	}

	// A new policy starts cold, unless warmed from the old one; a user
	// whose hash changed is not carried over.
	b := testBundle(t)
	b.Users[1].PasswordHash = testHash(t, "new-bob")
	if _, r := p.Authenticate("bob", true, []byte("pw-bob"), "c"); r != AuthOK {
		t.Fatal("bob cannot log in")
	}
	next := mustCompile(t, b)
	next.WarmCache(p)
	if _, r := next.Authenticate("alice", true, []byte("pw-alice"), "c"); r != AuthOK {
		t.Fatal("alice cannot log in after reload")
	}
	if got := next.cache.hashes.Load(); got != 0 {
		t.Errorf("warmed cache: got %d PBKDF2 runs for alice, want 0", got)
	}
	if _, r := next.Authenticate("bob", true, []byte("pw-bob"), "c"); r != AuthBadCredentials {
		t.Errorf("bob's old password after a change: got %v, want %v", r, AuthBadCredentials)
	}
}

func TestVerificationCacheBounded(t *testing.T) {
	p := mustCompile(t, testBundle(t))
	p.cache.max = 2
	for _, name := range []string{"alice", "bob", "evil/#", "alice"} {
		if _, r := p.Authenticate(name, true, []byte("pw-"+name), "c"); r != AuthOK {
			t.Fatalf("%s: got %v", name, r)
		}
	}
	if n := len(p.cache.ok); n > 2 {
		t.Errorf("cache: got %d entries, want at most 2", n)
	}
}

func TestConcurrentAuthenticateSharesVerification(t *testing.T) {
	b := testBundle(t)
	h, err := HashPassword([]byte("slow"), 20000)
	if err != nil {
		t.Fatal(err)
	}
	b.Users[0].PasswordHash = h
	p := mustCompile(t, b)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if _, r := p.Authenticate("alice", true, []byte("slow"), "c"); r != AuthOK {
				t.Errorf("got %v, want %v", r, AuthOK)
			}
		})
	}
	wg.Wait()
	// A connect that arrives while the first PBKDF2 runs waits for it; one
	// that arrives later hits the cache (the in-flight entry is replaced by
	// the cache entry under one lock).
	if got := p.cache.hashes.Load(); got != 1 {
		t.Errorf("got %d PBKDF2 runs for 16 identical connects, want 1", got)
	}
}

func TestRebind(t *testing.T) {
	rules := []Rule{allow(groups("ops"), "p", "ops/#"), allow(clients("c1"), "p", "c1/#")}
	tests := []struct {
		name       string
		user       string // "" is anonymous
		change     func(b *Bundle)
		want       AuthResult
		pub        string // after rebinding
		wantPubNew bool
	}{
		{"unchanged", "alice", func(b *Bundle) {}, AuthOK, "ops/x", true},
		{"user removed", "alice", func(b *Bundle) { b.Users = b.Users[1:] }, AuthBadCredentials, "", false},
		{"password changed", "alice", func(b *Bundle) { b.Users[0].PasswordHash = testHash(t, "rotated") }, AuthBadCredentials, "", false},
		{"disabled", "alice", func(b *Bundle) { b.Users[0].Disabled = true }, AuthNotAuthorized, "", false},
		{"groups changed", "alice", func(b *Bundle) { b.Users[0].Groups = nil }, AuthOK, "ops/x", false},
		{"rules changed", "alice", func(b *Bundle) { b.Rules = append(b.Rules, deny(users("alice"), "p", "ops/x")) }, AuthOK, "ops/x", false},
		{"client-id rules kept", "alice", func(b *Bundle) {}, AuthOK, "c1/x", true},
		{"anonymous still allowed", "", func(b *Bundle) {}, AuthOK, "c1/x", true},
		{"anonymous no longer allowed", "", func(b *Bundle) { b.AllowAnonymous = false }, AuthNotAuthorized, "", false},
		{"other user removed", "alice", func(b *Bundle) { b.Users = b.Users[:1] }, AuthOK, "ops/x", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := mustCompile(t, testBundle(t, rules...))
			id := login(t, old, tt.user, "c1")
			b := testBundle(t, rules...)
			b.Revision = 2
			tt.change(b)
			next := mustCompile(t, b)
			nid, got := next.Rebind(id)
			if got != tt.want {
				t.Fatalf("Rebind: got %v, want %v", got, tt.want)
			}
			if got != AuthOK {
				if nid != nil {
					t.Errorf("Rebind: got an identity with %v", got)
				}
				return
			}
			if nid.Policy() != next || nid.Username() != tt.user || nid.ClientID() != "c1" {
				t.Errorf("Rebind: got policy %p user %q client %q, want %p %q c1", nid.Policy(), nid.Username(), nid.ClientID(), next, tt.user)
			}
			if got := nid.CanPublish([]byte(tt.pub)); got != tt.wantPubNew {
				t.Errorf("CanPublish(%q) after rebind: got %v, want %v", tt.pub, got, tt.wantPubNew)
			}
			// The old identity keeps the old rules until the broker swaps.
			if !id.CanPublish([]byte(tt.pub)) {
				t.Errorf("old identity lost CanPublish(%q)", tt.pub)
			}
		})
	}
	if id, r := mustCompile(t, testBundle(t)).Rebind(nil); id != nil || r != AuthNotAuthorized {
		t.Errorf("Rebind(nil): got %v, %v; want nil, %v", id, r, AuthNotAuthorized)
	}
}

// TestConcurrentChecksAndReload runs checks on identities while policies are
// swapped and identities rebound, for the race detector.
func TestConcurrentChecksAndReload(t *testing.T) {
	p0 := mustCompile(t, testBundle(t, allow(users("alice"), "ps", "a/#")))
	var cur sync.Map
	id := login(t, p0, "alice", "c1")
	cur.Store("id", id)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				v, _ := cur.Load("id")
				id := v.(*Identity)
				id.CanPublish([]byte("a/b"))
				id.CanSubscribe("a/+")
				id.CanRead([]byte("a/b"))
				id.Policy().Authenticate("alice", true, []byte("pw-alice"), "c1")
			}
		})
	}
	for i := range 50 {
		b := testBundle(t, allow(users("alice"), "ps", "a/#"))
		b.Revision = int64(i + 2)
		p := mustCompile(t, b)
		v, _ := cur.Load("id")
		p.WarmCache(v.(*Identity).Policy())
		nid, r := p.Rebind(v.(*Identity))
		if r != AuthOK {
			t.Fatalf("Rebind: got %v", r)
		}
		cur.Store("id", nid)
	}
	close(stop)
	wg.Wait()
}
