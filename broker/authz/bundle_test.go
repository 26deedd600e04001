package authz

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	valid := `{
	  "apiVersion": "authz.fleetmq.io/v1",
	  "revision": 42,
	  "allowAnonymous": false,
	  "users": [
	    {"username": "sensor-7", "passwordHash": "` + mosquittoHash101 + `",
	     "groups": ["sensors"], "disabled": false}
	  ],
	  "rules": [
	    {"subjects": {"users": [], "groups": ["sensors"], "clientIDs": []},
	     "topics": ["tenants/acme/%u/#"], "actions": ["publish", "subscribe"],
	     "effect": "allow"}
	  ]
	}`
	b, err := Parse([]byte(valid))
	if err != nil {
		t.Fatalf("Parse(design example): %v", err)
	}
	if b.Revision != 42 || len(b.Users) != 1 || b.Users[0].Groups[0] != "sensors" || b.Rules[0].Effect != EffectAllow {
		t.Errorf("Parse(design example): got %+v", b)
	}
	if err := b.Validate(); err != nil {
		t.Errorf("Validate(design example): got %v, want nil", err)
	}

	bad := []struct {
		name, json, want string
	}{
		{"unknown top-level field", `{"apiVersion":"authz.fleetmq.io/v1","revison":1}`, `unknown field "revison"`},
		{"unknown user field", `{"users":[{"username":"a","password":"x"}]}`, `unknown field "password"`},
		{"unknown subjects field", `{"rules":[{"subjects":{"user":["a"]}}]}`, `unknown field "user"`},
		{"trailing data", `{"revision":1} {}`, "trailing data"},
		{"wrong type", `{"revision":"1"}`, "revision"},
		{"not JSON", `apiVersion: x`, "invalid character"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.json))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%s): got error %v, want one containing %q", tt.json, err, tt.want)
			}
		})
	}
}

