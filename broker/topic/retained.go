package topic

import (
	"strings"
	"sync"
)

// Retained is a topic-name trie of retained values, matched by filters.
// It is safe for concurrent use.
type Retained[V any] struct {
	mu    sync.RWMutex // mu guards root, n and nodes
	root  rnode[V]
	n     int // stored values
	nodes int // trie nodes below root, for tests of pruning
}

type rnode[V any] struct {
	kids  kids[rnode[V]]
	topic string // the full topic name, when has
	v     V
	has   bool
}

// retainedEntry is one retained value and its topic name.
type retainedEntry[V any] struct {
	topic string
	v     V
}

// NewRetained returns an empty store.
func NewRetained[V any]() *Retained[V] { return &Retained[V]{} }

// Set stores v for topic, replacing any value there.
func (r *Retained[V]) Set(topic string, v V) {
	topic = strings.Clone(topic)
	r.mu.Lock()
	defer r.mu.Unlock()
	n := &r.root
	for t := topic; ; {
		level, rest, more := strings.Cut(t, "/")
		c := n.kids.get(level)
		if c == nil {
			c = new(rnode[V])
			n.kids.add(level, c)
			r.nodes++
		}
		n = c
		if !more {
			break
		}
		t = rest
	}
	if !n.has {
		r.n++
	}
	n.topic, n.v, n.has = topic, v, true
}

// Delete removes topic's value and prunes the nodes left empty; it reports
// whether there was one.
func (r *Retained[V]) Delete(topic string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.deleteLocked(&r.root, topic) {
		return false
	}
	r.n--
	return true
}

func (r *Retained[V]) deleteLocked(n *rnode[V], t string) bool {
	level, rest, more := strings.Cut(t, "/")
	c := n.kids.get(level)
	if c == nil {
		return false
	}
	if more {
		if !r.deleteLocked(c, rest) {
			return false
		}
	} else {
		if !c.has {
			return false
		}
		var zero V
		c.topic, c.v, c.has = "", zero, false
	}
	if !c.has && c.kids.len() == 0 {
		n.kids.del(level)
		r.nodes--
	}
	return true
}

// Get returns topic's value.
func (r *Retained[V]) Get(topic string) (V, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n := &r.root
	for t := topic; ; {
		level, rest, more := strings.Cut(t, "/")
		if n = n.kids.get(level); n == nil {
			var zero V
			return zero, false
		}
		if !more {
			return n.v, n.has
		}
		t = rest
	}
}

// Len returns the number of stored values.
func (r *Retained[V]) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.n
}

// Match calls fn for every stored topic that filter matches, in no
// particular order, until fn returns false. The matches are collected under
// the read lock and fn runs after it is released, so fn may call Set or
// Delete.
func (r *Retained[V]) Match(filter string, fn func(topic string, v V) bool) {
	r.mu.RLock()
	var out []retainedEntry[V]
	r.root.match(filter, true, &out)
	r.mu.RUnlock()
	for _, e := range out {
		if !fn(e.topic, e.v) {
			return
		}
	}
}

// Range calls fn for every stored value, in no particular order, until fn
// returns false. Like Match, fn runs without the lock held.
func (r *Retained[V]) Range(fn func(topic string, v V) bool) {
	r.mu.RLock()
	out := make([]retainedEntry[V], 0, r.n)
	r.root.all(false, &out)
	r.mu.RUnlock()
	for _, e := range out {
		if !fn(e.topic, e.v) {
			return
		}
	}
}

// match collects the values below n that f, the rest of a filter, matches.
// root is true at the first level, where wildcards skip '$' topics
// [MQTT-4.7.2-1].
func (n *rnode[V]) match(f string, root bool, out *[]retainedEntry[V]) {
	level, rest, more := strings.Cut(f, "/")
	switch {
	case level == "#" && !more:
		// The parent and every descendant (§4.7.1.2).
		n.all(root, out)
	case level == "+":
		n.kids.each(func(name string, c *rnode[V]) {
			if root && dollar(name) {
				return
			}
			c.matchNext(rest, more, out)
		})
	default:
		if c := n.kids.get(level); c != nil {
			c.matchNext(rest, more, out)
		}
	}
}

func (n *rnode[V]) matchNext(rest string, more bool, out *[]retainedEntry[V]) {
	if more {
		n.match(rest, false, out)
	} else if n.has {
		*out = append(*out, retainedEntry[V]{n.topic, n.v})
	}
}

// all collects n's value and every value below it; root skips '$' children.
func (n *rnode[V]) all(root bool, out *[]retainedEntry[V]) {
	if n.has {
		*out = append(*out, retainedEntry[V]{n.topic, n.v})
	}
	n.kids.each(func(name string, c *rnode[V]) {
		if root && dollar(name) {
			return
		}
		c.all(false, out)
	})
}
