package authsync

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/broker/authz"
)

func TestCompileUsers(t *testing.T) {
	type want struct {
		included   bool
		reason     string
		username   string
		secretName string
		message    string // substring of the message
	}
	for _, tc := range []struct {
		name     string
		users    []v1alpha1.User
		secrets  map[string]*corev1.Secret
		want     map[string]want
		bundle   []string          // usernames in the bundle, sorted
		password map[string]string // username → password that must authenticate
	}{
		{
			name:     "referenced Secret",
			users:    []v1alpha1.User{newUser("alice", 0, withSecretRef("alice-pw", "pw"))},
			secrets:  secrets(newSecret("alice-pw", "pw", "alice-secret")),
			want:     map[string]want{"alice": {included: true, reason: v1alpha1.ReasonPending, username: "alice", secretName: "alice-pw"}},
			bundle:   []string{"alice"},
			password: map[string]string{"alice": "alice-secret"},
		},
		{
			name:     "referenced Secret, key defaults to password",
			users:    []v1alpha1.User{newUser("alice", 0, withSecretRef("alice-pw", ""))},
			secrets:  secrets(newSecret("alice-pw", "password", "p1")),
			want:     map[string]want{"alice": {included: true, reason: v1alpha1.ReasonPending, username: "alice", secretName: "alice-pw"}},
			bundle:   []string{"alice"},
			password: map[string]string{"alice": "p1"},
		},
		{
			name:     "generated Secret",
			users:    []v1alpha1.User{newUser("bob", 0)},
			secrets:  secrets(generated("bob", "gen-pw")),
			want:     map[string]want{"bob": {included: true, reason: v1alpha1.ReasonPending, username: "bob", secretName: "bob-mqtt-credentials"}},
			bundle:   []string{"bob"},
			password: map[string]string{"bob": "gen-pw"},
		},
		{
			name:     "spec.username overrides metadata.name",
			users:    []v1alpha1.User{newUser("sensor-user", 0, withUsername("sensor-7"))},
			secrets:  secrets(generated("sensor-user", "pw7")),
			want:     map[string]want{"sensor-user": {included: true, reason: v1alpha1.ReasonPending, username: "sensor-7", secretName: "sensor-user-mqtt-credentials"}},
			bundle:   []string{"sensor-7"},
			password: map[string]string{"sensor-7": "pw7"},
		},
		{
			name:    "referenced Secret missing",
			users:   []v1alpha1.User{newUser("alice", 0, withSecretRef("alice-pw", "pw")), newUser("bob", 1)},
			secrets: secrets(generated("bob", "b")),
			want: map[string]want{
				"alice": {reason: v1alpha1.ReasonSecretNotFound, username: "alice", secretName: "alice-pw", message: `Secret "alice-pw" not found`},
				"bob":   {included: true, reason: v1alpha1.ReasonPending, username: "bob", secretName: "bob-mqtt-credentials"},
			},
			bundle: []string{"bob"},
		},
		{
			name:    "referenced key missing",
			users:   []v1alpha1.User{newUser("alice", 0, withSecretRef("alice-pw", "pw"))},
			secrets: secrets(newSecret("alice-pw", "password", "x")),
			want:    map[string]want{"alice": {reason: v1alpha1.ReasonSecretNotFound, username: "alice", secretName: "alice-pw", message: `Secret "alice-pw" has no key "pw"`}},
			bundle:  []string{},
		},
		{
			name:    "referenced key empty",
			users:   []v1alpha1.User{newUser("alice", 0, withSecretRef("alice-pw", "pw"))},
			secrets: secrets(newSecret("alice-pw", "pw", "")),
			want:    map[string]want{"alice": {reason: v1alpha1.ReasonSecretNotFound, username: "alice", secretName: "alice-pw", message: `key "pw" of Secret "alice-pw" is empty`}},
			bundle:  []string{},
		},
		{
			name:    "generated Secret not there yet",
			users:   []v1alpha1.User{newUser("bob", 0)},
			secrets: nil,
			want:    map[string]want{"bob": {reason: v1alpha1.ReasonSecretNotFound, username: "bob", secretName: "bob-mqtt-credentials", message: `waiting for generated Secret "bob-mqtt-credentials"`}},
			bundle:  []string{},
		},
		{
			name: "username conflict: the oldest keeps it",
			users: []v1alpha1.User{
				newUser("newer", 10, withUsername("shared")),
				newUser("older", 5, withUsername("shared")),
			},
			secrets: secrets(generated("newer", "n"), generated("older", "o")),
			want: map[string]want{
				"older": {included: true, reason: v1alpha1.ReasonPending, username: "shared", secretName: "older-mqtt-credentials"},
				"newer": {reason: v1alpha1.ReasonUsernameConflict, username: "shared", secretName: "newer-mqtt-credentials", message: `already used by User "older"`},
			},
			bundle:   []string{"shared"},
			password: map[string]string{"shared": "o"},
		},
		{
			name: "username conflict: same age, name breaks the tie",
			users: []v1alpha1.User{
				newUser("b", 0, withUsername("shared")),
				newUser("a", 0, withUsername("shared")),
			},
			secrets: secrets(generated("a", "pa"), generated("b", "pb")),
			want: map[string]want{
				"a": {included: true, reason: v1alpha1.ReasonPending, username: "shared", secretName: "a-mqtt-credentials"},
				"b": {reason: v1alpha1.ReasonUsernameConflict, username: "shared", secretName: "b-mqtt-credentials", message: `User "a"`},
			},
			bundle:   []string{"shared"},
			password: map[string]string{"shared": "pa"},
		},
		{
			name: "username conflict: the holder keeps it while its Secret is missing",
			users: []v1alpha1.User{
				newUser("older", 0, withUsername("shared"), withSecretRef("gone", "pw")),
				newUser("newer", 1, withUsername("shared")),
			},
			secrets: secrets(generated("newer", "n")),
			want: map[string]want{
				"older": {reason: v1alpha1.ReasonSecretNotFound, username: "shared", secretName: "gone", message: `"gone"`},
				"newer": {reason: v1alpha1.ReasonUsernameConflict, username: "shared", secretName: "newer-mqtt-credentials", message: `User "older"`},
			},
			bundle: []string{},
		},
		{
			name: "user being deleted is left out and frees its username",
			users: []v1alpha1.User{
				newUser("older", 0, withUsername("shared"), deleting),
				newUser("newer", 1, withUsername("shared")),
			},
			secrets: secrets(generated("older", "o"), generated("newer", "n")),
			want: map[string]want{
				"newer": {included: true, reason: v1alpha1.ReasonPending, username: "shared", secretName: "newer-mqtt-credentials"},
			},
			bundle:   []string{"shared"},
			password: map[string]string{"shared": "n"},
		},
		{
			name: "user of another Broker or namespace is ignored",
			users: []v1alpha1.User{
				newUser("other-broker", 0, func(u *v1alpha1.User) { u.Spec.BrokerRef.Name = "b2" }),
				newUser("other-ns", 0, func(u *v1alpha1.User) { u.Namespace = "tenant-b" }),
			},
			secrets: secrets(generated("other-broker", "x"), generated("other-ns", "y")),
			want:    map[string]want{},
			bundle:  []string{},
		},
		{
			name: "username the broker refuses is Invalid alone",
			users: []v1alpha1.User{
				newUser("nul", 0, withUsername("a\x00b")),
				newUser("ok", 1),
			},
			secrets: secrets(generated("nul", "x"), generated("ok", "y")),
			want: map[string]want{
				"nul": {reason: v1alpha1.ReasonInvalid, username: "a\x00b", secretName: "nul-mqtt-credentials", message: "username must not contain NUL"},
				"ok":  {included: true, reason: v1alpha1.ReasonPending, username: "ok", secretName: "ok-mqtt-credentials"},
			},
			bundle: []string{"ok"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &hasher{}
			res := mustCompile(t, Input{Broker: newBroker(false), Users: tc.users, Secrets: tc.secrets, HashPassword: h.hash})
			if len(res.Users) != len(tc.want) {
				t.Errorf("got %d user statuses %v, want %d", len(res.Users), res.Users, len(tc.want))
			}
			for name, w := range tc.want {
				got, ok := res.Users[name]
				if !ok {
					t.Errorf("User %s: no status", name)
					continue
				}
				if got.Included != w.included || got.Reason != w.reason || got.Username != w.username || got.SecretName != w.secretName {
					t.Errorf("User %s: got included=%v reason=%q username=%q secret=%q, want included=%v reason=%q username=%q secret=%q (message %q)",
						name, got.Included, got.Reason, got.Username, got.SecretName, w.included, w.reason, w.username, w.secretName, got.Message)
				}
				if !strings.Contains(got.Message, w.message) {
					t.Errorf("User %s: got message %q, want it to contain %q", name, got.Message, w.message)
				}
				if w.included && got.IncludedRevision != 1 {
					t.Errorf("User %s: got IncludedRevision %d, want 1", name, got.IncludedRevision)
				}
				if !w.included && got.IncludedRevision != 0 {
					t.Errorf("User %s: got IncludedRevision %d, want 0 (not included)", name, got.IncludedRevision)
				}
			}
			if got := usernames(res); !slices.Equal(got, tc.bundle) && !(len(got) == 0 && len(tc.bundle) == 0) {
				t.Errorf("bundle users: got %q, want %q", got, tc.bundle)
			}
			if got, want := h.calls.Load(), int64(len(res.Bundle.Users)); got > want+1 { // +1: an Invalid user is hashed before validation
				t.Errorf("HashPassword calls: got %d, want at most %d", got, want+1)
			}
			checkPasswords(t, res, tc.password)
		})
	}
}

