package topic

// kidsMapMin is the child count above which a node's children move from a
// slice to a map. Most trie nodes have one child; a slice of one 24-byte
// entry costs far less than a map, and a linear scan of a few entries is as
// fast as hashing.
const kidsMapMin = 16

type kid[N any] struct {
	name string
	n    *N
}

// kids is the set of literal-level children of a trie node, keyed by level.
type kids[N any] struct {
	list []kid[N]      // used while small
	m    map[string]*N // used instead of list above kidsMapMin entries
}

func (k *kids[N]) len() int {
	if k.m != nil {
		return len(k.m)
	}
	return len(k.list)
}

func (k *kids[N]) get(name string) *N {
	if k.m != nil {
		return k.m[name]
	}
	for i := range k.list {
		if k.list[i].name == name {
			return k.list[i].n
		}
	}
	return nil
}

// getBytes is get for a level still inside a topic buffer; neither the map
// lookup nor the comparison allocates.
func (k *kids[N]) getBytes(name []byte) *N {
	if k.m != nil {
		return k.m[string(name)]
	}
	for i := range k.list {
		if k.list[i].name == string(name) {
			return k.list[i].n
		}
	}
	return nil
}

// add inserts a child known to be absent.
func (k *kids[N]) add(name string, n *N) {
	if k.m != nil {
		k.m[name] = n
		return
	}
	k.list = append(k.list, kid[N]{name, n})
	if len(k.list) > kidsMapMin {
		k.m = make(map[string]*N, len(k.list))
		for _, e := range k.list {
			k.m[e.name] = e.n
		}
		k.list = nil
	}
}

func (k *kids[N]) del(name string) {
	if k.m != nil {
		delete(k.m, name)
		if len(k.m) <= kidsMapMin/2 {
			// Maps never shrink; go back to a slice to give the memory back.
			k.list = make([]kid[N], 0, len(k.m))
			for name, n := range k.m {
				k.list = append(k.list, kid[N]{name, n})
			}
			k.m = nil
		}
		return
	}
	for i := range k.list {
		if k.list[i].name == name {
			last := len(k.list) - 1
			k.list[i] = k.list[last]
			k.list[last] = kid[N]{}
			k.list = k.list[:last]
			if last == 0 {
				k.list = nil
			}
			return
		}
	}
}

// each calls fn for every child, in no particular order.
func (k *kids[N]) each(fn func(name string, n *N)) {
	if k.m != nil {
		for name, n := range k.m {
			fn(name, n)
		}
		return
	}
	for _, e := range k.list {
		fn(e.name, e.n)
	}
}
