package broker

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetmq/fleetmq/broker/packets"
	"github.com/fleetmq/fleetmq/broker/session"
	"github.com/fleetmq/fleetmq/broker/store"
	"github.com/fleetmq/fleetmq/broker/topic"
)

// clientState is a session: what the broker keeps for a client id across
// connections.
type clientState struct {
	id  string
	srv *Server

	// connected mirrors client != nil for the topic index, which reads it
	// without the lock to pick shared-subscription members.
	connected atomic.Bool
	// principal is what this session may do; swapped on reload.
	principal atomic.Pointer[principalBox]

	// mu guards every field below.
	mu              sync.Mutex
	client          *client
	subs            map[string]subRef // by the filter as subscribed, $share prefix included
	inflight        session.Inflight
	queue           *session.Queue
	inboundQoS2     map[uint16]struct{} // QoS 2 packet ids received, PUBREL not yet
	expiry          uint32              // session expiry interval, seconds
	expiryAtConnect uint32
	expiryTimer     *time.Timer
	will            *pendingWill // armed when the connection dropped with a delayed will
	// willStored: the store holds a will for this session; restoredWill
	// is that will as loaded at start, until a client attaches: who
	// published it, to authorize it (persist.go).
	willStored   bool
	restoredWill *store.Will
	ended        bool
	// durable: the session is in the store (Options.Store set, expiry > 0);
	// seq numbers its deliveries there; restored: loaded from the store and
	// not yet claimed by a connection (persist.go).
	durable  bool
	restored bool
	seq      uint64
}

type principalBox struct{ p Principal }

type subRef struct{ group, filter string }

type pendingWill struct {
	msg   *session.Message
	timer *time.Timer   // nil until armed (a restored will: at Serve)
	left  time.Duration // a restored will's delay, from when it is armed
}

func (pw *pendingWill) stop() {
	if pw.timer != nil {
		pw.timer.Stop()
	}
}

func newClientState(s *Server, id string) *clientState {
	return &clientState{
		id:    id,
		srv:   s,
		subs:  make(map[string]subRef),
		queue: session.NewQueue(s.lim.MaxQueuedMessages),
	}
}

func (st *clientState) getPrincipal() Principal {
	if b := st.principal.Load(); b != nil {
		return b.p
	}
	return nil
}

// endLocked ends the session: subscriptions leave the index, queued and
// inflight messages are dropped, a pending will is returned for publishing.
// Caller holds Server.mu and st.mu.
func (st *clientState) endLocked() *session.Message {
	if st.ended {
		return nil
	}
	st.ended = true
	for _, ref := range st.subs {
		st.srv.index.Unsubscribe(st, ref.group, ref.filter)
	}
	st.subs = nil
	st.queue.Clear()
	st.inflight.Clear()
	st.inboundQoS2 = nil
	if st.expiryTimer != nil {
		st.expiryTimer.Stop()
		st.expiryTimer = nil
	}
	if st.srv.sessions[st.id] == st {
		delete(st.srv.sessions, st.id)
	}
	if st.durable {
		st.srv.store.DeleteSession(st.id) // its will too
		st.durable = false
	}
	st.willStored = false
	var will *session.Message
	if st.will != nil {
		st.will.stop()
		will = st.will.msg
		st.will = nil
	}
	return will
}

// detach runs when a connection ends: the session stays for its expiry
// interval (or ends now), and the will is published now, later, or not.
func (s *Server) detach(c *client) {
	st := c.st
	now := time.Now()
	var wills []*session.Message

	s.mu.Lock()
	st.mu.Lock()
	if st.client == c {
		st.client = nil
		st.connected.Store(false)
		var will *session.Message
		if c.will != nil && !c.normalClose.Load() && !s.closing {
			will = willMessage(c, now)
		}
		switch {
		case st.expiry == 0 || st.ended:
			if w := st.endLocked(); w != nil {
				wills = append(wills, w)
			}
			if will != nil {
				wills = append(wills, will)
			}
		default:
			st.expiryTimer = time.AfterFunc(time.Duration(st.expiry)*time.Second, func() { s.expire(st) })
			if st.durable {
				s.store.SaveSession(st.id, st.expiry, now.UnixNano())
			}
			if will != nil {
				delay := time.Duration(0)
				if c.will.Props.HasWillDelay {
					delay = time.Duration(c.will.Props.WillDelay) * time.Second
				}
				if delay == 0 {
					wills = append(wills, will)
				} else {
					pw := &pendingWill{msg: will}
					pw.timer = time.AfterFunc(delay, func() { s.fireWill(st, pw) })
					st.will = pw
				}
			}
			if c.will == nil || c.normalClose.Load() || (will != nil && st.will == nil) {
				// None, discarded by a DISCONNECT, or published now. A
				// will not published because the broker stops stays
				// stored, for after the restart.
				st.forgetWillLocked()
			}
		}
	}
	st.mu.Unlock()
	s.mu.Unlock()

	for _, w := range wills {
		s.publishWill(st, w, now)
	}
}