// checkPasswords compiles the bundle as the broker does and checks each
// username authenticates with its password, and not with another.
func checkPasswords(t *testing.T, res *Result, passwords map[string]string) {
	t.Helper()
	b, err := authz.Parse(res.BundleJSON)
	if err != nil {
		t.Fatalf("broker parse of BundleJSON: %v", err)
	}
	p, err := authz.Compile(b)
	if err != nil {
		t.Fatalf("broker compile of BundleJSON: %v", err)
	}
	for username, pw := range passwords {
		if _, r := p.Authenticate(username, true, []byte(pw), "c1"); r != authz.AuthOK {
			t.Errorf("authenticate %q with its password: got %v, want ok", username, r)
		}
		if _, r := p.Authenticate(username, true, []byte(pw+"x"), "c1"); r != authz.AuthBadCredentials {
			t.Errorf("authenticate %q with a wrong password: got %v, want bad credentials", username, r)
		}
	}
}

func TestCompileUserFields(t *testing.T) {
	users := []v1alpha1.User{
		newUser("alice", 0, withGroups("sensors", "admins")),
		newUser("bob", 1, func(u *v1alpha1.User) { u.Spec.Disabled = true }),
	}
	res := mustCompile(t, Input{Broker: newBroker(false), Users: users, Secrets: secrets(generated("alice", "a"), generated("bob", "b")), HashPassword: (&hasher{}).hash})
	for _, tc := range []struct {
		username string
		groups   []string
		disabled bool
	}{
		{"alice", []string{"admins", "sensors"}, false},
		{"bob", nil, true},
	} {
		t.Run(tc.username, func(t *testing.T) {
			u := bundleUser(t, res, tc.username)
			if !slices.Equal(u.Groups, tc.groups) || u.Disabled != tc.disabled {
				t.Errorf("got groups %q disabled %v, want groups %q disabled %v", u.Groups, u.Disabled, tc.groups, tc.disabled)
			}
			if !strings.HasPrefix(u.PasswordHash, "$7$") {
				t.Errorf("got password hash %.4q..., want a $7$ hash", u.PasswordHash)
			}
		})
	}
	if got := users[0].Spec.Groups; !slices.Equal(got, []string{"sensors", "admins"}) {
		t.Errorf("Compile modified the input's groups: got %q", got)
	}
}

