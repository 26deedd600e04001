package topic

import (
	"bytes"
	"strings"
	"sync"
	"sync/atomic"
)

// Index is the subscription index: a trie of topic filters, one node per
// filter level, with '+' and '#' children kept beside the literal ones.
//
// Index is safe for concurrent use. Match takes only the read lock, so
// matches run in parallel, and does not allocate when dst has capacity.
type Index[K comparable] struct {
	available func(K) bool         // nil: every key is available
	mayRead   func(K, []byte) bool // nil: every key may read every topic

	mu    sync.RWMutex // mu guards root, count and nodes
	root  node[K]
	count int // stored subscriptions
	nodes int // trie nodes below root, for tests of pruning
}

// node is one filter level. It holds the subscriptions whose filter ends at
// this level. A node with no subscriptions and no children is removed.
//
// Every distinct filter costs at least one node, so the node is kept to 80
// bytes: what most nodes never need (shared groups, the position index of a
// fan-out) sits behind ext.
type node[K comparable] struct {
	kids kids[node[K]]
	plus *node[K]    // the '+' child
	hash *node[K]    // the '#' child; it never has children
	subs []Match[K]  // non-shared subscriptions, one per key, unordered
	ext  *nodeExt[K] // nil unless needed
}

type nodeExt[K comparable] struct {
	pos    map[K]int32 // key -> index in subs, once subs is large
	groups []*group[K] // shared-subscription groups on this filter
}

// group is one shared-subscription group on one filter (MQTT 5.0 §4.8.2).
type group[K comparable] struct {
	name    string
	members []Match[K]
	pos     map[K]int32   // key -> index in members, once members is large
	next    atomic.Uint32 // round-robin cursor, advanced by readers
}

// NewIndex returns an empty index. For each matching shared-subscription
// group, Match picks one member, round-robin among those that may read the
// topic (mayRead) and can take a message now (available: connected); when
// none can now, among those that may read it (an offline member's session
// keeps it); when none may read it, among all (the caller refuses the
// delivery and counts it). So a member that may not read a topic never
// takes a message from one that may. Either function may be nil (every key
// available, every key may read). They are called with the index's read
// lock held, on the publish path: they must be cheap, must not allocate,
// must not keep the topic and must not call into the index.
func NewIndex[K comparable](available func(K) bool, mayRead func(key K, topic []byte) bool) *Index[K] {
	return &Index[K]{available: available, mayRead: mayRead}
}

// picking is what choosing one member of a shared group needs: the index's
// predicates and the topic being matched.
type picking[K comparable] struct {
	available func(K) bool
	mayRead   func(K, []byte) bool
	topic     []byte
}

// Subscribe stores sub for key, under sub.Group and sub.Filter (without any
// $share prefix). existed reports that the same key/group/filter was already
// there; its subscription is replaced [MQTT-3.8.4-3].
func (ix *Index[K]) Subscribe(key K, sub Subscription) (existed bool) {
	s := new(Subscription)
	*s = sub
	// One copy of the filter, which the trie levels below share, so no
	// caller buffer is retained.
	s.Filter = strings.Clone(sub.Filter)
	s.Group = strings.Clone(sub.Group)

	ix.mu.Lock()
	defer ix.mu.Unlock()
	n := &ix.root
	for f := s.Filter; ; {
		level, rest, more := strings.Cut(f, "/")
		n = ix.childLocked(n, level, !more)
		if !more {
			break
		}
		f = rest
	}
	if s.Group == "" {
		existed = n.put(key, s)
	} else {
		g := n.group(s.Group)
		if g == nil {
			if n.ext == nil {
				n.ext = new(nodeExt[K])
			}
			g = &group[K]{name: s.Group}
			n.ext.groups = append(n.ext.groups, g)
		}
		existed = put(&g.members, &g.pos, key, s)
	}
	if !existed {
		ix.count++
	}
	return existed
}

// childLocked returns n's child for level, creating it.
func (ix *Index[K]) childLocked(n *node[K], level string, last bool) *node[K] {
	switch {
	case level == "+":
		if n.plus == nil {
			n.plus = new(node[K])
			ix.nodes++
		}
		return n.plus
	case level == "#" && last:
		if n.hash == nil {
			n.hash = new(node[K])
			ix.nodes++
		}
		return n.hash
	}
	c := n.kids.get(level)
	if c == nil {
		c = new(node[K])
		n.kids.add(level, c)
		ix.nodes++
	}
	return c
}

// Unsubscribe removes key's subscription to filter in group ("" for a
// non-shared one) and prunes the nodes left empty. existed reports whether
// there was one.
func (ix *Index[K]) Unsubscribe(key K, group, filter string) (existed bool) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	existed = ix.unsubscribeLocked(&ix.root, key, group, filter)
	if existed {
		ix.count--
	}
	return existed
}

