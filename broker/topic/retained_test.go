package topic

import (
	"fmt"
	"slices"
	"testing"
)

func retainedTopics(r *Retained[int], filter string) []string {
	var got []string
	r.Match(filter, func(topic string, v int) bool {
		got = append(got, topic)
		return true
	})
	slices.Sort(got)
	return got
}

func TestRetainedMatch(t *testing.T) {
	stored := []string{
		"a", "a/b", "a/b/c", "a/c", "a//b", "a/", "/a", "/", "b/b",
		"$SYS", "$SYS/x", "$SYS/x/y", "a/$x", "A/b",
	}
	r := NewRetained[int]()
	for i, topic := range stored {
		r.Set(topic, i)
	}
	tests := []struct {
		filter string
		want   []string
	}{
		{"a/b", []string{"a/b"}},
		{"a/b/c/d", nil},
		{"x", nil},
		{"A/b", []string{"A/b"}},
		{"a/+", []string{"a/", "a/$x", "a/b", "a/c"}},
		{"+/b", []string{"A/b", "a/b", "b/b"}},
		{"a/+/b", []string{"a//b"}},
		{"+", []string{"a"}},
		{"+/+", []string{"/", "/a", "A/b", "a/", "a/$x", "a/b", "a/c", "b/b"}},
		// §4.7.1.2: the parent too.
		{"a/#", []string{"a", "a/", "a//b", "a/$x", "a/b", "a/b/c", "a/c"}},
		{"a/b/#", []string{"a/b", "a/b/c"}},
		{"a/+/#", []string{"a/", "a//b", "a/$x", "a/b", "a/b/c", "a/c"}},
		{"/#", []string{"/", "/a"}},
		// [MQTT-4.7.2-1] no '$' topics for a leading wildcard.
		{"#", []string{"/", "/a", "A/b", "a", "a/", "a//b", "a/$x", "a/b", "a/b/c", "a/c", "b/b"}},
		{"+/x", nil},
		{"+/#", []string{"/", "/a", "A/b", "a", "a/", "a//b", "a/$x", "a/b", "a/b/c", "a/c", "b/b"}},
		{"$SYS/#", []string{"$SYS", "$SYS/x", "$SYS/x/y"}},
		{"$SYS/+", []string{"$SYS/x"}},
		{"$SYS", []string{"$SYS"}},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			got := retainedTopics(r, tt.filter)
			slices.Sort(tt.want)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Match(%q) = %q, want %q", tt.filter, got, tt.want)
			}
			// The trie and MatchFilter agree.
			var want []string
			for _, topic := range stored {
				if MatchFilter(tt.filter, topic) {
					want = append(want, topic)
				}
			}
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("Match(%q) = %q, MatchFilter says %q", tt.filter, got, want)
			}
		})
	}
}

func TestRetainedSetGetDelete(t *testing.T) {
	r := NewRetained[string]()
	r.Set("a/b", "1")
	r.Set("a/b", "2") // replace
	r.Set("a", "3")
	if got := r.Len(); got != 2 {
		t.Errorf("Len() = %d, want 2", got)
	}
	if v, ok := r.Get("a/b"); !ok || v != "2" {
		t.Errorf(`Get("a/b") = %q, %v, want "2", true`, v, ok)
	}
	for _, topic := range []string{"a/b/c", "x", "a/"} {
		if v, ok := r.Get(topic); ok {
			t.Errorf("Get(%q) = %q, true, want not found", topic, v)
		}
	}
	if r.Delete("a/b/c") || r.Delete("x") {
		t.Errorf("Delete of a missing topic = true, want false")
	}
	r.Set("a/b/c/d", "4")
	if r.Delete("a/b/c") {
		t.Errorf(`Delete("a/b/c") (an inner node without a value) = true, want false`)
	}
	for _, topic := range []string{"a/b", "a", "a/b/c/d"} {
		if !r.Delete(topic) {
			t.Errorf("Delete(%q) = false, want true", topic)
		}
	}
	if r.Delete("a") {
		t.Errorf(`second Delete("a") = true, want false`)
	}
	if r.Len() != 0 || r.nodes != 0 {
		t.Errorf("Len, nodes = %d, %d after deleting all, want 0, 0", r.Len(), r.nodes)
	}
}

func TestRetainedPrunesUnderChurn(t *testing.T) {
	r := NewRetained[int]()
	for round := range 3 {
		for i := range 1000 {
			r.Set(fmt.Sprintf("s/%d/%d", i%37, i), i)
		}
		if r.Len() != 1000 {
			t.Fatalf("round %d: Len() = %d, want 1000", round, r.Len())
		}
		for i := range 1000 {
			if !r.Delete(fmt.Sprintf("s/%d/%d", i%37, i)) {
				t.Fatalf("round %d: Delete %d = false", round, i)
			}
		}
		if r.Len() != 0 || r.nodes != 0 {
			t.Fatalf("round %d: Len, nodes = %d, %d, want 0, 0", round, r.Len(), r.nodes)
		}
	}
}

func TestRetainedMatchStopsAndAllowsWrites(t *testing.T) {
	r := NewRetained[int]()
	for i := range 10 {
		r.Set(fmt.Sprint("t/", i), i)
	}
	calls := 0
	r.Match("t/+", func(topic string, v int) bool {
		calls++
		r.Delete(topic) // must not deadlock
		r.Set("u/"+topic, v)
		return calls < 3
	})
	if calls != 3 {
		t.Errorf("fn called %d times, want 3 (stops on false)", calls)
	}
	if got := len(retainedTopics(r, "t/+")); got != 7 {
		t.Errorf("%d topics left under t/, want 7", got)
	}
	n := 0
	r.Range(func(topic string, v int) bool {
		r.Delete(topic)
		n++
		return true
	})
	if n != 10 || r.Len() != 0 {
		t.Errorf("Range visited %d, Len() = %d after deleting, want 10, 0", n, r.Len())
	}
}

func TestRetainedRangeIncludesDollar(t *testing.T) {
	r := NewRetained[int]()
	r.Set("$SYS/x", 1)
	r.Set("a", 2)
	var got []string
	r.Range(func(topic string, v int) bool { got = append(got, topic); return true })
	slices.Sort(got)
	if want := []string{"$SYS/x", "a"}; !slices.Equal(got, want) {
		t.Errorf("Range = %q, want %q", got, want)
	}
}

func TestRetainedWideNode(t *testing.T) {
	r := NewRetained[int]()
	for i := range 100 {
		r.Set(fmt.Sprint("w/", i), i)
	}
	r.Set("$w/1", 1)
	if got := len(retainedTopics(r, "w/+")); got != 100 {
		t.Errorf("Match(w/+) = %d topics, want 100", got)
	}
	if got := len(retainedTopics(r, "#")); got != 100 {
		t.Errorf("Match(#) = %d topics, want 100", got)
	}
	for i := range 95 {
		r.Delete(fmt.Sprint("w/", i))
	}
	if got := retainedTopics(r, "w/+"); !slices.Equal(got, []string{"w/95", "w/96", "w/97", "w/98", "w/99"}) {
		t.Errorf("Match(w/+) = %q after deletes", got)
	}
}