// fixture is a Broker with two users and two ACLs.
func fixture() Input {
	return Input{
		Broker: newBroker(false),
		Users: []v1alpha1.User{
			newUser("alice", 0, withGroups("sensors")),
			newUser("bob", 1, withSecretRef("bob-pw", "pw")),
		},
		ACLs: []v1alpha1.ACL{
			newACL("sensors",
				aclRule("", []string{"alice"}, pubSub, "devices/%u/#", "devices/shared"),
				aclRule(v1alpha1.EffectDeny, []string{"alice", "bob"}, pub, "devices/locked/#")),
			newACL("ops", aclRule(v1alpha1.EffectAllow, []string{"bob"}, pubSub, "#")),
		},
		Secrets: secrets(generated("alice", "alice-pw"), newSecret("bob-pw", "pw", "bob-pw")),
	}
}

func TestCompileDeterministic(t *testing.T) {
	h := &hasher{}
	in := fixture()
	in.HashPassword = h.hash
	first := mustCompile(t, in)
	if !first.Changed || first.Bundle.Revision != 1 {
		t.Fatalf("first compile: got changed=%v revision=%d, want true 1", first.Changed, first.Bundle.Revision)
	}
	if got := h.calls.Load(); got != 2 {
		t.Fatalf("first compile: got %d HashPassword calls, want 2", got)
	}

	for _, tc := range []struct {
		name   string
		modify func(*Input)
	}{
		{"same input", func(*Input) {}},
		{"users and ACLs reversed", func(in *Input) {
			slices.Reverse(in.Users)
			slices.Reverse(in.ACLs)
		}},
		{"rules, topics, actions and groups reordered", func(in *Input) {
			r := in.ACLs[0].Spec.Rules
			r[0], r[1] = r[1], r[0]
			slices.Reverse(r[1].Topics)
			slices.Reverse(r[1].Actions)
			slices.Reverse(r[0].Subjects.Users)
			in.Users[0].Spec.Groups = []string{"sensors"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.calls.Store(0)
			in := fixture()
			in.HashPassword = h.hash
			in.Previous = first.State
			tc.modify(&in)
			got := mustCompile(t, in)
			if got.Changed {
				t.Errorf("got Changed true, want false")
			}
			if got.Bundle.Revision != first.Bundle.Revision {
				t.Errorf("got revision %d, want %d", got.Bundle.Revision, first.Bundle.Revision)
			}
			if got, want := got.Bundle.Hash(), first.Bundle.Hash(); got != want {
				t.Errorf("got hash %s, want %s", got, want)
			}
			if !bytes.Equal(got.BundleJSON, first.BundleJSON) {
				t.Errorf("got BundleJSON\n%s\nwant\n%s", got.BundleJSON, first.BundleJSON)
			}
			if n := h.calls.Load(); n != 0 {
				t.Errorf("got %d HashPassword calls, want 0", n)
			}
			if !reflect.DeepEqual(got.State, first.State) {
				t.Errorf("got state %+v, want %+v", got.State, first.State)
			}
			for name, st := range got.ACLs {
				if st.IncludedRevision != 1 {
					t.Errorf("ACL %s: got IncludedRevision %d, want 1", name, st.IncludedRevision)
				}
			}
		})
	}
}

func TestCompileBundleJSON(t *testing.T) {
	in := fixture()
	in.HashPassword = (&hasher{}).hash
	res := mustCompile(t, in)
	b, err := authz.Parse(res.BundleJSON)
	if err != nil {
		t.Fatalf("authz.Parse(BundleJSON): %v", err)
	}
	if !reflect.DeepEqual(b, res.Bundle) {
		t.Errorf("BundleJSON decodes to %+v, want %+v", b, res.Bundle)
	}
	if got, want := b.Hash(), res.State.Hash; got != want {
		t.Errorf("got hash %s, want State.Hash %s", got, want)
	}
	if b.APIVersion != authz.APIVersion || b.Revision != 1 {
		t.Errorf("got apiVersion %q revision %d, want %q 1", b.APIVersion, b.Revision, authz.APIVersion)
	}

	empty := mustCompile(t, Input{Broker: newBroker(true), HashPassword: (&hasher{}).hash})
	for _, want := range []string{`"users":[]`, `"rules":[]`, `"allowAnonymous":true`} {
		if !bytes.Contains(empty.BundleJSON, []byte(want)) {
			t.Errorf("empty bundle %s: want it to contain %s", empty.BundleJSON, want)
		}
	}
}

func TestCompileChanges(t *testing.T) {
	for _, tc := range []struct {
		name        string
		modify      func(*Input)
		changed     bool
		hashCalls   int64
		usernames   []string
		userRevs    map[string]int64 // User → IncludedRevision; absent: not in Users
		aclRevs     map[string]int64
		passwordFor map[string]string
	}{
		{
			name:        "rotate one password",
			modify:      func(in *Input) { in.Secrets["bob-pw"] = newSecret("bob-pw", "pw", "rotated") },
			changed:     true,
			hashCalls:   1,
			usernames:   []string{"alice", "bob"},
			userRevs:    map[string]int64{"alice": 1, "bob": 2},
			aclRevs:     map[string]int64{"sensors": 1, "ops": 1},
			passwordFor: map[string]string{"bob": "rotated", "alice": "alice-pw"},
		},
		{
			name:      "delete a User",
			modify:    func(in *Input) { in.Users = in.Users[:1] },
			changed:   true,
			usernames: []string{"alice"},
			userRevs:  map[string]int64{"alice": 1},
			aclRevs:   map[string]int64{"sensors": 1, "ops": 1},
		},
		{
			name:      "User being deleted",
			modify:    func(in *Input) { deleting(&in.Users[1]) },
			changed:   true,
			usernames: []string{"alice"},
			userRevs:  map[string]int64{"alice": 1},
			aclRevs:   map[string]int64{"sensors": 1, "ops": 1},
		},
		{
			name:      "change one ACL",
			modify:    func(in *Input) { in.ACLs[1].Spec.Rules[0].Topics = []string{"ops/#"} },
			changed:   true,
			usernames: []string{"alice", "bob"},
			userRevs:  map[string]int64{"alice": 1, "bob": 1},
			aclRevs:   map[string]int64{"sensors": 1, "ops": 2},
		},
		{
			name:      "group added to a User",
			modify:    func(in *Input) { in.Users[1].Spec.Groups = []string{"ops"} },
			changed:   true,
			usernames: []string{"alice", "bob"},
			userRevs:  map[string]int64{"alice": 1, "bob": 2},
			aclRevs:   map[string]int64{"sensors": 1, "ops": 1},
		},
		{
			name:      "anonymous access turned on",
			modify:    func(in *Input) { in.Broker.Spec.AllowAnonymous = true },
			changed:   true,
			usernames: []string{"alice", "bob"},
			userRevs:  map[string]int64{"alice": 1, "bob": 1},
			aclRevs:   map[string]int64{"sensors": 1, "ops": 1},
		},
		{
			name: "same password in a new Secret",
			modify: func(in *Input) {
				in.Users[1].Spec.PasswordSecretRef = &v1alpha1.SecretKeyReference{Name: "bob-pw-2", Key: "password"}
				in.Secrets["bob-pw-2"] = newSecret("bob-pw-2", "password", "bob-pw")
			},
			changed:   false,
			usernames: []string{"alice", "bob"},
			userRevs:  map[string]int64{"alice": 1, "bob": 1},
			aclRevs:   map[string]int64{"sensors": 1, "ops": 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &hasher{}
			in := fixture()
			in.HashPassword = h.hash
			first := mustCompile(t, in)
			h.calls.Store(0)

			in = fixture()
			in.HashPassword = h.hash
			in.Previous = first.State
			tc.modify(&in)
			got := mustCompile(t, in)

			wantRev := int64(1)
			if tc.changed {
				wantRev = 2
			}
			if got.Changed != tc.changed || got.Bundle.Revision != wantRev || got.State.Revision != wantRev {
				t.Errorf("got changed=%v revision=%d state.revision=%d, want %v %d", got.Changed, got.Bundle.Revision, got.State.Revision, tc.changed, wantRev)
			}
			if n := h.calls.Load(); n != tc.hashCalls {
				t.Errorf("got %d HashPassword calls, want %d", n, tc.hashCalls)
			}
			if u := usernames(got); !slices.Equal(u, tc.usernames) {
				t.Errorf("bundle users: got %q, want %q", u, tc.usernames)
			}
			if len(got.State.Passwords) != len(tc.usernames) {
				t.Errorf("state passwords: got %d entries, want %d", len(got.State.Passwords), len(tc.usernames))
			}
			checkRevisions(t, "User", got.Users, tc.userRevs)
			checkRevisions(t, "ACL", got.ACLs, tc.aclRevs)
			if want := len(tc.userRevs) + len(tc.aclRevs); len(got.State.Objects) != want {
				t.Errorf("state objects: got %v, want %d entries", got.State.Objects, want)
			}
			checkPasswords(t, got, tc.passwordFor)
		})
	}
}

func checkRevisions(t *testing.T, kind string, got map[string]ObjectStatus, want map[string]int64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s statuses: got %v, want %d", kind, got, len(want))
	}
	for name, rev := range want {
		if st := got[name]; st.IncludedRevision != rev || !st.Included {
			t.Errorf("%s %s: got included=%v IncludedRevision %d, want true %d", kind, name, st.Included, st.IncludedRevision, rev)
		}
	}
}