func (ix *Index[K]) unsubscribeLocked(n *node[K], key K, group, f string) bool {
	level, rest, more := strings.Cut(f, "/")
	var c *node[K]
	switch {
	case level == "+":
		c = n.plus
	case level == "#" && !more:
		c = n.hash
	default:
		c = n.kids.get(level)
	}
	if c == nil {
		return false
	}
	var ok bool
	if more {
		ok = ix.unsubscribeLocked(c, key, group, rest)
	} else {
		ok = c.remove(key, group)
	}
	if ok && c.empty() {
		switch {
		case c == n.plus:
			n.plus = nil
		case c == n.hash:
			n.hash = nil
		default:
			n.kids.del(level)
		}
		ix.nodes--
	}
	return ok
}

// Get returns a copy of key's subscription to filter in group ("" for a
// non-shared one).
func (ix *Index[K]) Get(key K, group, filter string) (Subscription, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	n := &ix.root
	for f := filter; n != nil; {
		level, rest, more := strings.Cut(f, "/")
		switch {
		case level == "+":
			n = n.plus
		case level == "#" && !more:
			n = n.hash
		default:
			n = n.kids.get(level)
		}
		if n == nil || !more {
			break
		}
		f = rest
	}
	if n == nil {
		return Subscription{}, false
	}
	items, pos := n.subs, (*map[K]int32)(nil)
	if n.ext != nil {
		pos = &n.ext.pos
	}
	if group != "" {
		g := n.group(group)
		if g == nil {
			return Subscription{}, false
		}
		items, pos = g.members, &g.pos
	}
	if i := find(items, pos, key); i >= 0 {
		return *items[i].Sub, true
	}
	return Subscription{}, false
}

// Count returns the number of stored subscriptions, shared ones included.
func (ix *Index[K]) Count() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.count
}

// nodeCount returns the number of trie nodes below the root.
func (ix *Index[K]) nodeCount() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.nodes
}

// Match appends, for a topic name, every matching non-shared subscription,
// plus exactly one member per matching shared group (per group+filter), and
// returns dst. The same key may appear several times (overlapping filters);
// the caller merges (overlapping subscriptions: MQTT 5.0 §3.3.4,
// 3.1.1 [MQTT-3.3.5-1]).
func (ix *Index[K]) Match(topic []byte, dst []Match[K]) []Match[K] {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	// [MQTT-4.7.2-1] wildcards at the first level do not match '$' topics.
	noWild := len(topic) > 0 && topic[0] == '$'
	pk := picking[K]{available: ix.available, mayRead: ix.mayRead, topic: topic}
	return ix.root.match(topic, noWild, dst, &pk)
}

// match matches t, the levels of the topic below n, against n's children.
func (n *node[K]) match(t []byte, noWild bool, dst []Match[K], pk *picking[K]) []Match[K] {
	level, rest, last := t, []byte(nil), true
	if i := bytes.IndexByte(t, '/'); i >= 0 {
		level, rest, last = t[:i], t[i+1:], false
	}
	if !noWild {
		if n.hash != nil {
			dst = n.hash.collect(dst, pk)
		}
		if n.plus != nil {
			dst = n.plus.matchNext(rest, last, dst, pk)
		}
	}
	if c := n.kids.getBytes(level); c != nil {
		dst = c.matchNext(rest, last, dst, pk)
	}
	return dst
}

// matchNext continues below n, which matched a topic level; last reports
// that it was the topic's last level.
func (n *node[K]) matchNext(rest []byte, last bool, dst []Match[K], pk *picking[K]) []Match[K] {
	if !last {
		return n.match(rest, false, dst, pk)
	}
	dst = n.collect(dst, pk)
	if n.hash != nil {
		// "a/#" matches "a" too (§4.7.1.2).
		dst = n.hash.collect(dst, pk)
	}
	return dst
}

// collect appends n's subscriptions and one member of each of its groups.
func (n *node[K]) collect(dst []Match[K], pk *picking[K]) []Match[K] {
	dst = append(dst, n.subs...)
	if n.ext != nil {
		for _, g := range n.ext.groups {
			dst = append(dst, g.pick(pk))
		}
	}
	return dst
}

func (n *node[K]) empty() bool {
	return len(n.subs) == 0 && n.ext == nil && n.plus == nil && n.hash == nil && n.kids.len() == 0
}

func (n *node[K]) group(name string) *group[K] {
	if n.ext == nil {
		return nil
	}
	for _, g := range n.ext.groups {
		if g.name == name {
			return g
		}
	}
	return nil
}

