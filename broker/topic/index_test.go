package topic

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

// keys returns the keys of ms, sorted, as "key:filter" ("key:$share/g/filter"
// for shared ones), so a failure shows which subscription matched.
func keys(ms []Match[string]) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		f := m.Sub.Filter
		if m.Sub.Group != "" {
			f = "$share/" + m.Sub.Group + "/" + f
		}
		out = append(out, m.Key+":"+f)
	}
	slices.Sort(out)
	return out
}

func subscribeAll(t *testing.T, ix *Index[string], subs map[string][]string) {
	t.Helper()
	for key, filters := range subs {
		for _, f := range filters {
			group, filter, _, err := ParseShared(f)
			if err != nil {
				t.Fatalf("ParseShared(%q): %v", f, err)
			}
			ix.Subscribe(key, Subscription{Filter: filter, Group: group})
		}
	}
}

func TestIndexMatch(t *testing.T) {
	tests := []struct {
		name  string
		subs  map[string][]string
		topic string
		want  []string
	}{
		{
			name:  "exact",
			subs:  map[string][]string{"c1": {"a/b"}, "c2": {"a/c"}},
			topic: "a/b",
			want:  []string{"c1:a/b"},
		},
		{
			name:  "no match",
			subs:  map[string][]string{"c1": {"a/b"}},
			topic: "a/b/c",
			want:  []string{},
		},
		{
			name:  "plus and hash",
			subs:  map[string][]string{"c1": {"a/+/c"}, "c2": {"a/#"}, "c3": {"#"}, "c4": {"+/+/+"}, "c5": {"a/+"}},
			topic: "a/b/c",
			want:  []string{"c1:a/+/c", "c2:a/#", "c3:#", "c4:+/+/+"},
		},
		{
			// §4.7.1.2: "a/#" matches "a".
			name:  "hash matches parent",
			subs:  map[string][]string{"c1": {"a/#"}, "c2": {"a/b/#"}, "c3": {"a/+/#"}},
			topic: "a",
			want:  []string{"c1:a/#"},
		},
		{
			name:  "plus then hash matches parent",
			subs:  map[string][]string{"c1": {"a/+/#"}, "c2": {"+/#"}},
			topic: "a/b",
			want:  []string{"c1:a/+/#", "c2:+/#"},
		},
		{
			name:  "empty levels",
			subs:  map[string][]string{"c1": {"a//b"}, "c2": {"a/+/b"}, "c3": {"a/b"}, "c4": {"a/#"}},
			topic: "a//b",
			want:  []string{"c1:a//b", "c2:a/+/b", "c4:a/#"},
		},
		{
			name:  "leading empty level",
			subs:  map[string][]string{"c1": {"/a"}, "c2": {"+/a"}, "c3": {"a"}, "c4": {"/#"}},
			topic: "/a",
			want:  []string{"c1:/a", "c2:+/a", "c4:/#"},
		},
		{
			name:  "trailing empty level",
			subs:  map[string][]string{"c1": {"a/+"}, "c2": {"a"}, "c3": {"a/"}},
			topic: "a/",
			want:  []string{"c1:a/+", "c3:a/"},
		},
		{
			// [MQTT-4.7.2-1]
			name:  "dollar topic skips first-level wildcards",
			subs:  map[string][]string{"c1": {"#"}, "c2": {"+/x"}, "c3": {"$SYS/#"}, "c4": {"$SYS/+"}, "c5": {"+/#"}},
			topic: "$SYS/x",
			want:  []string{"c3:$SYS/#", "c4:$SYS/+"},
		},
		{
			name:  "dollar below the first level is ordinary",
			subs:  map[string][]string{"c1": {"#"}, "c2": {"a/+"}},
			topic: "a/$x",
			want:  []string{"c1:#", "c2:a/+"},
		},
		{
			name:  "case-sensitive",
			subs:  map[string][]string{"c1": {"A/b"}, "c2": {"a/B"}},
			topic: "a/b",
			want:  []string{},
		},
		{
			// Overlapping subscriptions (§3.3.4): the index returns each overlapping subscription; the caller merges.
			name:  "overlapping filters for one key",
			subs:  map[string][]string{"c1": {"a/b", "a/+", "a/#", "#"}},
			topic: "a/b",
			want:  []string{"c1:#", "c1:a/#", "c1:a/+", "c1:a/b"},
		},
		{
			name:  "two groups both get one",
			subs:  map[string][]string{"c1": {"$share/g1/a/b", "$share/g2/a/b"}, "c2": {"$share/g1/a/b", "$share/g2/a/b"}},
			topic: "a/b",
			want:  nil, // checked by count below
		},
		{
			name:  "shared and plain on the same filter",
			subs:  map[string][]string{"c1": {"$share/g/a/b", "a/b"}},
			topic: "a/b",
			want:  []string{"c1:$share/g/a/b", "c1:a/b"},
		},
		{
			name:  "one pick per group per matching filter",
			subs:  map[string][]string{"c1": {"$share/g/a/+", "$share/g/a/#"}},
			topic: "a/b",
			want:  []string{"c1:$share/g/a/#", "c1:$share/g/a/+"},
		},
		{
			name:  "shared dollar rule",
			subs:  map[string][]string{"c1": {"$share/g/#"}},
			topic: "$SYS/x",
			want:  []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ix := NewIndex[string](nil, nil)
			subscribeAll(t, ix, tt.subs)
			got := keys(ix.Match([]byte(tt.topic), nil))
			if tt.want == nil {
				if len(got) != 2 || got[0][2:] != ":$share/g1/a/b" || got[1][2:] != ":$share/g2/a/b" {
					t.Errorf("Match(%q) = %q, want one member of g1 and one of g2", tt.topic, got)
				}
				return
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Match(%q) = %q, want %q", tt.topic, got, tt.want)
			}
		})
	}
}

