package authz

import (
	"fmt"
	"testing"
)

// op is the check a case exercises.
type op string

const (
	pub  op = "publish"
	sub  op = "subscribe"
	read op = "read"
)

type check struct {
	op    op
	topic string
	want  bool
}

func TestChecks(t *testing.T) {
	tests := []struct {
		name     string
		rules    []Rule
		user     string // "" is anonymous
		clientID string
		checks   []check
	}{
		{
			name: "default deny",
			user: "alice", clientID: "c1",
			checks: []check{{pub, "a", false}, {sub, "a", false}, {read, "a", false}, {sub, "#", false}},
		},
		{
			name:  "exact topic and action",
			rules: []Rule{allow(users("alice"), "p", "a/b")},
			user:  "alice", clientID: "c1",
			checks: []check{
				{pub, "a/b", true}, {pub, "a/c", false}, {pub, "a/b/c", false}, {pub, "a", false},
				{sub, "a/b", false}, {read, "a/b", false},
			},
		},
		{
			name:  "hash matches parent and below",
			rules: []Rule{allow(users("alice"), "ps", "a/#")},
			user:  "alice", clientID: "c1",
			checks: []check{
				{pub, "a", true}, {pub, "a/b/c", true}, {pub, "b", false}, {pub, "ab", false},
				{read, "a/x", true}, {sub, "a", true}, {sub, "a/#", true},
			},
		},
		{
			name:  "explicit deny wins",
			rules: []Rule{allow(users("alice"), "p", "#"), deny(users("alice"), "p", "secret/#")},
			user:  "alice", clientID: "c1",
			checks: []check{{pub, "x", true}, {pub, "secret", false}, {pub, "secret/x/y", false}, {pub, "secretive", true}},
		},
		{
			name: "deny from a group CR, allow from a user CR",
			rules: []Rule{
				allow(users("alice"), "p", "a/#"),
				deny(groups("ops"), "p", "a/private/#"),
				allow(groups("sensors"), "p", "a/private/#"),
			},
			user: "alice", clientID: "c1",
			checks: []check{{pub, "a/public", true}, {pub, "a/private/x", false}},
		},
		{
			name: "allow from a group CR, deny from a client-id CR",
			rules: []Rule{
				allow(groups("ops"), "p", "a/+"),
				deny(clients("c1"), "p", "a/b"),
			},
			user: "alice", clientID: "c1",
			checks: []check{{pub, "a/b", false}, {pub, "a/c", true}},
		},
		{
			name: "client-id deny does not apply to another client id",
			rules: []Rule{
				allow(groups("ops"), "p", "a/+"),
				deny(clients("c1"), "p", "a/b"),
			},
			user: "alice", clientID: "c2",
			checks: []check{{pub, "a/b", true}},
		},
		{
			name:  "other users' rules do not apply",
			rules: []Rule{allow(users("bob"), "ps", "#"), allow(groups("sensors"), "ps", "#")},
			user:  "alice", clientID: "c1",
			checks: []check{{pub, "a", false}, {sub, "#", false}},
		},
		{
			name:  "any subject matches",
			rules: []Rule{allow(Subjects{Users: []string{"bob"}, Groups: []string{"ops"}, ClientIDs: []string{"zz"}}, "p", "x")},
			user:  "alice", clientID: "c1",
			checks: []check{{pub, "x", true}},
		},
		{
			name:  "rules naming unknown users and groups are inert",
			rules: []Rule{allow(users("nobody"), "p", "#"), allow(groups("ghosts"), "p", "#")},
			user:  "alice", clientID: "c1",
			checks: []check{{pub, "x", false}},
		},
		{
			name:  "%u whole level",
			rules: []Rule{allow(groups("all"), "ps", "devices/%u/#")},
			user:  "alice", clientID: "c1",
			checks: []check{
				{pub, "devices/alice", true}, {pub, "devices/alice/t", true}, {pub, "devices/bob/t", false},
				{pub, "devices/%u/t", false}, {sub, "devices/alice/#", true}, {sub, "devices/+/#", false},
				{sub, "devices/#", false},
			},
		},
		{
			name:  "%c whole level and inside a level",
			rules: []Rule{allow(groups("all"), "p", "clients/%c", "devices/dev-%c/state", "pairs/%u-%c")},
			user:  "alice", clientID: "c1",
			checks: []check{
				{pub, "clients/c1", true}, {pub, "clients/c2", false},
				{pub, "devices/dev-c1/state", true}, {pub, "devices/dev-c1x/state", false}, {pub, "devices/c1/state", false},
				{pub, "pairs/alice-c1", true}, {pub, "pairs/alice-c2", false}, {pub, "pairs/bob-c1", false},
			},
		},
		{
			name:  "%u cannot smuggle wildcards",
			rules: []Rule{allow(groups("all"), "ps", "devices/%u")},
			user:  "evil/#", clientID: "c1",
			checks: []check{
				{pub, "devices/evil", false}, {pub, "devices/evil/x", false},
				{sub, "devices/evil/#", false}, {sub, "devices/+", false},
			},
		},
		{
			name:  "anonymous: only client-id rules, %u never matches",
			rules: []Rule{allow(clients("*"), "p", "devices/%u", "clients/%c", "open/#"), allow(groups("all"), "p", "#")},
			user:  "", clientID: "anon-1",
			checks: []check{
				{pub, "devices/", false}, {pub, "devices/anon-1", false},
				{pub, "clients/anon-1", true}, {pub, "open/x", true}, {pub, "closed", false},
			},
		},
		{
			name:  "anonymous with empty client id: %c never matches",
			rules: []Rule{allow(clients("*"), "p", "clients/%c")},
			user:  "", clientID: "",
			checks: []check{{pub, "clients/", false}},
		},
		{
			name:  "client-id glob patterns",
			rules: []Rule{allow(clients("sensor-*", "*-gw", "exact-1"), "p", "t")},
			user:  "alice", clientID: "sensor-42",
			checks: []check{{pub, "t", true}},
		},
		{
			name:  "client-id glob patterns: no match",
			rules: []Rule{allow(clients("sensor-*", "*-gw", "exact-1"), "p", "t")},
			user:  "alice", clientID: "xsensor-42",
			checks: []check{{pub, "t", false}},
		},
		{
			name:  "$ topics: leading wildcards never match",
			rules: []Rule{allow(users("alice"), "ps", "#", "+/x", "+/+")},
			user:  "alice", clientID: "c1",
			checks: []check{
				{pub, "$SYS/x", false}, {pub, "$SYS", false}, {read, "$SYS/broker/load", false},
				{sub, "$SYS/#", false}, {sub, "#", true}, {sub, "+/x", true}, {pub, "a/x", true},
			},
		},
		{
			name:  "$ topics: literal $ patterns match",
			rules: []Rule{allow(users("alice"), "ps", "$SYS/#")},
			user:  "alice", clientID: "c1",
			checks: []check{
				{pub, "$SYS/x", true}, {read, "$SYS/broker/load", true}, {sub, "$SYS/+/load", true},
				{sub, "$SYS/#", true}, {sub, "#", false}, {pub, "SYS/x", false},
			},
		},
		{
			name:  "$ topics: %c first level does not match",
			rules: []Rule{allow(groups("all"), "p", "%c/x")},
			user:  "alice", clientID: "$c",
			checks: []check{{pub, "$c/x", false}},
		},
		{
			name:  "subscribe coverage under a/#",
			rules: []Rule{allow(users("alice"), "s", "a/#")},
			user:  "alice", clientID: "c1",
			checks: []check{
				{sub, "a", true}, {sub, "a/#", true}, {sub, "a/+", true}, {sub, "a/+/b", true}, {sub, "a/b/#", true},
				{sub, "#", false}, {sub, "+", false}, {sub, "+/b", false}, {sub, "b/#", false},
			},
		},
		{
			name:  "subscribe coverage under a/+",
			rules: []Rule{allow(users("alice"), "s", "a/+")},
			user:  "alice", clientID: "c1",
			checks: []check{
				{sub, "a/x", true}, {sub, "a/+", true}, {sub, "a/#", false}, {sub, "a/x/y", false},
				{sub, "a", false}, {sub, "+/x", false},
			},
		},
		{
			name:  "subscribe coverage under a/+/c and +",
			rules: []Rule{allow(users("alice"), "s", "a/+/c", "+")},
			user:  "alice", clientID: "c1",
			checks: []check{
				{sub, "a/+/c", true}, {sub, "a/b/c", true}, {sub, "a/+/+", false}, {sub, "a/b/#", false},
				{sub, "+", true}, {sub, "x", true}, {sub, "#", false},
			},
		},
		{
			name:  "partial deny: subscribe allowed, delivery filtered",
			rules: []Rule{allow(users("alice"), "s", "a/#"), deny(groups("ops"), "s", "a/secret/#")},
			user:  "alice", clientID: "c1",
			checks: []check{
				{sub, "a/#", true}, {sub, "a/+/x", true},
				{sub, "a/secret/#", false}, {sub, "a/secret/x", false}, {sub, "a/secret", false},
				{read, "a/public", true}, {read, "a/secret", false}, {read, "a/secret/x", false},
			},
		},
		{
			name:  "partial deny with +",
			rules: []Rule{allow(users("alice"), "s", "#"), deny(users("alice"), "s", "a/+")},
			user:  "alice", clientID: "c1",
			checks: []check{
				{sub, "#", true}, {sub, "a/#", true}, {sub, "a/+", false}, {sub, "a/x", false},
				{read, "a/x", false}, {read, "a/x/y", true}, {read, "a", true},
			},
		},
		{
			name:  "publish rules grant no reading and subscribe rules no publishing",
			rules: []Rule{allow(users("alice"), "p", "p/#"), allow(users("alice"), "s", "s/#")},
			user:  "alice", clientID: "c1",
			checks: []check{{read, "p/x", false}, {sub, "p/x", false}, {pub, "s/x", false}, {read, "s/x", true}},
		},
		{
			name:  "empty levels",
			rules: []Rule{allow(users("alice"), "p", "a/+/c", "+/x")},
			user:  "alice", clientID: "c1",
			checks: []check{{pub, "a//c", true}, {pub, "/x", true}, {pub, "a/c", false}},
		},
		{
			name:  "invalid topics and filters are refused",
			rules: []Rule{allow(users("alice"), "ps", "#")},
			user:  "alice", clientID: "c1",
			checks: []check{
				{pub, "a/+", false}, {pub, "a/#", false}, {pub, "", false}, {read, "a/#", false},
				{sub, "a/#/b", false}, {sub, "a/b#", false}, {sub, "a+/b", false}, {sub, "", false},
			},
		},
		{
			name: "deny all from one group beats allows everywhere",
			rules: []Rule{
				allow(users("bob"), "ps", "#"),
				allow(clients("*"), "ps", "x/#"),
				deny(groups("sensors"), "ps", "#"),
			},
			user: "bob", clientID: "c1",
			checks: []check{{pub, "x/y", false}, {sub, "x/#", false}, {read, "x/y", false}},
		},
	}
	for _, tt := range tests {
		for pi, rules := range permutations(tt.rules) {
			t.Run(fmt.Sprintf("%s/order%d", tt.name, pi), func(t *testing.T) {
				p := mustCompile(t, testBundle(t, rules...))
				id := login(t, p, tt.user, tt.clientID)
				for _, c := range tt.checks {
					if got := run(id, c); got != c.want {
						t.Errorf("%s %q by %q/%q: got %v, want %v", c.op, c.topic, tt.user, tt.clientID, got, c.want)
					}
				}
			})
		}
	}
}