func TestCompileACLs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		acls    []v1alpha1.ACL
		want    map[string]ObjectStatus // Message compared as a substring
		effects []authz.Effect          // of the bundle's rules, in bundle order
	}{
		{
			name:    "effect defaults to allow",
			acls:    []v1alpha1.ACL{newACL("a", aclRule("", []string{"alice"}, pub, "x"))},
			want:    map[string]ObjectStatus{"a": {Included: true, Reason: v1alpha1.ReasonPending, RuleCount: 1}},
			effects: []authz.Effect{authz.EffectAllow},
		},
		{
			name:    "deny kept",
			acls:    []v1alpha1.ACL{newACL("a", aclRule(v1alpha1.EffectDeny, []string{"alice"}, pub, "x"), aclRule(v1alpha1.EffectAllow, []string{"alice"}, pub, "x"))},
			want:    map[string]ObjectStatus{"a": {Included: true, Reason: v1alpha1.ReasonPending, RuleCount: 2}},
			effects: []authz.Effect{authz.EffectAllow, authz.EffectDeny},
		},
		{
			name: "invalid ACL is excluded alone",
			acls: []v1alpha1.ACL{
				newACL("good", aclRule("", []string{"alice"}, pubSub, "devices/%u/#")),
				// The CRD's topic regex lets NUL through; authz does not.
				newACL("typo", aclRule("", []string{"alice"}, pub, "ok"), aclRule("", []string{"bob"}, pub, "ok", "bad/\x00")),
			},
			want: map[string]ObjectStatus{
				"good": {Included: true, Reason: v1alpha1.ReasonPending, RuleCount: 1},
				"typo": {Reason: v1alpha1.ReasonInvalid, Message: `spec.rules[1].topics[1] "bad/\x00": must not contain NUL`},
			},
			effects: []authz.Effect{authz.EffectAllow},
		},
		{
			name: "unknown effect is Invalid",
			acls: []v1alpha1.ACL{
				newACL("odd", aclRule("permit", []string{"alice"}, pub, "x")),
				newACL("good", aclRule(v1alpha1.EffectDeny, []string{"alice"}, pub, "y")),
			},
			want: map[string]ObjectStatus{
				"odd":  {Reason: v1alpha1.ReasonInvalid, Message: `spec.rules[0].effect "permit": unknown effect`},
				"good": {Included: true, Reason: v1alpha1.ReasonPending, RuleCount: 1},
			},
			effects: []authz.Effect{authz.EffectDeny},
		},
		{
			name: "ACL being deleted or of another Broker is left out",
			acls: []v1alpha1.ACL{
				func() v1alpha1.ACL {
					a := newACL("gone", aclRule("", []string{"alice"}, pub, "x"))
					now := a.CreationTimestamp
					a.DeletionTimestamp = &now
					return a
				}(),
				func() v1alpha1.ACL {
					a := newACL("elsewhere", aclRule("", []string{"alice"}, pub, "x"))
					a.Spec.BrokerRef.Name = "b2"
					return a
				}(),
			},
			want:    map[string]ObjectStatus{},
			effects: []authz.Effect{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := mustCompile(t, Input{Broker: newBroker(false), ACLs: tc.acls, HashPassword: (&hasher{}).hash})
			if len(res.ACLs) != len(tc.want) {
				t.Errorf("got %d ACL statuses %v, want %d", len(res.ACLs), res.ACLs, len(tc.want))
			}
			for name, w := range tc.want {
				got := res.ACLs[name]
				if got.Included != w.Included || got.Reason != w.Reason || got.RuleCount != w.RuleCount || !strings.Contains(got.Message, w.Message) {
					t.Errorf("ACL %s: got %+v, want %+v", name, got, w)
				}
				if (got.IncludedRevision != 0) != w.Included {
					t.Errorf("ACL %s: got IncludedRevision %d with included=%v", name, got.IncludedRevision, w.Included)
				}
			}
			var effects []authz.Effect
			for _, r := range res.Bundle.Rules {
				effects = append(effects, r.Effect)
			}
			if !slices.Equal(effects, tc.effects) && !(len(effects) == 0 && len(tc.effects) == 0) {
				t.Errorf("bundle rule effects: got %q, want %q", effects, tc.effects)
			}
			if err := res.Bundle.Validate(); err != nil {
				t.Errorf("bundle invalid: %v", err)
			}
		})
	}
}