// TestIndexAgreesWithMatchFilter subscribes every filter under its own key
// and checks that the trie and MatchFilter agree on every topic.
func TestIndexAgreesWithMatchFilter(t *testing.T) {
	filters := []string{
		"#", "+", "/", "/#", "+/#", "+/+", "+/+/+", "a", "a/", "a/#", "a/+", "a/+/#",
		"a/b", "a/b/#", "a/b/c", "a//b", "a/+/c", "/a", "+/a", "$SYS", "$SYS/#",
		"$SYS/+", "+/$x", "a/$x", "A/b", "", "a/#/b",
	}
	topics := []string{
		"a", "a/", "a/b", "a/b/c", "a//b", "a/b/c/d", "/a", "/", "//", "b", "$SYS",
		"$SYS/x", "$SYS/x/y", "a/$x", "A/b", "", "x/a",
	}
	ix := NewIndex[string](nil, nil)
	for _, f := range filters {
		ix.Subscribe(f, Subscription{Filter: f})
	}
	for _, topic := range topics {
		t.Run(topic, func(t *testing.T) {
			var want []string
			for _, f := range filters {
				if MatchFilter(f, topic) {
					want = append(want, f)
				}
			}
			var got []string
			for _, m := range ix.Match([]byte(topic), nil) {
				got = append(got, m.Key)
			}
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("Match(%q) = %q, want %q (MatchFilter)", topic, got, want)
			}
		})
	}
}

func TestIndexReplace(t *testing.T) {
	ix := NewIndex[string](nil, nil)
	if existed := ix.Subscribe("c1", Subscription{Filter: "a/+", QoS: 0}); existed {
		t.Fatalf("first Subscribe existed = true, want false")
	}
	old := ix.Match([]byte("a/b"), nil)[0].Sub
	if existed := ix.Subscribe("c1", Subscription{Filter: "a/+", QoS: 2, ID: 7}); !existed {
		t.Fatalf("second Subscribe existed = false, want true")
	}
	if got := ix.Count(); got != 1 {
		t.Errorf("Count() = %d, want 1", got)
	}
	got := ix.Match([]byte("a/b"), nil)
	if len(got) != 1 || got[0].Sub.QoS != 2 || got[0].Sub.ID != 7 {
		t.Fatalf("Match after replace = %+v, want one subscription with QoS 2, ID 7", got)
	}
	if old.QoS != 0 {
		t.Errorf("replaced Subscription changed: QoS = %d, want 0 (stored values are immutable)", old.QoS)
	}
	// Same filter in a group, or a different key, is a different subscription.
	if ix.Subscribe("c1", Subscription{Filter: "a/+", Group: "g"}) {
		t.Errorf("Subscribe in group existed = true, want false")
	}
	if ix.Subscribe("c2", Subscription{Filter: "a/+"}) {
		t.Errorf("Subscribe other key existed = true, want false")
	}
	if ix.Subscribe("c1", Subscription{Filter: "a/+", Group: "g", QoS: 1}) != true {
		t.Errorf("Subscribe in group again existed = false, want true")
	}
	if got := ix.Count(); got != 3 {
		t.Errorf("Count() = %d, want 3", got)
	}
}

