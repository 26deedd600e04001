package authz

// flags says which rules end at a trie node: one bit per action × effect.
type flags uint8

const (
	pubAllow flags = 1 << iota
	pubDeny
	subAllow
	subDeny
)

// ruleFlags turns a rule's actions and effect into flags.
func ruleFlags(r *Rule) flags {
	var f flags
	for _, a := range r.Actions {
		switch {
		case a == ActionPublish && r.Effect == EffectAllow:
			f |= pubAllow
		case a == ActionPublish && r.Effect == EffectDeny:
			f |= pubDeny
		case a == ActionSubscribe && r.Effect == EffectAllow:
			f |= subAllow
		case a == ActionSubscribe && r.Effect == EffectDeny:
			f |= subDeny
		}
	}
	return f
}

// node is one level of a pattern trie. A trie is never modified after
// Compile, so any number of goroutines walk it without locks.
type node struct {
	kids  []kid            // literal levels while there are few of them
	lits  map[string]*node // literal levels once there are many (kids is nil)
	plus  *node            // '+'
	tmpls []tmplChild      // levels containing %u or %c
	end   flags            // patterns that end here
	hash  flags            // patterns that end with '#' right below here
}

// maxKids is how many literal children a node keeps in a slice before
// switching to a map: a short scan beats hashing and most nodes have one
// child.
const maxKids = 8

type kid struct {
	level string
	next  *node
}

// lit returns the literal child for level, or nil.
func (n *node) lit(level string) *node {
	if n.lits != nil {
		return n.lits[level]
	}
	for i := range n.kids {
		if n.kids[i].level == level {
			return n.kids[i].next
		}
	}
	return nil
}

type tmplChild struct {
	t    *template
	next *node
}

// insert adds pattern (already validated) with flags f. templates interns
// parsed templates across the whole compile.
func (n *node) insert(pattern string, f flags, templates map[string]*template) {
	rest := pattern
	for {
		lvl, next, more := cut(rest)
		if lvl == "#" {
			n.hash |= f
			return
		}
		n = n.child(lvl, templates)
		if !more {
			n.end |= f
			return
		}
		rest = next
	}
}

// child returns the child for pattern level lvl, creating it.
func (n *node) child(lvl string, templates map[string]*template) *node {
	switch {
	case lvl == "+":
		if n.plus == nil {
			n.plus = &node{}
		}
		return n.plus
	case isTemplate(lvl):
		for _, c := range n.tmpls {
			if c.t.raw == lvl {
				return c.next
			}
		}
		t := templates[lvl]
		if t == nil {
			t = parseTemplate(lvl)
			templates[lvl] = t
		}
		c := tmplChild{t: t, next: &node{}}
		n.tmpls = append(n.tmpls, c)
		return c.next
	default:
		if c := n.lit(lvl); c != nil {
			return c
		}
		c := &node{}
		switch {
		case n.lits != nil:
			n.lits[lvl] = c
		case len(n.kids) < maxKids:
			n.kids = append(n.kids, kid{lvl, c})
		default:
			n.lits = make(map[string]*node, 2*maxKids)
			for _, k := range n.kids {
				n.lits[k.level] = k.next
			}
			n.lits[lvl] = c
			n.kids = nil
		}
		return c
	}
}

// walk ORs into *acc the flags of every pattern below n that covers the
// rest of a topic filter (for a topic name, covering is matching). first is
// true at the root, where a level starting with '$' is reachable only
// through literal levels. more is false when the filter is exhausted. The
// walk stops early once *acc holds a bit of stop (a deny).
func (n *node) walk(rest string, more, first bool, id *Identity, acc *flags, stop flags) {
	if !more {
		*acc |= n.end | n.hash
		return
	}
	lvl, next, nextMore := cut(rest)
	dollar := first && lvl != "" && lvl[0] == '$'
	if !dollar {
		// "x/#" covers "x" and everything under it.
		*acc |= n.hash
	}
	if *acc&stop != 0 {
		return
	}
	switch lvl {
	case "#":
		// Only a '#' pattern at this point covers a '#' filter.
		return
	case "+":
		// Only '+' (or '#', done above) covers '+'.
		if n.plus != nil {
			n.plus.walk(next, nextMore, false, id, acc, stop)
		}
		return
	}
	if c := n.lit(lvl); c != nil {
		c.walk(next, nextMore, false, id, acc, stop)
	}
	if dollar {
		return
	}
	if n.plus != nil && *acc&stop == 0 {
		n.plus.walk(next, nextMore, false, id, acc, stop)
	}
	for i := range n.tmpls {
		if *acc&stop != 0 {
			return
		}
		c := &n.tmpls[i]
		if c.t.match(lvl, id) {
			c.next.walk(next, nextMore, false, id, acc, stop)
		}
	}
}