func TestCompileRuleMapping(t *testing.T) {
	r := v1alpha1.ACLRule{
		Subjects: v1alpha1.ACLSubjects{Users: []string{"u2", "u1"}, Groups: []string{"g"}, ClientIDs: []string{"sensor-*"}},
		Topics:   []string{"t/%c", "a/+/b"},
		Actions:  []v1alpha1.ACLAction{v1alpha1.ActionSubscribe},
		Effect:   v1alpha1.EffectDeny,
	}
	res := mustCompile(t, Input{Broker: newBroker(false), ACLs: []v1alpha1.ACL{newACL("a", r)}, HashPassword: (&hasher{}).hash})
	want := []authz.Rule{{
		Subjects: authz.Subjects{Users: []string{"u1", "u2"}, Groups: []string{"g"}, ClientIDs: []string{"sensor-*"}},
		Topics:   []string{"a/+/b", "t/%c"},
		Actions:  []authz.Action{authz.ActionSubscribe},
		Effect:   authz.EffectDeny,
	}}
	if !reflect.DeepEqual(res.Bundle.Rules, want) {
		t.Errorf("got rules %+v, want %+v", res.Bundle.Rules, want)
	}
}

func TestCompileAnonymous(t *testing.T) {
	var hashes []string
	for _, tc := range []struct {
		name  string
		allow bool
	}{{"off", false}, {"on", true}} {
		t.Run(tc.name, func(t *testing.T) {
			res := mustCompile(t, Input{Broker: newBroker(tc.allow), HashPassword: (&hasher{}).hash})
			if res.Bundle.AllowAnonymous != tc.allow {
				t.Errorf("got allowAnonymous %v, want %v", res.Bundle.AllowAnonymous, tc.allow)
			}
			hashes = append(hashes, res.State.Hash)
		})
	}
	if len(hashes) == 2 && hashes[0] == hashes[1] {
		t.Errorf("the anonymous flag does not change the hash: both %s", hashes[0])
	}
}