// expire ends an offline session whose expiry interval passed.
func (s *Server) expire(st *clientState) {
	s.mu.Lock()
	st.mu.Lock()
	var will *session.Message
	if st.client == nil && !st.ended {
		will = st.endLocked()
	}
	st.mu.Unlock()
	s.mu.Unlock()
	if will != nil {
		s.publishWill(st, will, time.Now())
	}
}

// fireWill publishes a delayed will whose delay passed while the session
// was still offline [MQTT-3.1.3-9].
func (s *Server) fireWill(st *clientState, pw *pendingWill) {
	st.mu.Lock()
	fire := st.will == pw
	if fire {
		st.will = nil
		st.forgetWillLocked()
	}
	st.mu.Unlock()
	if fire {
		s.publishWill(st, pw.msg, time.Now())
	}
}

func (s *Server) publishWill(st *clientState, m *session.Message, now time.Time) {
	p := st.getPrincipal()
	if _, ok := p.(restoredPrincipal); ok {
		if p, m = s.restoredWillPublisher(st, m, now); p == nil {
			return
		}
	}
	if p != nil && !p.CanPublish(bytesOf(m.Topic)) {
		s.stats.PublishDenied.Add(1)
		s.log.Info("Will not published: not authorized", "client", st.id, "topic", m.Topic)
		return
	}
	s.stats.MessagesReceived[m.QoS].Add(1)
	s.publishMessage(st, m, now)
}

func willMessage(c *client, now time.Time) *session.Message {
	w := c.will
	p := packets.Publish{QoS: w.QoS, Retain: w.Retain, Topic: bytesOf(w.Topic), Payload: w.Payload, Props: w.Props}
	return session.NewMessage(&p, w.Topic, c.id, now)
}

// rebind re-resolves the session's principal under a new Authorizer. It
// reports false when the session was revoked (connection closed, session
// ended). Subscriptions no longer allowed are removed.
func (st *clientState) rebind(a Authorizer) bool {
	old := st.getPrincipal()
	if old == nil {
		return true
	}
	if _, ok := old.(restoredPrincipal); ok {
		return true // checked under the new rules when its client returns
	}
	np, res := a.Rebind(old, st.id)
	s := st.srv
	if res != AuthOK {
		s.stats.Revoked.Add(1)
		s.mu.Lock()
		st.mu.Lock()
		c := st.client
		// The session ends with the connection: its owner lost the right
		// to it [DESIGN: hot reload].
		st.expiry = 0
		var will *session.Message
		if c == nil {
			will = st.endLocked()
		}
		st.mu.Unlock()
		s.mu.Unlock()
		_ = will // a revoked client's will is not published: it may no longer publish
		if c != nil {
			reason := "credentials revoked"
			if res == AuthNotAuthorized {
				reason = "not authorized any more"
			}
			s.log.Info("Disconnecting client after auth reload", "client", st.id, "reason", reason)
			c.kick(packets.NotAuthorized, reason)
		}
		return false
	}
	st.mu.Lock()
	if st.getPrincipal() != old {
		// A new connection took the session over meanwhile, with a
		// principal from the new rules already: keep that one.
		np = st.getPrincipal()
	} else {
		st.principal.Store(&principalBox{np})
	}
	st.pruneSubsLocked(np, "Subscription removed after auth reload")
	st.mu.Unlock()
	return true
}

// subscribeLocked records a subscription in the session and the index.
func (st *clientState) subscribeLocked(key string, sub topic.Subscription) (existed bool) {
	existed = st.srv.index.Subscribe(st, sub)
	st.subs[key] = subRef{group: sub.Group, filter: sub.Filter}
	if st.durable {
		st.srv.store.SaveSubscription(st.id, key, sub)
	}
	return existed
}

// unsubscribeLocked removes the subscription made with key from the
// session, the index and the store; it reports whether there was one.
func (st *clientState) unsubscribeLocked(key string) bool {
	ref, ok := st.subs[key]
	if !ok {
		return false
	}
	st.srv.index.Unsubscribe(st, ref.group, ref.filter)
	delete(st.subs, key)
	if st.durable {
		st.srv.store.DeleteSubscription(st.id, key)
	}
	return true
}

// pruneSubsLocked removes the subscriptions p may no longer make.
func (st *clientState) pruneSubsLocked(p Principal, why string) {
	for key, ref := range st.subs {
		if !p.CanSubscribe(ref.filter) {
			st.unsubscribeLocked(key)
			st.srv.log.Info(why, "client", st.id, "filter", key)
		}
	}
}
