package authz

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestAgainstReference compares the compiled tries with a naive
// rule-by-rule evaluation of the documented semantics on random rules,
// identities, topics and filters.
func TestAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	patternLevels := []string{"a", "b", "$s", "", "+", "%u", "x-%c", "%u%c"}
	topicLevels := []string{"a", "b", "$s", "", "alice", "c1", "x-c1", "alicec1", "x-"}
	filterLevels := append(slices.Clone(topicLevels), "+")

	randPath := func(levels []string, hashOK bool) string {
		n := 1 + rng.IntN(4)
		parts := make([]string, n)
		for i := range parts {
			parts[i] = levels[rng.IntN(len(levels))]
		}
		if hashOK && rng.IntN(3) == 0 {
			parts[n-1] = "#"
		}
		if s := strings.Join(parts, "/"); s != "" {
			return s
		}
		return "a"
	}
	randSubjects := func() Subjects {
		var s Subjects
		switch rng.IntN(5) {
		case 0:
			s.Users = []string{"alice"}
		case 1:
			s.Groups = []string{"ops"}
		case 2:
			s.ClientIDs = []string{[]string{"c1", "c*", "*", "d*"}[rng.IntN(4)]}
		case 3:
			s.Users = []string{"bob"}
		default:
			s.Groups = []string{"sensors"}
			s.ClientIDs = []string{"c1"}
		}
		return s
	}

	for iter := range 3000 {
		var rules []Rule
		for range 1 + rng.IntN(5) {
			r := Rule{Subjects: randSubjects(), Effect: EffectAllow}
			if rng.IntN(3) == 0 {
				r.Effect = EffectDeny
			}
			for range 1 + rng.IntN(2) {
				r.Topics = append(r.Topics, randPath(patternLevels, true))
			}
			switch rng.IntN(3) {
			case 0:
				r.Actions = []Action{ActionPublish}
			case 1:
				r.Actions = []Action{ActionSubscribe}
			default:
				r.Actions = []Action{ActionPublish, ActionSubscribe}
			}
			rules = append(rules, r)
		}
		p := mustCompile(t, testBundle(t, rules...))
		user := []string{"alice", ""}[rng.IntN(2)]
		cid := []string{"c1", "", "d2"}[rng.IntN(3)]
		id, res := p.Authenticate(user, user != "", []byte("pw-"+user), cid)
		if res != AuthOK {
			t.Fatalf("Authenticate: %v", res)
		}
		for range 20 {
			topic := randPath(topicLevels, false)
			filter := randPath(filterLevels, true)
			if got, want := id.CanPublish([]byte(topic)), refDecide(rules, id, ActionPublish, topic); got != want {
				t.Fatalf("iter %d: CanPublish(%q) as %q/%q with rules %+v: got %v, want %v", iter, topic, user, cid, rules, got, want)
			}
			if got, want := id.CanRead([]byte(topic)), refDecide(rules, id, ActionSubscribe, topic); got != want {
				t.Fatalf("iter %d: CanRead(%q) as %q/%q with rules %+v: got %v, want %v", iter, topic, user, cid, rules, got, want)
			}
			if got, want := id.CanSubscribe(filter), refDecide(rules, id, ActionSubscribe, filter); got != want {
				t.Fatalf("iter %d: CanSubscribe(%q) as %q/%q with rules %+v: got %v, want %v", iter, filter, user, cid, rules, got, want)
			}
		}
	}
}

// refDecide evaluates rules one by one: some applicable allow rule covers
// the filter and no applicable deny rule does.
func refDecide(rules []Rule, id *Identity, action Action, filter string) bool {
	allowed := false
	for _, r := range rules {
		if !slices.Contains(r.Actions, action) || !refApplies(r.Subjects, id) {
			continue
		}
		for _, pat := range r.Topics {
			if refCovers(strings.Split(pat, "/"), strings.Split(filter, "/"), true, id) {
				if r.Effect == EffectDeny {
					return false
				}
				allowed = true
			}
		}
	}
	return allowed
}

func refApplies(s Subjects, id *Identity) bool {
	if !id.anonymous {
		if slices.Contains(s.Users, id.username) {
			return true
		}
		groups := map[string][]string{"alice": {"ops", "all"}}
		for _, g := range groups[id.username] {
			if slices.Contains(s.Groups, g) {
				return true
			}
		}
	}
	for _, c := range s.ClientIDs {
		if c == id.clientID || (strings.Contains(c, "*") && refGlob(c, id.clientID)) {
			return true
		}
	}
	return false
}

// refGlob matches '*' by trying every split.
func refGlob(pattern, s string) bool {
	before, after, found := strings.Cut(pattern, "*")
	if !found {
		return pattern == s
	}
	if !strings.HasPrefix(s, before) {
		return false
	}
	rest := s[len(before):]
	for i := 0; i <= len(rest); i++ {
		if refGlob(after, rest[i:]) {
			return true
		}
	}
	return false
}

// refCovers reports whether pattern p covers filter f, level by level.
func refCovers(p, f []string, first bool, id *Identity) bool {
	dollar := first && len(f) > 0 && strings.HasPrefix(f[0], "$")
	if len(p) > 0 && p[0] == "#" {
		return !dollar
	}
	if len(f) == 0 || len(p) == 0 {
		return len(f) == 0 && len(p) == 0
	}
	pl, fl := p[0], f[0]
	tmpl := strings.Contains(pl, "%u") || strings.Contains(pl, "%c")
	switch {
	case dollar && (pl == "+" || tmpl):
		return false
	case fl == "#":
		return false
	case fl == "+":
		if pl != "+" {
			return false
		}
	case pl == "+":
	case tmpl:
		if strings.Contains(pl, "%u") && (id.anonymous || id.username == "") {
			return false
		}
		if strings.Contains(pl, "%c") && id.clientID == "" {
			return false
		}
		if strings.NewReplacer("%u", id.username, "%c", id.clientID).Replace(pl) != fl {
			return false
		}
	default:
		if pl != fl {
			return false
		}
	}
	return refCovers(p[1:], f[1:], false, id)
}
