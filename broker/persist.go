package broker

import (
	"fmt"
	"time"

	"github.com/fleetmq/fleetmq/broker/packets"
	"github.com/fleetmq/fleetmq/broker/session"
	"github.com/fleetmq/fleetmq/broker/store"
)

// Durability (Options.Store). A session with a non-zero expiry interval is
// durable: its record, subscriptions, deliveries (queued and inflight, in
// Seq order) and inbound QoS 2 ids are written to the store as they change,
// under the session's lock, so the store sees each session's changes in the
// order they happened. Writes are asynchronous; what a client is promised
// waits for them:
//
//   - PUBACK/PUBREC of a PUBLISH that wrote anything (a delivery to a durable
//     session, a retained message, the inbound QoS 2 id), PUBCOMP, SUBACK and
//     UNSUBACK of a durable session are written from the store's commit
//     callback (client.afterDurable), in order per connection.
//   - A QoS 2 PUBLISH to a durable session goes out only once its packet id
//     is durable (session.Outflight.Unsent), so a restart resends it under
//     the same id and the receiver never sees it twice.
//   - An inbound QoS 2 id is committed in one group with what routing its
//     PUBLISH wrote (Store.BeginGroup), so a resend after a restart is routed
//     again exactly when the first routing was lost.
//
// QoS 0 is never stored; sessions with expiry 0 never touch the store.

// restoredPrincipal is the principal of a session loaded from the store
// until its client connects again: messages its subscriptions match are
// kept for it, and when the client returns, its real principal re-checks
// the subscriptions and everything kept (recheckLocked).
type restoredPrincipal struct{}

func (restoredPrincipal) CanPublish([]byte) bool   { return false }
func (restoredPrincipal) CanSubscribe(string) bool { return false }
func (restoredPrincipal) CanRead([]byte) bool      { return true }

// restore rebuilds sessions and retained messages from the store. Expiry
// timers of sessions run from the stored disconnect time, or from now for
// a session whose client was connected when the broker stopped.
func (s *Server) restore() error {
	snap, err := s.store.Load()
	if err != nil {
		return fmt.Errorf("load store: %w", err)
	}
	now := time.Now()
	for _, rs := range snap.Sessions {
		expiry := min(rs.Expiry, s.lim.MaxSessionExpiry)
		left := time.Duration(expiry) * time.Second
		if rs.DisconnectedAt != 0 {
			left -= now.Sub(time.Unix(0, rs.DisconnectedAt))
		}
		if expiry == 0 || left <= 0 {
			s.store.DeleteSession(rs.ClientID)
			continue
		}
		st := newClientState(s, rs.ClientID)
		st.principal.Store(&principalBox{restoredPrincipal{}})
		st.expiry, st.expiryAtConnect = expiry, expiry
		st.restored = true
		st.mu.Lock()
		for _, sub := range rs.Subscriptions {
			st.subscribeLocked(sub.Key, sub.Sub) // not durable yet: no write back
		}
		for _, d := range rs.Deliveries {
			st.seq = max(st.seq, d.Seq)
			if d.Inflight {
				if st.inflight.Find(d.PacketID) != nil {
					s.store.DeleteDelivery(st.id, d.Seq)
					continue
				}
				st.inflight.Add(d.PacketID, d.Delivery)
				st.inflight.Find(d.PacketID).State = d.State
				continue
			}
			if _, ok := st.queue.Push(d.Delivery); !ok {
				// The limit was lowered since: the bound holds here too.
				s.stats.MessagesDropped.Add(1)
				s.store.DeleteDelivery(st.id, d.Seq)
			}
		}
		if len(rs.InboundQoS2) > 0 {
			st.inboundQoS2 = make(map[uint16]struct{}, len(rs.InboundQoS2))
			for _, id := range rs.InboundQoS2 {
				st.inboundQoS2[id] = struct{}{}
			}
		}
		st.durable = true
		if rs.DisconnectedAt == 0 {
			s.store.SaveSession(st.id, expiry, now.UnixNano())
		}
		if w := rs.Will; w != nil {
			// Its connection closed when the broker stopped (or earlier,
			// with the delay running since).
			left := time.Duration(w.Delay) * time.Second
			if rs.DisconnectedAt != 0 {
				left -= now.Sub(time.Unix(0, rs.DisconnectedAt))
			}
			st.willStored, st.restoredWill = true, w
			st.will = &pendingWill{msg: w.Msg, left: max(left, 0)}
			s.restoredWills = append(s.restoredWills, st)
		}
		st.expiryTimer = time.AfterFunc(left, func() { s.expire(st) })
		st.mu.Unlock()
		s.sessions[st.id] = st
	}
	for _, m := range snap.Retained {
		s.retained.Set(m.Topic, m)
	}
	if len(snap.Sessions) > 0 || len(snap.Retained) > 0 {
		s.log.Info("Restored from the store", "sessions", len(s.sessions), "retained", len(snap.Retained))
	}
	return nil
}

