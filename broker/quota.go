package broker

import (
	"github.com/fleetmq/fleetmq/broker/outbox"
)

// Owners of retained messages that are no user. Usernames come from the
// auth bundle or are "" (MQTT strings cannot hold U+0000), so neither can
// collide with one.
const (
	// ownerBroker owns what the broker retains itself ($SYS): never
	// refused, counted in the totals.
	ownerBroker = "\x00broker"
	// ownerRestored owns retained messages loaded from the store, which
	// does not record their publisher: not held against any user's quota,
	// counted in the totals. A user replacing or deleting one frees it.
	ownerRestored = "\x00restored"
)

// retainedUsage is what a set of retained messages costs.
type retainedUsage struct {
	count int
	bytes int64
}

// retainedCharge is who pays for the retained message of a topic, and how
// much.
type retainedCharge struct {
	owner string
	bytes int64
}

// retainedLedger accounts retained messages per owner and in total, for
// the retained limits. Server.retainMu guards it, and every change to
// Server.retained is made under retainMu together with the ledger's.
type retainedLedger struct {
	topics map[string]retainedCharge
	owners map[string]retainedUsage
	total  retainedUsage
}

// retainedSize is what a retained message weighs against the limits: its
// topic, payload and properties.
func retainedSize(m *outbox.Message) int64 {
	n := len(m.Topic) + len(m.Payload) + len(m.Props.ContentType) +
		len(m.Props.ResponseTopic) + len(m.Props.CorrelationData)
	for _, u := range m.Props.User {
		n += len(u.Key) + len(u.Value)
	}
	return int64(n)
}

// charge makes owner pay bytes for topic's retained message, freeing what
// the message it replaces cost its owner. It reports false, and changes
// nothing, when that would take owner or the total past a limit; a change
// that does not grow a usage is always allowed (a replacement at the quota,
// or a usage already past a limit lowered since). exempt skips the checks.
func (l *retainedLedger) charge(lim *Limits, topic, owner string, bytes int64, exempt bool) bool {
	if l.topics == nil {
		l.topics = make(map[string]retainedCharge)
		l.owners = make(map[string]retainedUsage)
	}
	old, had := l.topics[topic]
	user, total := l.owners[owner], l.total
	nextUser, nextTotal := user, total
	if had {
		nextTotal.count--
		nextTotal.bytes -= old.bytes
		if old.owner == owner {
			nextUser.count--
			nextUser.bytes -= old.bytes
		}
	}
	nextUser.count++
	nextUser.bytes += bytes
	nextTotal.count++
	nextTotal.bytes += bytes
	if !exempt && owner != ownerRestored &&
		(exceeds(nextUser, user, lim.MaxRetainedPerUser, lim.MaxRetainedBytesPerUser) ||
			exceeds(nextTotal, total, lim.MaxRetainedMessages, lim.MaxRetainedBytes)) {
		return false
	}
	if had {
		l.release(old)
	}
	u := l.owners[owner]
	u.count++
	u.bytes += bytes
	l.owners[owner] = u
	l.total.count++
	l.total.bytes += bytes
	l.topics[topic] = retainedCharge{owner: owner, bytes: bytes}
	return true
}

// exceeds reports whether next grows a usage past a limit.
func exceeds(next, cur retainedUsage, maxCount int, maxBytes int64) bool {
	return (next.count > maxCount && next.count > cur.count) ||
		(next.bytes > maxBytes && next.bytes > cur.bytes)
}

// remove frees what topic's retained message cost.
func (l *retainedLedger) remove(topic string) {
	if c, ok := l.topics[topic]; ok {
		delete(l.topics, topic)
		l.release(c)
	}
}

func (l *retainedLedger) release(c retainedCharge) {
	u := l.owners[c.owner]
	u.count--
	u.bytes -= c.bytes
	if u.count == 0 {
		delete(l.owners, c.owner)
	} else {
		l.owners[c.owner] = u
	}
	l.total.count--
	l.total.bytes -= c.bytes
}

// retainOwner is who pays for a retained message routed from st: the
// username of the session's principal ("" for anonymous clients and open
// brokers), the user who gave a will restored from the store, or the
// broker for its own messages (exempt). Caller must not hold st.mu.
func retainOwner(st *clientState) (owner string, exempt bool) {
	if st == nil {
		return ownerBroker, true
	}
	box := st.principal.Load()
	if box == nil {
		return "", false
	}
	if box.restored {
		st.mu.Lock()
		w := st.restoredWill
		st.mu.Unlock()
		if w != nil {
			return w.Username, false
		}
	}
	return box.p.Username(), false
}

// dropExpiredRetained removes topic's retained message m, which expired,
// unless another has replaced it meanwhile.
func (s *Server) dropExpiredRetained(topic string, m *outbox.Message) {
	s.retainMu.Lock()
	defer s.retainMu.Unlock()
	if cur, ok := s.retained.Get(topic); ok && cur == m {
		s.retained.Delete(topic)
		s.retainedLedger.remove(topic)
	}
}

// restoreRetained keeps a retained message loaded from the store.
func (s *Server) restoreRetained(m *outbox.Message) {
	s.retainMu.Lock()
	defer s.retainMu.Unlock()
	s.retainedLedger.charge(&s.lim, m.Topic, ownerRestored, retainedSize(m), true)
	s.retained.Set(m.Topic, m)
}

// retainedBytes is what the retained messages weigh against the limits.
func (s *Server) retainedBytes() int64 {
	s.retainMu.Lock()
	defer s.retainMu.Unlock()
	return s.retainedLedger.total.bytes
}