// put stores a non-shared subscription; existed reports a replacement.
func (n *node[K]) put(key K, sub *Subscription) (existed bool) {
	if len(n.subs) >= subsIndexMin && n.ext == nil {
		n.ext = new(nodeExt[K])
	}
	var pos *map[K]int32
	if n.ext != nil {
		pos = &n.ext.pos
	}
	return put(&n.subs, pos, key, sub)
}

// remove removes key's subscription in group ("" for non-shared).
func (n *node[K]) remove(key K, group string) (ok bool) {
	if group == "" {
		var pos *map[K]int32
		if n.ext != nil {
			pos = &n.ext.pos
		}
		ok = remove(&n.subs, pos, key)
	} else if n.ext != nil {
		groups := n.ext.groups
		for i, g := range groups {
			if g.name != group {
				continue
			}
			if ok = remove(&g.members, &g.pos, key); ok && len(g.members) == 0 {
				last := len(groups) - 1
				groups[i] = groups[last]
				groups[last] = nil
				n.ext.groups = groups[:last]
				if last == 0 {
					n.ext.groups = nil
				}
			}
			break
		}
	}
	if n.ext != nil && n.ext.pos == nil && n.ext.groups == nil {
		n.ext = nil
	}
	return ok
}

// pick selects one member (MQTT 5.0 §4.8.2): round-robin among the members
// that may read the topic and are available, else among those that may
// read it, else among all (see NewIndex). The first pass asks mayRead only
// of available members, the second stops at the first that may read, so
// a group of offline members costs cheap availability checks. Concurrent
// readers move the cursor atomically; two racing picks may choose the same
// member, which only bends the rotation.
func (g *group[K]) pick(pk *picking[K]) Match[K] {
	items := g.members
	n := uint32(len(items))
	u := g.next.Add(1) - 1
	start := u % n
	if pk.available == nil && pk.mayRead == nil {
		return items[start]
	}
	for pass := 0; pass < 2; pass++ {
		for i := uint32(0); i < n; i++ {
			j := start + i
			if j >= n {
				j -= n
			}
			k := items[j].Key
			if pass == 0 && pk.available != nil && !pk.available(k) {
				continue
			}
			if pk.mayRead != nil && !pk.mayRead(k, pk.topic) {
				continue
			}
			if i > 0 {
				// Resume after the chosen member, so skipped members do not
				// hand their turns to the next eligible one.
				g.next.CompareAndSwap(u+1, u+1+i)
			}
			return items[j]
		}
		if pk.available == nil {
			break // the first pass was the second one
		}
	}
	return items[start]
}

// subsIndexMin is the size above which a subscriber set keeps a position
// map, so subscribing and unsubscribing on a fan-out filter stays O(1).
const subsIndexMin = 32

// put stores sub for key in items, one entry per key, and keeps *pos (once
// items is large) pointing at each key's index. pos may be nil: no index is
// kept then. existed reports a replacement.
func put[K comparable](items *[]Match[K], pos *map[K]int32, key K, sub *Subscription) (existed bool) {
	if i := find(*items, pos, key); i >= 0 {
		(*items)[i].Sub = sub
		return true
	}
	*items = append(*items, Match[K]{Key: key, Sub: sub})
	switch {
	case pos == nil:
	case *pos != nil:
		(*pos)[key] = int32(len(*items) - 1)
	case len(*items) > subsIndexMin:
		m := make(map[K]int32, len(*items))
		for i, e := range *items {
			m[e.Key] = int32(i)
		}
		*pos = m
	}
	return false
}

func find[K comparable](items []Match[K], pos *map[K]int32, key K) int {
	if pos != nil && *pos != nil {
		if i, ok := (*pos)[key]; ok {
			return int(i)
		}
		return -1
	}
	for i := range items {
		if items[i].Key == key {
			return i
		}
	}
	return -1
}

// remove removes key from items, moving the last entry into the gap.
func remove[K comparable](items *[]Match[K], pos *map[K]int32, key K) bool {
	s := *items
	i := find(s, pos, key)
	if i < 0 {
		return false
	}
	last := len(s) - 1
	indexed := pos != nil && *pos != nil
	if i != last {
		s[i] = s[last]
		if indexed {
			(*pos)[s[i].Key] = int32(i)
		}
	}
	s[last] = Match[K]{}
	s = s[:last]
	if indexed {
		delete(*pos, key)
		if len(s) <= subsIndexMin/2 {
			*pos = nil
		}
	}
	switch {
	case last == 0:
		s = nil
	case last <= cap(s)/4 && cap(s) > 8:
		// Give back the memory of a fan-out that has emptied.
		s = append([]Match[K](nil), s...)
	}
	*items = s
	return true
}