// persistAttachLocked runs when a connection attaches to st with principal
// p (st.expiry set from its CONNECT): a restored session is re-checked
// under p, and the session enters, stays in or leaves the store as its
// expiry says. Caller holds st.mu.
func (st *clientState) persistAttachLocked(p Principal) {
	if st.restored {
		st.restored = false
		st.recheckLocked(p)
	}
	st.restoredWill = nil // the client is back: its own principal decides
	s := st.srv
	if s.store == nil {
		return
	}
	defer st.persistWillLocked(p)
	switch {
	case st.expiry == 0:
		if st.durable {
			s.store.DeleteSession(st.id)
			st.durable = false
		}
	case st.durable:
		s.store.SaveSession(st.id, st.expiry, 0)
	default:
		// A session taken over with a non-zero expiry: write all of it.
		st.durable = true
		s.store.SaveSession(st.id, st.expiry, 0)
		for key, ref := range st.subs {
			if sub, ok := s.index.Get(st, ref.group, ref.filter); ok {
				s.store.SaveSubscription(st.id, key, sub)
			}
		}
		st.inflight.Range(func(o *session.Outflight) bool {
			st.seq++
			o.Seq = st.seq
			s.store.PutDelivery(st.id, store.Delivery{Delivery: o.Delivery, Inflight: true, State: o.State, PacketID: o.ID})
			return true
		})
		n := st.queue.Len()
		for range n {
			d, _ := st.queue.Pop()
			if d.QoS > 0 {
				st.seq++
				d.Seq = st.seq
				s.store.PutDelivery(st.id, store.Delivery{Delivery: d})
			}
			st.queue.Push(d)
		}
	}
}

// persistWillLocked stores the will of the connection attaching to a
// durable session, or forgets the last one: a will is session state [MQTT
// 4.1], and a broker killed while the client is connected owes it after
// the restart (the connection closed without DISCONNECT). Caller holds
// st.mu.
func (st *clientState) persistWillLocked(p Principal) {
	s := st.srv
	w := st.client.will
	if !st.durable || w == nil {
		st.forgetWillLocked()
		return
	}
	m := willMessage(st.client, time.Now())
	m.ExpiresAt = 0 // counts from publication
	sw := store.Will{Msg: m}
	if w.Props.HasMessageExpiry {
		sw.ExpiryInterval = w.Props.MessageExpiry
	}
	if w.Props.HasWillDelay {
		sw.Delay = w.Props.WillDelay
	}
	sw.Username, sw.Anonymous = principalOwner(p)
	s.store.SaveWill(st.id, sw)
	st.willStored = true
}

// forgetWillLocked deletes the session's stored will, if any. Caller holds
// st.mu.
func (st *clientState) forgetWillLocked() {
	if st.willStored {
		st.willStored = false
		if st.durable {
			st.srv.store.DeleteWill(st.id)
		}
	}
}

// principalOwner is who a principal stands for, as a stored will records
// it.
func principalOwner(p Principal) (username string, anonymous bool) {
	switch v := p.(type) {
	case interface{ Username() string }:
		return v.Username(), v.Username() == ""
	case allowAll:
		return "", !v.hadUsername
	}
	return "", false
}

// restoredWillPublisher is the principal that publishes a will restored
// from the store, resolved under the rules in force now (nil, logged, when
// its owner is unknown or disabled now), and the message to publish, its
// expiry counted from now. The owner's password is not checked again: it
// was at the CONNECT that gave the will.
func (s *Server) restoredWillPublisher(st *clientState, m *session.Message, now time.Time) (Principal, *session.Message) {
	st.mu.Lock()
	owner := st.restoredWill
	st.mu.Unlock()
	if owner == nil {
		return nil, m
	}
	a := s.authorizer()
	var p Principal
	var res AuthResult
	if owner.Anonymous {
		p, res = a.Authenticate("", false, nil, st.id)
	} else {
		p, res = authenticateVerified(a, owner.Username, st.id)
	}
	if res != AuthOK {
		s.stats.PublishDenied.Add(1)
		s.log.Info("Restored will not published: its owner is not allowed in now", "client", st.id, "user", owner.Username, "topic", m.Topic)
		return nil, m
	}
	if owner.ExpiryInterval > 0 {
		c := *m
		c.ExpiresAt = now.Add(time.Duration(owner.ExpiryInterval) * time.Second).UnixNano()
		m = &c
	}
	return p, m
}