func TestIndexSubscribeCopiesFilter(t *testing.T) {
	ix := NewIndex[string](nil, nil)
	buf := []byte("a/b")
	ix.Subscribe("c1", Subscription{Filter: string(buf)})
	sub := Subscription{Filter: "x/y"}
	ix.Subscribe("c2", sub)
	sub.QoS = 2 // the caller's struct is not the stored one
	got := ix.Match([]byte("x/y"), nil)
	if len(got) != 1 || got[0].Sub.QoS != 0 {
		t.Errorf("Match = %+v, want the QoS 0 stored copy", got)
	}
}

func TestIndexUnsubscribe(t *testing.T) {
	ix := NewIndex[string](nil, nil)
	ix.Subscribe("c1", Subscription{Filter: "a/b/c"})
	ix.Subscribe("c1", Subscription{Filter: "a/+/c"})
	ix.Subscribe("c2", Subscription{Filter: "a/b/c"})
	ix.Subscribe("c1", Subscription{Filter: "a/#", Group: "g"})

	tests := []struct {
		key, group, filter string
		want               bool
	}{
		{"c3", "", "a/b/c", false},   // other key
		{"c1", "", "a/b", false},     // prefix of a filter
		{"c1", "", "a/b/c/d", false}, // longer than a filter
		{"c1", "", "a/#", false},     // only in a group
		{"c1", "h", "a/#", false},    // other group
		{"c1", "g", "a/#", true},
		{"c1", "g", "a/#", false}, // already gone
		{"c1", "", "a/b/c", true},
		{"c2", "", "a/b/c", true},
		{"c1", "", "a/+/c", true},
	}
	for _, tt := range tests {
		t.Run(tt.key+"/"+tt.group+"/"+tt.filter, func(t *testing.T) {
			if got := ix.Unsubscribe(tt.key, tt.group, tt.filter); got != tt.want {
				t.Errorf("Unsubscribe(%q, %q, %q) = %v, want %v", tt.key, tt.group, tt.filter, got, tt.want)
			}
		})
	}
	if got := ix.Count(); got != 0 {
		t.Errorf("Count() = %d, want 0", got)
	}
	if got := ix.nodeCount(); got != 0 {
		t.Errorf("nodeCount() = %d, want 0 (empty nodes pruned)", got)
	}
	if got := ix.Match([]byte("a/b/c"), nil); len(got) != 0 {
		t.Errorf("Match after unsubscribe = %q, want none", keys(got))
	}
}

