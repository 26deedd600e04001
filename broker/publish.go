package broker

import (
	"time"

	"github.com/fleetmq/fleetmq/broker/packets"
)

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

	now := time.Now()
	if u := c.usage; u != nil && u.rate.limited.Load() {
		if refused, err := c.overRate(p, now); refused {
			return err
		}
	}

	persisted := false
	if p.QoS == 2 {
		st := c.st
		st.mu.Lock()
		if _, dup := st.inboundQoS2[p.PacketID]; dup {
			// Already routed; the client missed our PUBREC [MQTT-4.3.3-10].
			durable := st.journal.durable()
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
		if g, wrote := st.journal.receivedQoS2(p.PacketID); wrote {
			defer s.store.EndGroup(g) // once routing has written too
			persisted = true
		}
		st.mu.Unlock()
	}

	r := &c.scratch.rt
	*r = routed{topic: topicName, origin: c.st, now: now}
	r.pub = packets.Publish{QoS: p.QoS, Retain: p.Retain, Topic: topicName, Payload: p.Payload}
	r.pub.Props = p.Props
	r.pub.Props.TopicAlias, r.pub.Props.HasTopicAlias = 0, false
	r.pub.Props.SubscriptionIDs = nil
	if p.Retain && !s.retain(r) {
		// Over a retained quota: not retained, and not routed either, so a
		// v5 publisher that learns of the refusal knows nobody got it.
		r.msg = nil
		return c.refuseOverQuota(p, persisted)
	}
	n := s.route(r)
	r.msg = nil // the next PUBLISH must not see this one's copy
	persisted = persisted || r.persisted

	code := packets.Success
	// In a cluster the other nodes' sessions are unknown here: a message
	// no local session took may still reach some.
	if n == 0 && c.version == packets.V5 && s.cluster == nil {
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

// refuseOverQuota answers a retained PUBLISH over a retained limit, after
// its QoS 2 packet id was recorded (persisted: in the store). v5 ends the
// QoS 2 exchange with the error PUBREC, so the id is released here; a
// 3.1.1 client is acknowledged as usual and releases it with PUBREL.
func (c *client) refuseOverQuota(p *packets.Publish, persisted bool) error {
	if p.QoS == 2 && c.version == packets.V5 {
		st := c.st
		st.mu.Lock()
		delete(st.inboundQoS2, p.PacketID)
		st.journal.releasedQoS2(p.PacketID)
		st.mu.Unlock()
	}
	return c.refusePublishAfter(p, persisted, packets.QuotaExceeded, "retained message quota exceeded")
}

// refusePublish answers a PUBLISH the broker will not route. v5 learns why
// in the PUBACK/PUBREC; 3.1.1 has no way to be told, so its QoS 1/2 message
// is acknowledged as usual and dropped [MQTT-3.3.5-2].
func (c *client) refusePublish(p *packets.Publish, code packets.ReasonCode, reason string) error {
	return c.refusePublishAfter(p, false, code, reason)
}

// refusePublishAfter is refusePublish for a PUBLISH that wrote to the
// store (persisted): the answer waits for that, and for earlier replies.
func (c *client) refusePublishAfter(p *packets.Publish, persisted bool, code packets.ReasonCode, reason string) error {
	c.srv.stats.MessagesDropped.Add(1)
	c.srv.log.Debug("PUBLISH refused", "client", c.id, "topic", string(p.Topic), "reason", reason)
	if c.version != packets.V5 {
		code, reason = packets.Success, ""
	}
	t, id := packets.PUBACK, p.PacketID
	switch p.QoS {
	case 0:
		return nil
	case 2:
		t = packets.PUBREC
	}
	c.afterDurable(persisted, func() { c.writeAck(t, id, code, reason) })
	return nil
}
