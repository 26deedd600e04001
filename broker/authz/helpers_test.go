package authz

import (
	"sync"
	"testing"
)

// testIterations keeps test hashes cheap; real bundles use DefaultIterations.
const testIterations = 1

var testHashes sync.Map // password → hash

// testHash returns a cheap $7$ hash of password, the same one per password.
func testHash(t testing.TB, password string) string {
	t.Helper()
	if h, ok := testHashes.Load(password); ok {
		return h.(string)
	}
	h, err := HashPassword([]byte(password), testIterations)
	if err != nil {
		t.Fatalf("HashPassword: %v", err)
	}
	testHashes.Store(password, h)
	return h
}

// testUsers: alice (ops, all), bob (sensors, all), carol (disabled), and
// "evil/#" whose name tries to smuggle a wildcard through %u. Each user's
// password is "pw-" + username.
func testUsers(t testing.TB) []User {
	return []User{
		{Username: "alice", PasswordHash: testHash(t, "pw-alice"), Groups: []string{"ops", "all"}},
		{Username: "bob", PasswordHash: testHash(t, "pw-bob"), Groups: []string{"sensors", "all"}},
		{Username: "carol", PasswordHash: testHash(t, "pw-carol"), Disabled: true},
		{Username: "evil/#", PasswordHash: testHash(t, "pw-evil/#"), Groups: []string{"all"}},
	}
}

func testBundle(t testing.TB, rules ...Rule) *Bundle {
	return &Bundle{APIVersion: APIVersion, Revision: 1, AllowAnonymous: true, Users: testUsers(t), Rules: rules}
}

func mustCompile(t testing.TB, b *Bundle) *Policy {
	t.Helper()
	p, err := Compile(b)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return p
}

func users(names ...string) Subjects  { return Subjects{Users: names} }
func groups(names ...string) Subjects { return Subjects{Groups: names} }
func clients(ids ...string) Subjects  { return Subjects{ClientIDs: ids} }

// rule builds a rule; acts is "p", "s" or "ps".
func rule(s Subjects, e Effect, acts string, topics ...string) Rule {
	r := Rule{Subjects: s, Topics: topics, Effect: e}
	for _, a := range acts {
		switch a {
		case 'p':
			r.Actions = append(r.Actions, ActionPublish)
		case 's':
			r.Actions = append(r.Actions, ActionSubscribe)
		}
	}
	return r
}

func allow(s Subjects, acts string, topics ...string) Rule {
	return rule(s, EffectAllow, acts, topics...)
}

func deny(s Subjects, acts string, topics ...string) Rule {
	return rule(s, EffectDeny, acts, topics...)
}

// permutations returns every order of rules when there are at most 5, else
// the given and the reversed order.
func permutations(rules []Rule) [][]Rule {
	if len(rules) > 5 {
		rev := make([]Rule, len(rules))
		for i, r := range rules {
			rev[len(rules)-1-i] = r
		}
		return [][]Rule{rules, rev}
	}
	var out [][]Rule
	var perm func(prefix, rest []Rule)
	perm = func(prefix, rest []Rule) {
		if len(rest) == 0 {
			out = append(out, append([]Rule(nil), prefix...))
			return
		}
		for i := range rest {
			next := append(append([]Rule(nil), rest[:i]...), rest[i+1:]...)
			perm(append(prefix, rest[i]), next)
		}
	}
	perm(nil, rules)
	return out
}