// TestIndexChurnPrunes subscribes and unsubscribes many filters in random
// order, including wide nodes that switch to maps, and checks that the trie
// returns to empty.
func TestIndexChurnPrunes(t *testing.T) {
	ix := NewIndex[int](nil, nil)
	r := rand.New(rand.NewPCG(1, 2))
	type sub struct {
		key           int
		group, filter string
	}
	var subs []sub
	for i := range 2000 {
		f := fmt.Sprintf("d/%d/%s", r.IntN(100), []string{"x", "+", "#", "y/z", ""}[r.IntN(5)])
		g := ""
		if r.IntN(4) == 0 {
			g = fmt.Sprint("g", r.IntN(3))
		}
		subs = append(subs, sub{i % 300, g, f})
	}
	for round := range 3 {
		for _, s := range subs {
			ix.Subscribe(s.key, Subscription{Filter: s.filter, Group: s.group})
		}
		r.Shuffle(len(subs), func(i, j int) { subs[i], subs[j] = subs[j], subs[i] })
		for _, s := range subs {
			ix.Unsubscribe(s.key, s.group, s.filter)
		}
		if got := ix.Count(); got != 0 {
			t.Fatalf("round %d: Count() = %d, want 0", round, got)
		}
		if got := ix.nodeCount(); got != 0 {
			t.Fatalf("round %d: nodeCount() = %d, want 0", round, got)
		}
	}
	if ix.root.kids.len() != 0 || ix.root.plus != nil || ix.root.hash != nil {
		t.Errorf("root not empty after churn: %+v", ix.root)
	}
}

// TestIndexWideNodes crosses the thresholds where children and subscriber
// sets switch representation, in both directions.
func TestIndexWideNodes(t *testing.T) {
	ix := NewIndex[int](nil, nil)
	const n = 200
	for i := range n {
		ix.Subscribe(i, Subscription{Filter: "fan/out"})
		ix.Subscribe(i, Subscription{Filter: fmt.Sprintf("wide/%d", i)})
	}
	if got := len(ix.Match([]byte("fan/out"), nil)); got != n {
		t.Fatalf("fan-out Match = %d subscriptions, want %d", got, n)
	}
	for i := 0; i < n; i += 2 {
		if !ix.Unsubscribe(i, "", "fan/out") || !ix.Unsubscribe(i, "", fmt.Sprintf("wide/%d", i)) {
			t.Fatalf("Unsubscribe %d = false, want true", i)
		}
	}
	got := ix.Match([]byte("fan/out"), nil)
	if len(got) != n/2 {
		t.Fatalf("fan-out Match after removals = %d, want %d", len(got), n/2)
	}
	for _, m := range got {
		if m.Key%2 == 0 {
			t.Errorf("removed key %d still matched", m.Key)
		}
	}
	for i := 1; i < n; i += 2 {
		if ms := ix.Match(fmt.Appendf(nil, "wide/%d", i), nil); len(ms) != 1 || ms[0].Key != i {
			t.Errorf("Match(wide/%d) = %+v, want key %d", i, ms, i)
		}
		if ix.Subscribe(i, Subscription{Filter: "fan/out", QoS: 1}) != true {
			t.Errorf("re-Subscribe %d existed = false, want true", i)
		}
	}
	for i := 1; i < n; i += 2 {
		ix.Unsubscribe(i, "", "fan/out")
		ix.Unsubscribe(i, "", fmt.Sprintf("wide/%d", i))
	}
	if ix.Count() != 0 || ix.nodeCount() != 0 {
		t.Errorf("Count, nodeCount = %d, %d, want 0, 0", ix.Count(), ix.nodeCount())
	}
}

func TestSharedRoundRobin(t *testing.T) {
	ix := NewIndex[string](nil, nil)
	members := []string{"m1", "m2", "m3"}
	for _, m := range members {
		ix.Subscribe(m, Subscription{Filter: "jobs/+", Group: "workers"})
	}
	counts := map[string]int{}
	var prev string
	for i := range 300 {
		got := ix.Match([]byte("jobs/1"), nil)
		if len(got) != 1 {
			t.Fatalf("Match = %d subscriptions, want exactly one per group", len(got))
		}
		if i > 0 && got[0].Key == prev {
			t.Errorf("pick %d repeated %q, want rotation", i, prev)
		}
		prev = got[0].Key
		counts[got[0].Key]++
	}
	for _, m := range members {
		if counts[m] != 100 {
			t.Errorf("member %s picked %d times, want 100 (counts %v)", m, counts[m], counts)
		}
	}
}

