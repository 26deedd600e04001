package broker

import (
	"time"

	"github.com/fleetmq/fleetmq/broker/packets"
	"github.com/fleetmq/fleetmq/broker/session"
	"github.com/fleetmq/fleetmq/broker/store"
)

// deliver hands one message to this session: written at once when the
// client is online and has room, queued otherwise (QoS 1/2 only: QoS 0 is
// not kept for offline sessions). It reports whether the message was
// accepted for delivery.
func (st *clientState) deliver(r *routed, qos byte, retain bool, subIDs []uint32) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ended {
		return false
	}
	c := st.client
	if qos == 0 {
		if c == nil {
			return false
		}
		out := outgoing{
			topic: r.topic, payload: r.pub.Payload, props: &r.pub.Props,
			expiresAt: r.expiresAt(), retain: retain, subIDs: subIDs,
		}
		return c.sendPublish(&out, r.now.UnixNano(), true)
	}
	d := session.Delivery{Msg: r.message(), QoS: qos, Retain: retain}
	if len(subIDs) > 0 {
		d.SubIDs = append([]uint32(nil), subIDs...)
	}
	if st.durable {
		st.seq++
		d.Seq = st.seq
		r.persisted = true
	}
	if c != nil && st.queue.Len() == 0 && st.inflight.Len() < int(c.receiveMax) {
		if st.sendLocked(c, d, r.now.UnixNano()) {
			return true
		}
	}
	return st.enqueueLocked(d)
}

// enqueueLocked queues d, counting what the bound drops.
func (st *clientState) enqueueLocked(d session.Delivery) bool {
	dropped, ok := st.queue.Push(d)
	if dropped != nil {
		st.srv.stats.MessagesDropped.Add(1)
		st.forgetLocked(dropped.Seq)
	}
	if !ok {
		st.srv.stats.MessagesDropped.Add(1)
		st.srv.log.Debug("Session queue full; message dropped", "client", st.id, "topic", d.Msg.Topic)
		return false
	}
	st.putLocked(store.Delivery{Delivery: d})
	return true
}

// sendLocked writes a QoS 1/2 delivery with a fresh packet id and records
// it inflight. It returns false (nothing recorded) when the output is
// backed up, so the caller queues instead.
func (st *clientState) sendLocked(c *client, d session.Delivery, now int64) bool {
	if d.Msg.Expired(now) {
		st.srv.stats.MessagesDropped.Add(1)
		st.forgetLocked(d.Seq)
		return true // expired messages are never delivered [MQTT-3.3.2-5]
	}
	id, ok := st.inflight.NextID()
	if !ok {
		return false
	}
	out := deliveryOut(d, id, false)
	c.outMu.Lock()
	// A connection already closing (its session not yet detached) cannot
	// take it either: queue it for the next connection rather than let
	// encodePublishLocked's false read as "too large" and drop it.
	if c.closed || c.closing || c.pendingLocked() > st.srv.lim.MaxPendingBytes {
		c.outMu.Unlock()
		return false
	}
	if st.durable && d.Seq != 0 && (d.QoS == 2 || st.inflight.LastUnsent()) {
		// Held until the store has its id; later ones wait behind it so
		// the client sees them in order.
		c.outMu.Unlock()
		st.sendHeldLocked(id, d)
		return true
	}
	sent := c.encodePublishLocked(&out, now)
	c.outMu.Unlock()
	if !sent {
		// Larger than the client accepts [MQTT-3.1.2-25]: discarded as if sent.
		st.srv.stats.MessagesDropped.Add(1)
		st.forgetLocked(d.Seq)
		return true
	}
	st.inflight.Add(id, d)
	st.putLocked(store.Delivery{Delivery: d, Inflight: true, State: session.AwaitAck, PacketID: id})
	return true
}

