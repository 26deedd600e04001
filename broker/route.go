package broker

import (
	"bytes"
	"sync"
	"time"
	"unsafe"

	"github.com/fleetmq/fleetmq/broker/outbox"
	"github.com/fleetmq/fleetmq/broker/packets"
	"github.com/fleetmq/fleetmq/broker/topic"
)

// routed is one inbound application message on its way to subscribers. Its
// topic and payload may alias a read buffer: the message is copied into a
// outbox.Message only when something must keep it (QoS > 0, queueing,
// retain), so QoS 0 fan-out allocates nothing.
type routed struct {
	pub    packets.Publish // Props holds the forwarded properties only
	topic  []byte
	origin *clientState // nil for $SYS
	now    time.Time
	msg    *outbox.Message
	// persisted is set when routing wrote to the store (a delivery to a
	// durable session, a retained message): the PUBLISH is acknowledged
	// once that is durable.
	persisted bool
	// retainDone is set once retain ran: handlePublish retains before
	// routing, to refuse a message over the retained quota.
	retainDone bool
	// remote is set for a message another cluster node published: it is
	// routed to local sessions only (clustering.go).
	remote bool
}

// message returns the kept copy, making it on first use.
func (r *routed) message() *outbox.Message {
	if r.msg == nil {
		r.msg = outbox.NewMessage(&r.pub, string(r.topic), r.originID(), r.now)
		// NewMessage read the expiry from the props; deliveries recompute it.
	}
	return r.msg
}

func (r *routed) originID() string {
	if r.origin == nil {
		return ""
	}
	return r.origin.id
}

func (r *routed) expiresAt() int64 {
	if r.msg != nil {
		return r.msg.ExpiresAt
	}
	if r.pub.Props.HasMessageExpiry {
		return r.now.Add(time.Duration(r.pub.Props.MessageExpiry) * time.Second).UnixNano()
	}
	return 0
}

// target is one session a message goes to, merged over all of its
// matching subscriptions.
type target struct {
	st     *clientState
	qos    byte
	retain bool
	subIDs []uint32
}

var matchPool = sync.Pool{New: func() any {
	return &matchScratch{matches: make([]topic.Match[*clientState], 0, 64), targets: make([]target, 0, 64)}
}}

type matchScratch struct {
	matches []topic.Match[*clientState]
	targets []target
	ids     []uint32
	seen    map[*clientState]int
}

// route delivers r to every matching session, and stores it when it is
// retained. It returns the number of sessions it went to.
func (s *Server) route(r *routed) int {
	if r.pub.Retain {
		s.retain(r)
	}
	sc := matchPool.Get().(*matchScratch)
	sc.matches = s.index.Match(r.topic, sc.matches[:0])
	targets := s.merge(sc, r)
	n := 0
	for i := range targets {
		t := &targets[i]
		if !t.st.getPrincipal().CanRead(r.topic) {
			// A deny on a sub-tree holds under a wide subscription.
			s.stats.DeliveryDenied.Add(1)
			continue
		}
		if t.st.deliver(r, t.qos, t.retain, t.subIDs) {
			n++
		}
	}
	clear(sc.matches)
	clear(targets)
	sc.targets = targets[:0]
	sc.ids = sc.ids[:0]
	matchPool.Put(sc)
	s.forward(r)
	return n
}

// merge folds overlapping subscriptions of one session into one delivery
// at the highest granted QoS, with every subscription identifier
// [MQTT-3.3.4-2..5]. No-local subscriptions skip the publisher's own
// session [MQTT-3.8.3-3].
func (s *Server) merge(sc *matchScratch, r *routed) []target {
	ts := sc.targets[:0]
	useMap := len(sc.matches) > 16
	if useMap {
		if sc.seen == nil {
			sc.seen = make(map[*clientState]int)
		}
		clear(sc.seen)
	}
	for _, m := range sc.matches {
		sub := m.Sub
		if sub.NoLocal && m.Key == r.origin {
			continue
		}
		qos := min(sub.QoS, r.pub.QoS)
		retain := sub.RetainAsPublished && r.pub.Retain
		idx := -1
		if useMap {
			if i, ok := sc.seen[m.Key]; ok {
				idx = i
			}
		} else {
			for i := range ts {
				if ts[i].st == m.Key {
					idx = i
					break
				}
			}
		}
		if idx < 0 {
			ts = append(ts, target{st: m.Key, qos: qos, retain: retain})
			idx = len(ts) - 1
			if useMap {
				sc.seen[m.Key] = idx
			}
		} else {
			t := &ts[idx]
			t.qos = max(t.qos, qos)
			t.retain = t.retain || retain
		}
		if sub.ID != 0 {
			// Identifiers share one scratch slice; each target's slice is a
			// window into it, so no allocation per message.
			sc.ids = append(sc.ids, sub.ID)
			t := &ts[idx]
			if t.subIDs == nil {
				t.subIDs = sc.ids[len(sc.ids)-1 : len(sc.ids) : len(sc.ids)]
			} else {
				t.subIDs = append(t.subIDs, sub.ID)
			}
		}
	}
	sc.targets = ts
	return ts
}

// retain stores, replaces or (empty payload) deletes the retained message
// of a topic [MQTT-3.3.1-5..7], once per message. It reports false, and
// keeps nothing, when the message would take its publisher or the broker
// past a retained limit (quota.go); deleting always works.
func (s *Server) retain(r *routed) bool {
	if r.retainDone {
		return true
	}
	r.retainDone = true
	owner, exempt := retainOwner(r.origin)
	// retainMu keeps the ledger in step with the trie, and the store's
	// order of writes to a topic the trie's; broker-originated ($SYS)
	// messages are not stored.
	s.retainMu.Lock()
	defer s.retainMu.Unlock()
	durable := s.store != nil && (r.origin != nil || r.remote)
	if len(r.pub.Payload) == 0 {
		if durable {
			r.persisted = true
		}
		if s.retained.Delete(string(r.topic)) {
			s.retainedLedger.remove(string(r.topic))
			if durable {
				s.store.DeleteRetained(string(r.topic))
			}
		}
		return true
	}
	m := r.message()
	if !s.retainedLedger.charge(&s.lim, m.Topic, owner, retainedSize(m), exempt) {
		s.stats.RetainedQuotaExceeded.Add(1)
		s.log.Debug("Retained message refused: quota exceeded", "client", r.originID(), "user", owner, "topic", m.Topic)
		return false
	}
	s.retained.Set(m.Topic, m)
	if durable {
		r.persisted = true
		s.store.SetRetained(m)
	}
	return true
}

// publishMessage routes a message the broker itself originates (wills,
// $SYS) through the same path as a client's.
func (s *Server) publishMessage(origin *clientState, m *outbox.Message, now time.Time) int {
	r := routedOf(m, origin, now)
	return s.route(&r)
}

// routedOf routes a message the broker already keeps.
func routedOf(m *outbox.Message, origin *clientState, now time.Time) routed {
	return routed{
		pub:    packets.Publish{QoS: m.QoS, Retain: m.Retain, Topic: bytesOf(m.Topic), Payload: m.Payload, Props: m.Props},
		topic:  bytesOf(m.Topic),
		origin: origin,
		now:    now,
		msg:    m,
	}
}

// levels counts topic levels.
func levels(t []byte) int { return bytes.Count(t, []byte{'/'}) + 1 }

// bytesOf views a string's bytes without copying; the result must not be
// written to.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