// armRestoredWills starts the delay of every will restored from the
// store; it runs once, when the broker starts serving.
func (s *Server) armRestoredWills() {
	s.mu.Lock()
	sts := s.restoredWills
	s.restoredWills = nil
	s.mu.Unlock()
	for _, st := range sts {
		st.mu.Lock()
		if pw := st.will; pw != nil && pw.timer == nil {
			pw.timer = time.AfterFunc(pw.left, func() { s.fireWill(st, pw) })
		}
		st.mu.Unlock()
	}
}

// recheckLocked applies a returning client's principal to what its
// restored session kept: subscriptions it may no longer make are removed,
// messages it may not read are dropped. Caller holds st.mu.
func (st *clientState) recheckLocked(p Principal) {
	s := st.srv
	st.pruneSubsLocked(p, "Restored subscription removed: not allowed")
	var denied []uint16
	st.inflight.Range(func(o *session.Outflight) bool {
		if o.State == session.AwaitAck && !p.CanRead(bytesOf(o.Msg.Topic)) {
			denied = append(denied, o.ID)
		}
		return true
	})
	for _, id := range denied {
		if o, ok := st.inflight.Remove(id); ok {
			s.stats.DeliveryDenied.Add(1)
			st.forgetLocked(o.Seq)
		}
	}
	n := st.queue.Len()
	for range n {
		d, _ := st.queue.Pop()
		if !p.CanRead(bytesOf(d.Msg.Topic)) {
			s.stats.DeliveryDenied.Add(1)
			st.forgetLocked(d.Seq)
			continue
		}
		st.queue.Push(d)
	}
}

// putLocked records a delivery of a durable session. Caller holds st.mu.
func (st *clientState) putLocked(d store.Delivery) {
	if st.durable && d.Seq != 0 {
		st.srv.store.PutDelivery(st.id, d)
	}
}

// forgetLocked deletes a finished or dropped delivery of a durable
// session. Caller holds st.mu.
func (st *clientState) forgetLocked(seq uint64) {
	if st.durable && seq != 0 {
		st.srv.store.DeleteDelivery(st.id, seq)
	}
}

// sendHeldLocked holds a QoS 2 delivery of a durable session inflight
// under id and sends its PUBLISH once the store has id durably. Caller
// holds st.mu.
func (st *clientState) sendHeldLocked(id uint16, d session.Delivery) {
	st.inflight.Add(id, d)
	st.inflight.Find(id).Unsent = true
	s := st.srv
	s.store.PutDelivery(st.id, store.Delivery{Delivery: d, Inflight: true, State: session.AwaitAck, PacketID: id})
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
		c := st.client
		if c == nil {
			return // resent with DUP when the client is back
		}
		now := time.Now()
		out := deliveryOut(d, id, false)
		c.outMu.Lock()
		gone := c.closed || c.closing
		sent := !gone && c.encodePublishLocked(&out, now.UnixNano())
		c.outMu.Unlock()
		if !sent && !gone {
			// Too large for the client or expired: discarded as if sent.
			s.stats.MessagesDropped.Add(1)
			st.inflight.Remove(id)
			st.forgetLocked(d.Seq)
			st.fillLocked(now)
		}
	})
}

// afterDurable runs fn, which writes a reply (an ack), once what the
// packet being answered wrote to the store is durable. It runs at once
// when nothing was written (persisted false) and no earlier reply of this
// connection still waits, so replies never overtake each other.
func (c *client) afterDurable(persisted bool, fn func()) {
	s := c.srv
	if s.store == nil || (!persisted && c.held.Load() == 0) {
		fn()
		return
	}
	c.held.Add(1)
	s.store.Sync(func(err error) {
		if err != nil {
			// Not durable, so not acknowledged: the client will send it again.
			s.log.Error("Store write failed; closing the connection without acknowledging", "client", c.id, "err", err)
			c.kick(packets.UnspecifiedError, "store write failed")
		} else {
			fn()
		}
		c.held.Add(-1)
	})
}
