package broker

import (
	"fmt"
	"time"

	"github.com/fleetmq/fleetmq/broker/outbox"
	"github.com/fleetmq/fleetmq/broker/store"
)

// keepAll is the principal of a session loaded from the store until its
// client connects again (principalBox.restored): messages its
// subscriptions match are kept for it, and when the client returns, its
// real principal re-checks the subscriptions (recheckLocked) and every
// delivery as it goes out (deniedLocked).
type keepAll struct{}

func (keepAll) CanPublish([]byte) bool   { return false }
func (keepAll) CanSubscribe(string) bool { return false }
func (keepAll) CanRead([]byte) bool      { return true }
func (keepAll) Username() string         { return "" }
func (keepAll) Anonymous() bool          { return false }

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
		st.principal.Store(&principalBox{p: keepAll{}, restored: true})
		st.expiry, st.expiryAtConnect = expiry, expiry
		st.owner = rs.Owner
		st.restored = true
		st.mu.Lock()
		for _, sub := range rs.Subscriptions {
			st.subscribeLocked(sub.Key, sub.Sub) // not durable yet: no write back
		}
		st.journal.start(s.store, st.id)
		for _, d := range rs.Deliveries {
			st.journal.seq = max(st.journal.seq, d.Seq)
			if d.Inflight {
				if st.inflight.Find(d.PacketID) != nil {
					st.journal.forget(d.Seq)
					continue
				}
				st.inflight.Add(d.PacketID, d.Delivery)
				st.inflight.Find(d.PacketID).State = d.State
				continue
			}
			if _, ok := st.queue.Push(d.Delivery); !ok {
				// The limit was lowered since: the bound holds here too.
				s.stats.MessagesDropped.Add(1)
				st.journal.forget(d.Seq)
			}
		}
		if len(rs.InboundQoS2) > 0 {
			st.inboundQoS2 = make(map[uint16]struct{}, len(rs.InboundQoS2))
			for _, id := range rs.InboundQoS2 {
				st.inboundQoS2[id] = struct{}{}
			}
		}
		if rs.DisconnectedAt == 0 {
			st.journal.saveSession(expiry, now.UnixNano(), st.owner)
		}
		if w := rs.Will; w != nil {
			// Its connection closed when the broker stopped (or earlier,
			// with the delay running since).
			left := time.Duration(w.Delay) * time.Second
			if rs.DisconnectedAt != 0 {
				left -= now.Sub(time.Unix(0, rs.DisconnectedAt))
			}
			st.journal.willStored, st.restoredWill = true, w
			st.will = &pendingWill{msg: w.Msg, left: max(left, 0)}
			s.restoredWills = append(s.restoredWills, st)
		}
		st.expiryTimer = time.AfterFunc(left, func() { s.expire(st) })
		st.mu.Unlock()
		s.sessions[st.id] = st
	}
	for _, m := range snap.Retained {
		s.restoreRetained(m)
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
		st.journal.drop()
	case st.journal.durable():
		st.journal.saveSession(st.expiry, 0, st.owner)
	default:
		// A session taken over with a non-zero expiry: write all of it.
		j := &st.journal
		j.start(s.store, st.id)
		j.saveSession(st.expiry, 0, st.owner)
		for key, ref := range st.subs {
			if sub, ok := s.index.Get(st, ref.group, ref.filter); ok {
				j.saveSub(key, sub)
			}
		}
		st.inflight.Range(func(o *outbox.Outflight) bool {
			j.numbered(&o.Delivery)
			j.put(store.Delivery{Delivery: o.Delivery, Inflight: true, State: o.State, PacketID: o.ID})
			return true
		})
		n := st.queue.Len()
		for range n {
			d, _ := st.queue.Pop()
			if d.QoS > 0 {
				j.numbered(&d)
				j.put(store.Delivery{Delivery: d})
			}
			st.queue.Push(d)
		}
	}
}

// recheckLocked applies a returning client's principal to its restored
// session: subscriptions it may no longer make are removed. What the
// session kept is checked as it goes out (deniedLocked: resendLocked,
// fillLocked), as for every session. Caller holds st.mu.
func (st *clientState) recheckLocked(p Principal) {
	st.pruneSubsLocked(p, "Restored subscription removed: not allowed")
}