// fillLocked moves queued deliveries into the inflight window while the
// client has room [MQTT-4.9.0-2: never more than its Receive Maximum].
func (st *clientState) fillLocked(now time.Time) {
	c := st.client
	if c == nil {
		return
	}
	ns := now.UnixNano()
	for st.queue.Len() > 0 {
		d, _ := st.queue.Peek()
		if d.Msg.Expired(ns) {
			st.queue.Pop()
			st.srv.stats.MessagesDropped.Add(1)
			st.forgetLocked(d.Seq)
			continue
		}
		if d.QoS == 0 {
			st.queue.Pop()
			out := deliveryOut(d, 0, false)
			c.sendPublish(&out, ns, false)
			continue
		}
		if st.inflight.Len() >= int(c.receiveMax) {
			return
		}
		if !st.sendLocked(c, d, ns) {
			return
		}
		st.queue.Pop()
	}
}

// resendLocked re-sends the inflight window after a session resumes:
// PUBLISH with DUP for unacknowledged ones, PUBREL for those past PUBREC
// [MQTT-4.4.0-1].
func (st *clientState) resendLocked(now time.Time) {
	c := st.client
	ns := now.UnixNano()
	st.inflight.Range(func(o *session.Outflight) bool {
		if o.Unsent {
			return true // sent once the store has it (sendHeldLocked)
		}
		if o.State == session.AwaitComp {
			// As in handleAck: the PUBREC that set AwaitComp may have come
			// on the last connection just now, its write not yet durable.
			id := o.ID
			c.afterDurable(st.durable, func() { c.writeAck(packets.PUBREL, id, packets.Success, "") })
			return true
		}
		out := deliveryOut(o.Delivery, o.ID, true)
		c.outMu.Lock()
		c.encodePublishLocked(&out, ns)
		c.outMu.Unlock()
		return true
	})
}

// deliveryOut is the PUBLISH of a kept delivery, sent under packet id id
// (0 for QoS 0), with DUP when it is a resend.
func deliveryOut(d session.Delivery, id uint16, dup bool) outgoing {
	return outgoing{topic: bytesOf(d.Msg.Topic), payload: d.Msg.Payload, props: &d.Msg.Props,
		expiresAt: d.Msg.ExpiresAt, qos: d.QoS, retain: d.Retain, dup: dup, id: id, subIDs: d.SubIDs}
}

// outgoing is one PUBLISH to encode for one client.
type outgoing struct {
	topic, payload []byte
	props          *packets.Properties
	expiresAt      int64
	qos            byte
	retain, dup    bool
	id             uint16
	subIDs         []uint32
}

// sendPublish writes a QoS 0 PUBLISH unless the client is too far behind,
// in which case it is dropped and counted (QoS 0 goes first). force skips
// the backlog check.
func (c *client) sendPublish(o *outgoing, now int64, checkBacklog bool) bool {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	if c.closed || c.closing {
		return false
	}
	if checkBacklog && c.pendingLocked() > c.srv.lim.MaxPendingBytes {
		c.srv.stats.MessagesDropped.Add(1)
		return false
	}
	if !c.encodePublishLocked(o, now) {
		c.srv.stats.MessagesDropped.Add(1)
		return false
	}
	return true
}

