package authz

import "testing"

// AuthenticateVerified admits a known, enabled user without a password;
// its identity survives a password change on reload but not the user's
// removal or disabling.
func TestAuthenticateVerified(t *testing.T) {
	p := mustCompile(t, testBundle(t, rule(users("alice"), EffectAllow, "ps", "a/%u/#")))
	for _, tt := range []struct {
		user string
		want AuthResult
	}{
		{"alice", AuthOK},
		{"carol", AuthNotAuthorized}, // disabled
		{"nobody", AuthNotAuthorized},
	} {
		id, res := p.AuthenticateVerified(tt.user, "c1")
		if res != tt.want {
			t.Errorf("AuthenticateVerified(%q) = %v, want %v", tt.user, res, tt.want)
		}
		if res == AuthOK && (id.Username() != tt.user || !id.CanPublish([]byte("a/alice/x")) || id.CanPublish([]byte("a/bob/x"))) {
			t.Errorf("AuthenticateVerified(%q): identity %q does not carry the user's rules", tt.user, id.Username())
		}
	}

	id, _ := p.AuthenticateVerified("alice", "c1")
	b := testBundle(t)
	b.Revision = 2
	b.Users[0].PasswordHash = testHash(t, "a new password")
	if _, res := mustCompile(t, b).Rebind(id); res != AuthOK {
		t.Errorf("Rebind of a certificate identity after a password change = %v, want ok", res)
	}
	b.Users[0].Disabled = true
	if _, res := mustCompile(t, b).Rebind(id); res != AuthNotAuthorized {
		t.Errorf("Rebind of a certificate identity of a disabled user = %v, want not authorized", res)
	}
	b.Users = b.Users[1:]
	if _, res := mustCompile(t, b).Rebind(id); res != AuthNotAuthorized {
		t.Errorf("Rebind of a certificate identity of a removed user = %v, want not authorized", res)
	}
	// A password identity still needs its password hash unchanged.
	pid, _ := p.Authenticate("alice", true, []byte("pw-alice"), "c2")
	b = testBundle(t)
	b.Users[0].PasswordHash = testHash(t, "a new password")
	if _, res := mustCompile(t, b).Rebind(pid); res != AuthBadCredentials {
		t.Errorf("Rebind of a password identity after a password change = %v, want bad credentials", res)
	}
}