// TestSharedPicksMembersThatMayRead: a member that may not read the topic
// is never picked while another may, connected or not; it does not even
// break the rotation of those that may.
func TestSharedPicksMembersThatMayRead(t *testing.T) {
	up := map[string]bool{"ro": true, "rw1": true, "rw2": true, "off": false}
	mayRead := func(k string, topic []byte) bool { return k != "ro" || !bytes.HasPrefix(topic, []byte("secret/")) }
	var down atomic.Bool // every member offline
	ix := NewIndex(func(k string) bool { return up[k] && !down.Load() }, mayRead)
	for _, m := range []string{"ro", "rw1", "rw2", "off"} {
		ix.Subscribe(m, Subscription{Filter: "#", Group: "g"})
	}
	for _, tc := range []struct {
		name  string
		down  bool
		topic string
		want  map[string]int
	}{
		{"open topic: every connected member", false, "open/x", map[string]int{"ro": 40, "rw1": 40, "rw2": 40}},
		{"denied topic: connected members that may read", false, "secret/x", map[string]int{"rw1": 60, "rw2": 60}},
		{"all offline: members that may read", true, "secret/x", map[string]int{"rw1": 40, "rw2": 40, "off": 40}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			down.Store(tc.down)
			counts := map[string]int{}
			for range 120 {
				got := ix.Match([]byte(tc.topic), nil)
				if len(got) != 1 {
					t.Fatalf("Match = %d subscriptions, want 1", len(got))
				}
				counts[got[0].Key]++
			}
			if !maps.Equal(counts, tc.want) {
				t.Errorf("picks = %v, want %v", counts, tc.want)
			}
		})
	}
	t.Run("none may read: picked anyway, for the caller to refuse", func(t *testing.T) {
		ix := NewIndex[string](nil, func(string, []byte) bool { return false })
		ix.Subscribe("m1", Subscription{Filter: "jobs", Group: "g"})
		if got := ix.Match([]byte("jobs"), nil); len(got) != 1 || got[0].Key != "m1" {
			t.Errorf("Match = %v, want m1", got)
		}
	})
}

func TestSharedPrefersAvailable(t *testing.T) {
	var mu sync.Mutex
	up := map[string]bool{"m1": false, "m2": true, "m3": false, "m4": true}
	avail := func(k string) bool { mu.Lock(); defer mu.Unlock(); return up[k] }
	ix := NewIndex(avail, nil)
	for _, m := range []string{"m1", "m2", "m3", "m4"} {
		ix.Subscribe(m, Subscription{Filter: "jobs", Group: "g"})
	}

	t.Run("round-robin among available", func(t *testing.T) {
		counts := map[string]int{}
		for range 100 {
			counts[ix.Match([]byte("jobs"), nil)[0].Key]++
		}
		if counts["m2"] != 50 || counts["m4"] != 50 {
			t.Errorf("counts = %v, want m2 and m4 50 each", counts)
		}
	})
	t.Run("none available falls back to all", func(t *testing.T) {
		mu.Lock()
		for k := range up {
			up[k] = false
		}
		mu.Unlock()
		counts := map[string]int{}
		for range 100 {
			got := ix.Match([]byte("jobs"), nil)
			if len(got) != 1 {
				t.Fatalf("Match = %d subscriptions, want 1", len(got))
			}
			counts[got[0].Key]++
		}
		for _, m := range []string{"m1", "m2", "m3", "m4"} {
			if counts[m] != 25 {
				t.Errorf("counts = %v, want 25 each", counts)
				break
			}
		}
	})
	t.Run("nil available is all available", func(t *testing.T) {
		ix := NewIndex[string](nil, nil)
		ix.Subscribe("m1", Subscription{Filter: "jobs", Group: "g"})
		if got := ix.Match([]byte("jobs"), nil); len(got) != 1 || got[0].Key != "m1" {
			t.Errorf("Match = %q, want m1", keys(got))
		}
	})
}

func TestSharedGroupRemovedWithLastMember(t *testing.T) {
	ix := NewIndex[string](nil, nil)
	ix.Subscribe("m1", Subscription{Filter: "a", Group: "g"})
	ix.Subscribe("m2", Subscription{Filter: "a", Group: "g"})
	ix.Unsubscribe("m1", "g", "a")
	for range 3 {
		if got := ix.Match([]byte("a"), nil); len(got) != 1 || got[0].Key != "m2" {
			t.Fatalf("Match = %q, want m2 only", keys(got))
		}
	}
	ix.Unsubscribe("m2", "g", "a")
	if got := ix.Match([]byte("a"), nil); len(got) != 0 {
		t.Errorf("Match = %q, want none", keys(got))
	}
	if ix.nodeCount() != 0 {
		t.Errorf("nodeCount() = %d, want 0", ix.nodeCount())
	}
}