// encodePublishLocked appends the PUBLISH for o to the output: remaining
// expiry, subscription identifiers and an outbound topic alias are set per
// delivery; it reports false when the packet exceeds the client's Maximum
// Packet Size or the message expired. Caller holds c.outMu.
func (c *client) encodePublishLocked(o *outgoing, now int64) bool {
	if c.closed || c.closing {
		return false
	}
	p := packets.Publish{QoS: o.qos, Retain: o.retain, Dup: o.dup, PacketID: o.id, Topic: o.topic, Payload: o.payload}
	if c.version == packets.V5 {
		p.Props = *o.props
		p.Props.TopicAlias, p.Props.HasTopicAlias = 0, false
		p.Props.MessageExpiry, p.Props.HasMessageExpiry = 0, false
		if o.expiresAt != 0 {
			left := (o.expiresAt - now + int64(time.Second) - 1) / int64(time.Second)
			if left <= 0 {
				return false
			}
			p.Props.MessageExpiry, p.Props.HasMessageExpiry = uint32(left), true
		}
		p.Props.SubscriptionIDs = o.subIDs
	}
	var newAlias bool
	if c.aliasMaxOut > 0 {
		if a, ok := c.aliasesOut[string(o.topic)]; ok {
			p.Props.TopicAlias, p.Props.HasTopicAlias = a, true
			p.Topic = nil
		} else if len(c.aliasesOut) < int(c.aliasMaxOut) {
			p.Props.TopicAlias, p.Props.HasTopicAlias = uint16(len(c.aliasesOut)+1), true
			newAlias = true
		}
	}
	size := p.Size(c.version)
	if c.maxPacketOut > 0 && uint32(size) > c.maxPacketOut {
		return false
	}
	if newAlias {
		if c.aliasesOut == nil {
			c.aliasesOut = make(map[string]uint16)
		}
		c.aliasesOut[string(o.topic)] = p.Props.TopicAlias
	}
	if c.out == nil {
		c.out = getBuffer()
	}
	c.out.b = p.Append(c.out.b, c.version)
	c.srv.stats.MessagesSent[o.qos].Add(1)
	c.startFlushLocked()
	return true
}

// handleAck runs the outbound QoS 1/2 handshakes and the inbound PUBREL.
func (c *client) handleAck(t packets.Type, flags byte, body []byte) error {
	var a packets.Ack
	if err := a.Decode(c.version, t, flags, body); err != nil {
		return &errProtocol{code: packets.Code(err), err: err}
	}
	st := c.st
	now := time.Now()
	st.mu.Lock()
	defer st.mu.Unlock()
	switch t {
	case packets.PUBACK:
		if o := st.inflight.Find(a.PacketID); o != nil && o.QoS == 1 {
			st.forgetLocked(o.Seq) // before Remove: o points into the window
			st.inflight.Remove(a.PacketID)
			st.fillLocked(now)
		}
		// An unknown id is ignored: it may be a late ack of a delivery the
		// session already dropped.
	case packets.PUBREC:
		o := st.inflight.Find(a.PacketID)
		switch {
		case o == nil || o.QoS != 2:
			c.writeAck(packets.PUBREL, a.PacketID, packets.PacketIdentifierNotFound, "")
		case a.ReasonCode.IsError():
			// The receiver refused it; the exchange ends here [MQTT-4.3.3].
			st.forgetLocked(o.Seq)
			st.inflight.Remove(a.PacketID)
			st.fillLocked(now)
		default:
			if o.State != session.AwaitComp {
				o.State = session.AwaitComp
				st.putLocked(store.Delivery{Delivery: o.Delivery, Inflight: true, State: session.AwaitComp, PacketID: o.ID})
			}
			// Once PUBREL is out the receiver forgets the id: a restart
			// must not find the delivery still awaiting PUBREC and resend it.
			id := a.PacketID
			c.afterDurable(st.durable, func() { c.writeAck(packets.PUBREL, id, packets.Success, "") })
		}
	case packets.PUBCOMP:
		if o := st.inflight.Find(a.PacketID); o != nil && o.QoS == 2 {
			st.forgetLocked(o.Seq)
			st.inflight.Remove(a.PacketID)
			st.fillLocked(now)
		}
	case packets.PUBREL:
		code := packets.Success
		if _, ok := st.inboundQoS2[a.PacketID]; ok {
			delete(st.inboundQoS2, a.PacketID)
		} else {
			code = packets.PacketIdentifierNotFound
		}
		if st.durable {
			st.srv.store.ReleaseInboundQoS2(st.id, a.PacketID)
		}
		// PUBCOMP frees the id for the client: the release must be durable
		// first, or a restart would take the id's next message for a resend.
		c.afterDurable(st.durable, func() { c.writeAck(packets.PUBCOMP, a.PacketID, code, "") })
	}
	return nil
}
