package broker

import (
	"bytes"
	"sync"
	"time"
	"unsafe"

	"github.com/fleetmq/fleetmq/broker/packets"
	"github.com/fleetmq/fleetmq/broker/session"
	"github.com/fleetmq/fleetmq/broker/topic"
)

// routed is one inbound application message on its way to subscribers. Its
// topic and payload may alias a read buffer: the message is copied into a
// session.Message only when something must keep it (QoS > 0, queueing,
// retain), so QoS 0 fan-out allocates nothing.
type routed struct {
	pub    packets.Publish // Props holds the forwarded properties only
	topic  []byte
	origin *clientState // nil for $SYS
	now    time.Time
	msg    *session.Message
	// persisted is set when routing wrote to the store (a delivery to a
	// durable session, a retained message): the PUBLISH is acknowledged
	// once that is durable.
	persisted bool
}

// message returns the kept copy, making it on first use.
func (r *routed) message() *session.Message {
	if r.msg == nil {
		r.msg = session.NewMessage(&r.pub, string(r.topic), r.originID(), r.now)
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

// handlePublish runs the inbound half of the QoS flows [MQTT-4.3].
func (c *client) handlePublish(flags byte, body []byte) error {
	s := c.srv
	p := &c.scratch.pub
	*p = packets.Publish{}
	if err := p.Decode(c.version, flags, body); err != nil {
		return &errProtocol{code: packets.Code(err), err: err}
	}
	s.stats.MessagesReceived[p.QoS].Add(1)

	topicName := p.Topic
	if p.Props.HasTopicAlias {
		a := p.Props.TopicAlias
		// [MQTT-3.3.2-8/9] alias 0 or above our maximum is a protocol error.
		if a == 0 || a > s.lim.TopicAliasMaximum {
			return protocolErr(packets.TopicAliasInvalid, "PUBLISH: topic alias %d outside 1..%d", a, s.lim.TopicAliasMaximum)
		}
		if len(topicName) > 0 {
			if c.aliasesIn == nil {
				c.aliasesIn = make(map[uint16]string)
			}
			if old, ok := c.aliasesIn[a]; !ok || old != string(topicName) {
				c.aliasesIn[a] = string(topicName)
			}
		} else {
			t, ok := c.aliasesIn[a]
			if !ok {
				return protocolErr(packets.ProtocolError, "PUBLISH: topic alias %d was never set", a)
			}
			topicName = bytesOf(t)
		}
	}

	if len(topicName) > s.lim.MaxTopicLength || levels(topicName) > s.lim.MaxTopicLevels {
		return c.refusePublish(p, packets.TopicNameInvalid, "topic exceeds the broker's length or level limit")
	}
	if len(topicName) > 0 && topicName[0] == '$' {
		// $-topics belong to the broker [MQTT-4.7.2-1].
		return c.refusePublish(p, packets.TopicNameInvalid, "clients cannot publish to $-topics")
	}
	if !c.st.getPrincipal().CanPublish(topicName) {
		s.stats.PublishDenied.Add(1)
		return c.refusePublish(p, packets.NotAuthorized, "not authorized to publish to this topic")
	}

	persisted := false
	if p.QoS == 2 {
		st := c.st
		st.mu.Lock()
		if _, dup := st.inboundQoS2[p.PacketID]; dup {
			// Already routed; the client missed our PUBREC [MQTT-4.3.3-10].
			durable := st.durable
			st.mu.Unlock()
			id := p.PacketID
			c.afterDurable(durable, func() { c.writeAck(packets.PUBREC, id, packets.Success, "") })
			return nil
		}
		if len(st.inboundQoS2) >= int(s.lim.MaxInflight) {
			st.mu.Unlock()
			// [MQTT-3.3.4-9] more unacknowledged QoS 2 PUBLISHes than our Receive Maximum.
			return protocolErr(packets.ReceiveMaximumExceeded, "PUBLISH: more than %d QoS 2 messages awaiting PUBREL", s.lim.MaxInflight)
		}
		if st.inboundQoS2 == nil {
			st.inboundQoS2 = make(map[uint16]struct{})
		}
		st.inboundQoS2[p.PacketID] = struct{}{}
		if st.durable {
			// A resend after a restart that finds this id is acknowledged
			// without routing, so the id must be durable exactly when what
			// routing writes (deliveries, retained message) is: a crash
			// between them would lose the message or deliver it twice.
			defer s.store.EndGroup(s.store.BeginGroup())
			s.store.SaveInboundQoS2(st.id, p.PacketID)
			persisted = true
		}
		st.mu.Unlock()
	}

	r := &c.scratch.rt
	*r = routed{topic: topicName, origin: c.st, now: time.Now()}
	r.pub = packets.Publish{QoS: p.QoS, Retain: p.Retain, Topic: topicName, Payload: p.Payload}
	r.pub.Props = p.Props
	r.pub.Props.TopicAlias, r.pub.Props.HasTopicAlias = 0, false
	r.pub.Props.SubscriptionIDs = nil
	n := s.route(r)
	r.msg = nil // the next PUBLISH must not see this one's copy
	persisted = persisted || r.persisted

	code := packets.Success
	if n == 0 && c.version == packets.V5 {
		code = packets.NoMatchingSubscribers
	}
	if p.QoS == 0 {
		return nil
	}
	t, id := packets.PUBACK, p.PacketID
	if p.QoS == 2 {
		t = packets.PUBREC
	}
	if s.store == nil {
		c.writeAck(t, id, code, "")
		return nil
	}
	// Acknowledged once stored for every durable session it goes to
	// (and retained), without holding up the next PUBLISH.
	c.afterDurable(persisted, func() { c.writeAck(t, id, code, "") })
	return nil
}

// refusePublish answers a PUBLISH the broker will not route. v5 learns why
// in the PUBACK/PUBREC; 3.1.1 has no way to be told, so its QoS 1/2 message
// is acknowledged as usual and dropped [MQTT-3.3.5-2].
func (c *client) refusePublish(p *packets.Publish, code packets.ReasonCode, reason string) error {
	c.srv.stats.MessagesDropped.Add(1)
	c.srv.log.Debug("PUBLISH refused", "client", c.id, "topic", string(p.Topic), "reason", reason)
	if c.version != packets.V5 {
		code, reason = packets.Success, ""
	}
	switch p.QoS {
	case 1:
		c.writeAck(packets.PUBACK, p.PacketID, code, reason)
	case 2:
		c.writeAck(packets.PUBREC, p.PacketID, code, reason)
	}
	return nil
}

// writeAck sends PUBACK, PUBREC, PUBREL or PUBCOMP. The reason string is
// left out when the client asked for no problem information or when it
// would make the packet larger than the client accepts [MQTT-3.1.2-29].
func (c *client) writeAck(t packets.Type, id uint16, code packets.ReasonCode, reason string) {
	a := packets.Ack{Type: t, PacketID: id, ReasonCode: code}
	if c.version == packets.V5 && c.problemInfo && reason != "" {
		a.Props.ReasonString = reason
		if c.maxPacketOut > 0 && uint32(a.Size(c.version)) > c.maxPacketOut {
			a.Props.ReasonString = ""
		}
	}
	c.writePacket(func(b []byte) []byte { return a.Append(b, c.version) })
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
// of a topic [MQTT-3.3.1-5..7].
func (s *Server) retain(r *routed) {
	if s.store != nil && r.origin != nil {
		// retainMu keeps the store's order of writes to a topic the
		// trie's; broker-originated ($SYS) messages are not stored.
		s.retainMu.Lock()
		defer s.retainMu.Unlock()
		r.persisted = true
		if len(r.pub.Payload) == 0 {
			if s.retained.Delete(string(r.topic)) {
				s.store.DeleteRetained(string(r.topic))
			}
			return
		}
		m := r.message()
		s.retained.Set(m.Topic, m)
		s.store.SetRetained(m)
		return
	}
	if len(r.pub.Payload) == 0 {
		s.retained.Delete(string(r.topic))
		return
	}
	s.retained.Set(string(r.topic), r.message())
}

// levels counts topic levels.
func levels(t []byte) int { return bytes.Count(t, []byte{'/'}) + 1 }

// bytesOf views a string's bytes without copying; the result must not be
// written to.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