func TestParseRoundTrip(t *testing.T) {
	b := testBundle(t, allow(users("alice"), "ps", "a/#"), deny(clients("x*"), "s", "a/b"))
	data, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse(Marshal(b)): %v", err)
	}
	if got.Hash() != b.Hash() {
		t.Errorf("round trip changed the hash: got %s, want %s", got.Hash(), b.Hash())
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(b *Bundle)
		want   []string // substrings of the error, each naming the entry
	}{
		{"valid", func(b *Bundle) {}, nil},
		{"wrong apiVersion", func(b *Bundle) { b.APIVersion = "v0" }, []string{`apiVersion "v0": want "authz.fleetmq.io/v1"`}},
		{"negative revision", func(b *Bundle) { b.Revision = -1 }, []string{"revision -1: must not be negative"}},
		{"duplicate username", func(b *Bundle) {
			b.Users = append(b.Users, User{Username: "bob", PasswordHash: b.Users[0].PasswordHash})
		}, []string{`users[4] "bob": duplicate username (also users[1])`}},
		{"empty username", func(b *Bundle) { b.Users[2].Username = "" }, []string{`users[2] "": username must not be empty`}},
		{"empty group", func(b *Bundle) { b.Users[1].Groups = []string{""} }, []string{`users[1] "bob": groups[0] "": must not be empty`}},
		{"unknown hash scheme", func(b *Bundle) { b.Users[0].PasswordHash = "$2y$10$abcdefghijklmnopqrstuv" }, []string{`users[0] "alice": passwordHash: authz: unknown password hash scheme $2y$`}},
		{"plaintext password", func(b *Bundle) { b.Users[1].PasswordHash = "hunter2" }, []string{`users[1] "bob": passwordHash: authz: unknown password hash scheme`}},
		{"mosquitto $6$", func(b *Bundle) { b.Users[1].PasswordHash = "$6$abc$def" }, []string{`users[1] "bob": passwordHash`, "$6$", "too weak"}},
		{"malformed $7$", func(b *Bundle) { b.Users[0].PasswordHash = "$7$0$AAAAAAAAAAAAAAAA$AAAA" }, []string{`users[0] "alice": passwordHash: authz: malformed password hash: iterations`}},
		{"no subjects", func(b *Bundle) { b.Rules[1].Subjects = Subjects{} }, []string{"rules[1]: no subjects"}},
		{"empty subject entries", func(b *Bundle) {
			b.Rules[0].Subjects = Subjects{Users: []string{""}, Groups: []string{""}, ClientIDs: []string{""}}
		}, []string{`rules[0].subjects.users[0] "": must not be empty`, `rules[0].subjects.groups[0] ""`, `rules[0].subjects.clientIDs[0] ""`}},
		{"no topics", func(b *Bundle) { b.Rules[0].Topics = nil }, []string{"rules[0]: no topics"}},
		{"hash not last", func(b *Bundle) { b.Rules[2].Topics = []string{"ok/#", "a/#/b"} }, []string{`rules[2].topics[1] "a/#/b": '#' must be the last level`}},
		{"hash inside level", func(b *Bundle) { b.Rules[0].Topics = []string{"a/b#"} }, []string{`rules[0].topics[0] "a/b#": '#' must be a whole level`}},
		{"plus inside level", func(b *Bundle) { b.Rules[0].Topics = []string{"a+/b"} }, []string{`rules[0].topics[0] "a+/b": '+' must be a whole level`}},
		{"empty topic", func(b *Bundle) { b.Rules[0].Topics = []string{""} }, []string{`rules[0].topics[0] "": must not be empty`}},
		{"no actions", func(b *Bundle) { b.Rules[1].Actions = nil }, []string{"rules[1]: no actions"}},
		{"unknown action", func(b *Bundle) { b.Rules[1].Actions = []Action{"publish", "read"} }, []string{`rules[1].actions[1] "read": unknown action`}},
		{"unknown effect", func(b *Bundle) { b.Rules[2].Effect = "permit" }, []string{`rules[2].effect "permit": unknown effect`}},
		{"empty effect", func(b *Bundle) { b.Rules[0].Effect = "" }, []string{`rules[0].effect "": unknown effect`}},
		{"all problems at once", func(b *Bundle) {
			b.APIVersion = ""
			b.Rules[0].Effect = ""
			b.Rules[2].Topics = []string{"#/a"}
		}, []string{"apiVersion", "rules[0].effect", `rules[2].topics[0] "#/a"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := testBundle(t,
				allow(users("alice"), "ps", "a/#"),
				deny(groups("ops"), "p", "a/b"),
				allow(clients("c-*"), "s", "c/%c/#"),
			)
			tt.mutate(b)
			err := b.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: got %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: got nil, want an error containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate: got\n%v\nwant it to contain %q", err, w)
				}
			}
			if _, cerr := Compile(b); cerr == nil {
				t.Errorf("Compile accepted a bundle Validate refused")
			}
		})
	}
}

func TestValidateNeverLeaksHashes(t *testing.T) {
	secret := "$7$101$c2VjcmV0c2FsdA==$bm90LWEtNjQtYnl0ZS1rZXk="
	b := testBundle(t)
	b.Users[0].PasswordHash = secret
	err := b.Validate()
	if err == nil || strings.Contains(err.Error(), "c2VjcmV0c2FsdA") || strings.Contains(err.Error(), "bm90LWEtNjQ") {
		t.Errorf("Validate: got %v, want an error that does not quote the hash", err)
	}
}

func TestValidateCapsErrors(t *testing.T) {
	b := testBundle(t)
	for range 150 {
		b.Rules = append(b.Rules, Rule{})
	}
	err := b.Validate()
	if err == nil || !strings.Contains(err.Error(), "more problems") {
		t.Fatalf("Validate: got %v, want a capped list", err)
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != maxValidateErrors+1 {
		t.Errorf("Validate: got %d lines, want %d", n, maxValidateErrors+1)
	}
}

// hashFixture is a bundle with a bit of everything the hash covers.
func hashFixture() *Bundle {
	return &Bundle{
		APIVersion: APIVersion, Revision: 7, AllowAnonymous: false,
		Users: []User{
			{Username: "a", PasswordHash: "$7$1$AAAAAAAAAAA=$x", Groups: []string{"g1", "g2"}},
			{Username: "b", PasswordHash: "$7$1$BBBBBBBBBBB=$y", Disabled: true},
		},
		Rules: []Rule{
			{Subjects: Subjects{Users: []string{"a", "b"}, ClientIDs: []string{"x*", "y"}}, Topics: []string{"t/1", "t/2"}, Actions: []Action{ActionPublish, ActionSubscribe}, Effect: EffectAllow},
			{Subjects: Subjects{Groups: []string{"g2", "g1"}}, Topics: []string{"u/#"}, Actions: []Action{ActionSubscribe}, Effect: EffectDeny},
		},
	}
}

func TestHash(t *testing.T) {
	base := hashFixture
	want := base().Hash()
	if !strings.HasPrefix(want, "sha256:") || len(want) != len("sha256:")+64 {
		t.Fatalf("Hash: got %q, want sha256:<64 hex>", want)
	}

	same := map[string]func(b *Bundle){
		"revision": func(b *Bundle) { b.Revision = 8 },
		"user order": func(b *Bundle) {
			slices.Reverse(b.Users)
		},
		"rule order": func(b *Bundle) { slices.Reverse(b.Rules) },
		"lists inside": func(b *Bundle) {
			slices.Reverse(b.Users[0].Groups)
			slices.Reverse(b.Rules[0].Subjects.Users)
			slices.Reverse(b.Rules[0].Subjects.ClientIDs)
			slices.Reverse(b.Rules[0].Topics)
			slices.Reverse(b.Rules[0].Actions)
			slices.Reverse(b.Rules[1].Subjects.Groups)
		},
		"nil vs empty": func(b *Bundle) { b.Users[1].Groups = []string{} },
	}
	for name, mutate := range same {
		t.Run("same/"+name, func(t *testing.T) {
			b := base()
			mutate(b)
			if got := b.Hash(); got != want {
				t.Errorf("Hash after %s: got %s, want %s", name, got, want)
			}
		})
	}

	different := map[string]func(b *Bundle){
		"allowAnonymous":  func(b *Bundle) { b.AllowAnonymous = true },
		"password hash":   func(b *Bundle) { b.Users[0].PasswordHash += "z" },
		"disabled":        func(b *Bundle) { b.Users[1].Disabled = false },
		"group moved":     func(b *Bundle) { b.Users[0].Groups = []string{"g1"}; b.Users[1].Groups = []string{"g2"} },
		"effect":          func(b *Bundle) { b.Rules[1].Effect = EffectAllow },
		"topic":           func(b *Bundle) { b.Rules[1].Topics[0] = "u/+" },
		"subject kind":    func(b *Bundle) { b.Rules[1].Subjects = Subjects{Users: []string{"g2", "g1"}} },
		"string boundary": func(b *Bundle) { b.Rules[0].Topics = []string{"t/1t/2"} },
		"apiVersion":      func(b *Bundle) { b.APIVersion = "x" },
	}
	for name, mutate := range different {
		t.Run("different/"+name, func(t *testing.T) {
			b := base()
			mutate(b)
			if got := b.Hash(); got == want {
				t.Errorf("Hash after %s: got the unchanged hash %s", name, got)
			}
		})
	}
}

func TestPolicyMetadata(t *testing.T) {
	b := testBundle(t, allow(users("alice"), "p", "a"))
	b.Revision = 99
	p := mustCompile(t, b)
	if p.Revision() != 99 || p.Hash() != b.Hash() || !p.AllowAnonymous() {
		t.Errorf("got revision %d hash %s anonymous %v, want 99 %s true", p.Revision(), p.Hash(), p.AllowAnonymous(), b.Hash())
	}
	if s := fmt.Sprint(AuthBadCredentials); s != "bad credentials" {
		t.Errorf("AuthBadCredentials.String(): got %q", s)
	}
}

// FuzzParseCompile: no input makes Parse, Validate, Hash or Compile panic,
// and whatever compiles can be checked.
func FuzzParseCompile(f *testing.F) {
	f.Add([]byte(`{"apiVersion":"authz.fleetmq.io/v1","revision":1,"allowAnonymous":true,"users":[],"rules":[{"subjects":{"clientIDs":["*"]},"topics":["a/%c/#","+/x"],"actions":["publish","subscribe"],"effect":"allow"}]}`))
	f.Add([]byte(`{"apiVersion":"authz.fleetmq.io/v1","users":[{"username":"u","passwordHash":"` + mosquittoHash101 + `"}],"rules":[{"subjects":{"users":["u"]},"topics":["#"],"actions":["subscribe"],"effect":"deny"}]}`))
	f.Add([]byte(`{"rules":[{"topics":["a/#/b"]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Parse(data)
		if err != nil {
			return
		}
		b.Hash()
		p, err := Compile(b)
		if (err == nil) != (b.Validate() == nil) {
			t.Fatalf("Compile error %v disagrees with Validate", err)
		}
		if err != nil {
			return
		}
		id, res := p.Authenticate("", false, nil, "c")
		if res == AuthOK {
			id.CanPublish([]byte("a/c/x"))
			id.CanSubscribe("+/x")
			id.CanRead([]byte("$SYS/x"))
		}
	})
}