func TestIndexConcurrent(t *testing.T) {
	var down atomic.Int32
	ix := NewIndex(func(k int) bool { return int32(k) != down.Load() }, nil)
	filters := []string{"a/b/c", "a/+/c", "a/#", "#", "+/b/+", "x/y"}
	// Fixed work on both sides: spinning readers would starve the writers
	// on a small machine under -race.
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 9))
			for i := range 1000 {
				key := r.IntN(50)
				f := filters[r.IntN(len(filters))]
				g := ""
				if r.IntN(3) == 0 {
					g = "g"
				}
				if r.IntN(2) == 0 {
					ix.Subscribe(key, Subscription{Filter: f, Group: g, QoS: byte(i % 3)})
				} else {
					ix.Unsubscribe(key, g, f)
				}
				down.Store(int32(key))
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			dst := make([]Match[int], 0, 512)
			for range 1000 {
				dst = ix.Match([]byte("a/b/c"), dst[:0])
				for _, m := range dst {
					if m.Sub == nil || !MatchFilter(m.Sub.Filter, "a/b/c") {
						t.Errorf("Match returned %+v, which does not match a/b/c", m)
						return
					}
				}
				_ = ix.Count()
			}
		})
	}
	wg.Wait()

	for key := range 50 {
		for _, f := range filters {
			ix.Unsubscribe(key, "", f)
			ix.Unsubscribe(key, "g", f)
		}
	}
	if ix.Count() != 0 || ix.nodeCount() != 0 {
		t.Errorf("after removing everything: Count, nodeCount = %d, %d, want 0, 0", ix.Count(), ix.nodeCount())
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	ix := NewIndex(func(k int) bool { return k%2 == 0 }, func(k int, topic []byte) bool { return k%3 != 0 && len(topic) > 0 })
	for i := range 100 {
		ix.Subscribe(i, Subscription{Filter: fmt.Sprintf("dev/%d/cmd", i)})
		ix.Subscribe(i, Subscription{Filter: "dev/+/cmd"})
		ix.Subscribe(i, Subscription{Filter: "dev/#", Group: "g"})
		ix.Subscribe(i, Subscription{Filter: "#"})
	}
	topic := []byte("dev/42/cmd")
	dst := make([]Match[int], 0, 256)
	var n int
	allocs := testing.AllocsPerRun(1000, func() {
		dst = ix.Match(topic, dst[:0])
		n = len(dst)
	})
	if allocs != 0 {
		t.Errorf("Match allocated %v times per run, want 0", allocs)
	}
	if n != 1+100+1+100 {
		t.Errorf("Match = %d subscriptions, want %d", n, 1+100+1+100)
	}
}

// TestMemoryPerSubscription measures the heap held by the index for 10,000
// clients with one distinct subscription each, the idle-fleet case.
func TestMemoryPerSubscription(t *testing.T) {
	const clients = 10000
	perSub := heapPerSubscription(clients)
	t.Logf("%.0f bytes per subscription (index only)", perSub)
	// The broker's budget is 4 KB per client for everything; the index may
	// take a small share of it.
	if perSub > 450 {
		t.Errorf("index holds %.0f bytes per subscription, want <= 450", perSub)
	}
}

func heapPerSubscription(clients int) float64 {
	keys := make([]string, clients)
	filters := make([]string, clients)
	for i := range keys {
		keys[i] = fmt.Sprintf("client-%06d", i)
		filters[i] = "fleet/" + keys[i] + "/cmd/#"
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ix := NewIndex[string](nil, nil)
	for i := range keys {
		ix.Subscribe(keys[i], Subscription{Filter: filters[i], QoS: 1})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(ix)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(clients)
}