func TestStateRoundTrip(t *testing.T) {
	h := &hasher{}
	in := fixture()
	in.HashPassword = h.hash
	first := mustCompile(t, in)
	data, err := first.State.Marshal()
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	got, err := ParseState(data)
	if err != nil {
		t.Fatalf("ParseState: %v", err)
	}
	if !reflect.DeepEqual(got, first.State) {
		t.Errorf("round trip: got %+v, want %+v", got, first.State)
	}
	if len(got.Key) != keySize {
		t.Errorf("got key of %d bytes, want %d", len(got.Key), keySize)
	}
	for _, p := range []string{"alice-pw", "bob-pw"} {
		if bytes.Contains(data, []byte(p)) {
			t.Errorf("state holds the plaintext password %q: %s", p, data)
		}
	}

	h.calls.Store(0)
	in = fixture()
	in.HashPassword = h.hash
	in.Previous = got
	again := mustCompile(t, in)
	if again.Changed || !bytes.Equal(again.BundleJSON, first.BundleJSON) || h.calls.Load() != 0 {
		t.Errorf("compile from parsed state: got changed=%v, same bytes=%v, %d hash calls; want false, true, 0",
			again.Changed, bytes.Equal(again.BundleJSON, first.BundleJSON), h.calls.Load())
	}

	for _, tc := range []struct{ name, data string }{
		{"empty", ""},
		{"not JSON", "{"},
		{"negative revision", `{"revision":-1}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseState([]byte(tc.data)); err == nil {
				t.Errorf("ParseState(%q): got no error, want one", tc.data)
			}
		})
	}
	t.Run("empty maps filled in", func(t *testing.T) {
		s, err := ParseState([]byte(`{"revision":3}`))
		if err != nil || s.Passwords == nil || s.Objects == nil {
			t.Errorf("got %+v, %v; want non-nil maps, no error", s, err)
		}
	})
}

func TestCompileNewKey(t *testing.T) {
	h := &hasher{}
	in := fixture()
	in.HashPassword = h.hash
	first := mustCompile(t, in)

	// A State without a key (hand-written, or from an older operator) gets
	// one; every password is hashed again once.
	prev := *first.State
	prev.Key = nil
	h.calls.Store(0)
	in = fixture()
	in.HashPassword = h.hash
	in.Previous = &prev
	got := mustCompile(t, in)
	if len(got.State.Key) != keySize {
		t.Errorf("got key of %d bytes, want %d", len(got.State.Key), keySize)
	}
	if h.calls.Load() != 2 || !got.Changed || got.Bundle.Revision != 2 {
		t.Errorf("got %d hash calls, changed=%v, revision %d; want 2, true, 2", h.calls.Load(), got.Changed, got.Bundle.Revision)
	}
}

func TestStateRebase(t *testing.T) {
	h := &hasher{}
	in := fixture()
	in.HashPassword = h.hash
	first := mustCompile(t, in)

	// The broker holds revision 42 from a previous life of the State.
	st := *first.State
	st.Rebase(42)
	h.calls.Store(0)
	in = fixture()
	in.HashPassword = h.hash
	in.Previous = &st
	got := mustCompile(t, in)
	if !got.Changed || got.Bundle.Revision != 43 {
		t.Errorf("got changed=%v revision %d, want true 43", got.Changed, got.Bundle.Revision)
	}
	if n := h.calls.Load(); n != 0 {
		t.Errorf("got %d HashPassword calls, want 0 (passwords kept)", n)
	}
	for name, s := range got.Users {
		if s.IncludedRevision != 43 {
			t.Errorf("User %s: got IncludedRevision %d, want 43", name, s.IncludedRevision)
		}
	}
	if first.State.Revision != 1 {
		t.Errorf("Rebase of a copy changed the original: revision %d", first.State.Revision)
	}
}

func TestCompileErrors(t *testing.T) {
	t.Run("no Broker", func(t *testing.T) {
		if _, err := Compile(Input{}); err == nil {
			t.Errorf("got no error, want one")
		}
	})
	t.Run("HashPassword fails", func(t *testing.T) {
		in := fixture()
		in.HashPassword = func([]byte) (string, error) { return "", errBoom }
		_, err := Compile(in)
		if err == nil || !strings.Contains(err.Error(), "alice") || strings.Contains(err.Error(), "alice-pw") {
			t.Errorf("got %v, want an error naming the User but not the password", err)
		}
	})
	t.Run("HashPassword returns garbage", func(t *testing.T) {
		in := fixture()
		in.HashPassword = func([]byte) (string, error) { return "$7$garbage-secret", nil }
		res, err := Compile(in)
		if err != nil {
			t.Fatalf("Compile: %v", err)
		}
		checkNoHashLeak(t, res)
		if st := res.Users["alice"]; st.Reason != v1alpha1.ReasonInvalid || strings.Contains(st.Message, "garbage-secret") {
			t.Errorf("got %+v, want Invalid without the hash in the message", st)
		}
	})
}

var errBoom = errors.New("boom")

func TestUsernameAndPasswordSecret(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		user                    v1alpha1.User
		wantUsername            string
		wantSecretName, wantKey string
	}{
		{"generated", newUser("bob", 0), "bob", "bob-mqtt-credentials", "password"},
		{"spec.username", newUser("bob", 0, withUsername("sensor-7")), "sensor-7", "bob-mqtt-credentials", "password"},
		{"referenced", newUser("bob", 0, withSecretRef("bob-pw", "pw")), "bob", "bob-pw", "pw"},
		{"referenced, key unset", newUser("bob", 0, withSecretRef("bob-pw", "")), "bob", "bob-pw", "password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Username(&tc.user); got != tc.wantUsername {
				t.Errorf("Username = %q, want %q", got, tc.wantUsername)
			}
			name, key := PasswordSecret(&tc.user)
			if name != tc.wantSecretName || key != tc.wantKey {
				t.Errorf("PasswordSecret = %q, %q, want %q, %q", name, key, tc.wantSecretName, tc.wantKey)
			}
		})
	}
}
