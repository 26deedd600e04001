package authz

import (
	"testing"
	"time"
)

// TestHashSlotsBound: with every hashing slot taken, a verification that
// needs PBKDF2 (wrong or new password, unknown user) is refused as busy
// after hashWait instead of adding to the CPU load, while a password
// verified before is admitted at once, by Authenticate and by
// AuthenticateCached. Not parallel: it holds the process's slots.
func TestHashSlotsBound(t *testing.T) {
	p := mustCompile(t, testBundle(t))
	if _, r := p.Authenticate("alice", true, []byte("pw-alice"), "c"); r != AuthOK {
		t.Fatalf("alice before: got %v, want %v", r, AuthOK)
	}
	defer func(w time.Duration) { hashWait = w }(hashWait)
	hashWait = 10 * time.Millisecond
	for range cap(hashSlots) {
		hashSlots <- struct{}{}
	}
	defer func() {
		for range cap(hashSlots) {
			hashSlots.release()
		}
	}()
	hashes := p.cache.hashes.Load()

	for _, tc := range []struct {
		name, user, pw string
		want           AuthResult
	}{
		{"cached", "alice", "pw-alice", AuthOK},
		{"wrong password", "alice", "guess", AuthBusy},
		{"not verified yet", "bob", "pw-bob", AuthBusy},
		{"unknown user", "mallory", "guess", AuthBusy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, r := p.Authenticate(tc.user, true, []byte(tc.pw), "c"); r != tc.want {
				t.Errorf("Authenticate: got %v, want %v", r, tc.want)
			}
			_, r, ok := p.AuthenticateCached(tc.user, true, []byte(tc.pw), "c")
			if wantOK := tc.want == AuthOK; ok != wantOK || (ok && r != AuthOK) {
				t.Errorf("AuthenticateCached: got %v, %v; want decided %v", r, ok, wantOK)
			}
		})
	}
	if got := p.cache.hashes.Load(); got != hashes {
		t.Errorf("%d PBKDF2 runs with no slot free, want 0", got-hashes)
	}
}

// TestAuthenticateCached decides only what needs no hash.
func TestAuthenticateCached(t *testing.T) {
	t.Parallel()
	p := mustCompile(t, testBundle(t))
	for _, u := range []string{"alice", "carol"} {
		p.Authenticate(u, true, []byte("pw-"+u), "c")
	}
	for _, tc := range []struct {
		name, user string
		has        bool
		pw         string
		want       AuthResult
		decided    bool
	}{
		{"anonymous", "", false, "", AuthOK, true},
		{"cached", "alice", true, "pw-alice", AuthOK, true},
		{"cached, disabled", "carol", true, "pw-carol", AuthNotAuthorized, true},
		{"wrong password", "alice", true, "nope", 0, false},
		{"not verified yet", "bob", true, "pw-bob", 0, false},
		{"unknown user", "mallory", true, "x", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, r, ok := p.AuthenticateCached(tc.user, tc.has, []byte(tc.pw), "c")
			if ok != tc.decided || (ok && r != tc.want) {
				t.Errorf("got %v, decided %v; want %v, decided %v", r, ok, tc.want, tc.decided)
			}
		})
	}
}
