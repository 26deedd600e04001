package broker

import (
	"time"

	"github.com/fleetmq/fleetmq/broker/outbox"
	"github.com/fleetmq/fleetmq/broker/packets"
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
	d := outbox.Delivery{Msg: r.message(), QoS: qos, Retain: retain}
	if len(subIDs) > 0 {
		d.SubIDs = append([]uint32(nil), subIDs...)
	}
	if st.journal.numbered(&d) {
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
func (st *clientState) enqueueLocked(d outbox.Delivery) bool {
	dropped, ok := st.queue.Push(d)
	if dropped != nil {
		st.srv.stats.MessagesDropped.Add(1)
		st.journal.forget(dropped.Seq)
	}
	if !ok {
		st.srv.stats.MessagesDropped.Add(1)
		st.srv.log.Debug("Session queue full; message dropped", "client", st.id, "topic", d.Msg.Topic)
		return false
	}
	st.journal.put(store.Delivery{Delivery: d})
	return true
}

// sendLocked writes a QoS 1/2 delivery with a fresh packet id and records
// it inflight. It returns false (nothing recorded) when the output is
// backed up, so the caller queues instead.
func (st *clientState) sendLocked(c *client, d outbox.Delivery, now int64) bool {
	if d.Msg.Expired(now) {
		st.srv.stats.MessagesDropped.Add(1)
		st.journal.forget(d.Seq)
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
	if c.life.phase != outOpen || c.pendingLocked() > st.srv.lim.MaxPendingBytes {
		c.outMu.Unlock()
		return false
	}
	if st.journal.durable() && d.Seq != 0 && (d.QoS == 2 || st.inflight.LastUnsent()) {
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
		st.journal.forget(d.Seq)
		return true
	}
	st.inflight.Add(id, d)
	st.journal.put(store.Delivery{Delivery: d, Inflight: true, State: outbox.AwaitAck, PacketID: id})
	return true
}

// sendHeldLocked holds a QoS 2 delivery of a durable session inflight
// under id and sends its PUBLISH once the store has id durably. Caller
// holds st.mu.
func (st *clientState) sendHeldLocked(id uint16, d outbox.Delivery) {
	st.inflight.Add(id, d)
	st.inflight.Find(id).Unsent = true
	s := st.srv
	st.journal.put(store.Delivery{Delivery: d, Inflight: true, State: outbox.AwaitAck, PacketID: id})
	s.store.Sync(func(err error) {
		if err != nil {
			// Durability is not assured; delivering at least once is
			// still better than holding the message forever.
			s.log.Error("Store write failed; sending the message anyway", "client", st.id, "err", err)
		}
		st.mu.Lock()
		defer st.mu.Unlock()
		o := st.inflight.Find(id)
		if o == nil || o.Seq != d.Seq || !o.Unsent {
			return
		}
		o.Unsent = false
		now := time.Now()
		if st.deniedLocked(d) {
			st.inflight.Remove(id)
			st.fillLocked(now)
			return
		}
		c := st.client
		if c == nil {
			return // resent with DUP when the client is back
		}
		out := deliveryOut(d, id, false)
		c.outMu.Lock()
		gone := c.life.phase != outOpen
		sent := !gone && c.encodePublishLocked(&out, now.UnixNano())
		c.outMu.Unlock()
		if !sent && !gone {
			// Too large for the client or expired: discarded as if sent.
			s.stats.MessagesDropped.Add(1)
			st.inflight.Remove(id)
			st.journal.forget(d.Seq)
			st.fillLocked(now)
		}
	})
}

// deniedLocked reports whether the session's principal may not read d's
// topic now: the rules may have changed since d was routed to it (a
// reload, or a restored session whose client is back), and a delivery is
// checked under the rules in force when it goes out. A denied delivery is
// counted and forgotten in the store; the caller removes it from the
// queue or the inflight window.
func (st *clientState) deniedLocked(d outbox.Delivery) bool {
	if st.getPrincipal().CanRead(bytesOf(d.Msg.Topic)) {
		return false
	}
	st.srv.stats.DeliveryDenied.Add(1)
	st.journal.forget(d.Seq)
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
			st.journal.forget(d.Seq)
			continue
		}
		if st.deniedLocked(d) {
			st.queue.Pop()
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
// [MQTT-4.4.0-1]. A PUBLISH the client may not read now is dropped
// instead; one past PUBREC was delivered already.
func (st *clientState) resendLocked(now time.Time) {
	c := st.client
	ns := now.UnixNano()
	var denied []uint16
	st.inflight.Range(func(o *outbox.Outflight) bool {
		if o.Unsent {
			return true // sent once the store has it (sendHeldLocked)
		}
		if o.State == outbox.AwaitAck && st.deniedLocked(o.Delivery) {
			denied = append(denied, o.ID)
			return true
		}
		if o.State == outbox.AwaitComp {
			// As in handleAck: the PUBREC that set AwaitComp may have come
			// on the last connection just now, its write not yet durable.
			id := o.ID
			c.afterDurable(st.journal.durable(), func() { c.writeAck(packets.PUBREL, id, packets.Success, "") })
			return true
		}
		out := deliveryOut(o.Delivery, o.ID, true)
		c.outMu.Lock()
		c.encodePublishLocked(&out, ns)
		c.outMu.Unlock()
		return true
	})
	for _, id := range denied {
		st.inflight.Remove(id)
	}
}

// deliveryOut is the PUBLISH of a kept delivery, sent under packet id id
// (0 for QoS 0), with DUP when it is a resend.
func deliveryOut(d outbox.Delivery, id uint16, dup bool) outgoing {
	return outgoing{topic: bytesOf(d.Msg.Topic), payload: d.Msg.Payload, props: &d.Msg.Props,
		expiresAt: d.Msg.ExpiresAt, qos: d.QoS, retain: d.Retain, dup: dup, id: id, subIDs: d.SubIDs}
}