// login authenticates user ("" is anonymous) with its test password.
func login(t *testing.T, p *Policy, user, clientID string) *Identity {
	t.Helper()
	id, res := p.Authenticate(user, user != "", []byte("pw-"+user), clientID)
	if res != AuthOK {
		t.Fatalf("Authenticate(%q): got %v, want %v", user, res, AuthOK)
	}
	return id
}

func run(id *Identity, c check) bool {
	switch c.op {
	case pub:
		return id.CanPublish([]byte(c.topic))
	case sub:
		return id.CanSubscribe(c.topic)
	default:
		return id.CanRead([]byte(c.topic))
	}
}

func TestChecksDoNotAllocate(t *testing.T) {
	p := mustCompile(t, testBundle(t,
		allow(users("alice"), "ps", "a/#", "devices/%u/#", "x/dev-%c/+"),
		deny(groups("ops"), "ps", "a/secret/#"),
		allow(clients("c*"), "ps", "$SYS/#"),
	))
	id := login(t, p, "alice", "c1")
	topic := []byte("devices/alice/temp")
	deep := []byte("x/dev-c1/y")
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"CanPublish", func() { id.CanPublish(topic) }},
		{"CanPublish template", func() { id.CanPublish(deep) }},
		{"CanRead", func() { id.CanRead(topic) }},
		{"CanSubscribe", func() { id.CanSubscribe("a/+/b") }},
		{"CanSubscribe denied", func() { id.CanSubscribe("a/secret/#") }},
	} {
		if n := testing.AllocsPerRun(1000, tc.f); n != 0 {
			t.Errorf("%s: got %v allocs per run, want 0", tc.name, n)
		}
	}
}

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true},
		{"*", "anything", true},
		{"a*", "a", true},
		{"a*", "abc", true},
		{"a*", "ba", false},
		{"*-gw", "x-gw", true},
		{"*-gw", "x-gwx", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"a**", "a", true},
		{"*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaab", true},
		{"*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaa", false},
	}
	for _, tt := range tests {
		if got := globMatch(tt.pattern, tt.s); got != tt.want {
			t.Errorf("globMatch(%q, %q): got %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}
