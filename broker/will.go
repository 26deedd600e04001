package broker

import (
	"time"

	"github.com/fleetmq/fleetmq/broker/authz"
	"github.com/fleetmq/fleetmq/broker/outbox"
	"github.com/fleetmq/fleetmq/broker/packets"
	"github.com/fleetmq/fleetmq/broker/store"
)

type pendingWill struct {
	msg   *outbox.Message
	timer *time.Timer   // nil until armed (a restored will: at Serve)
	left  time.Duration // a restored will's delay, from when it is armed
}

func (pw *pendingWill) stop() {
	if pw.timer != nil {
		pw.timer.Stop()
	}
}

// detach runs when a connection ends: the session stays for its expiry
// interval (or ends now), and the will is published now, later, or not.
func (s *Server) detach(c *client) {
	st := c.st
	now := time.Now()
	var wills []*outbox.Message

	s.mu.Lock()
	st.mu.Lock()
	if st.client == c {
		st.client = nil
		st.connected.Store(false)
		var will *outbox.Message
		if c.will != nil && !c.life.normalClose.Load() && !s.closing && !st.revoked {
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
			st.journal.saveSession(st.expiry, now.UnixNano(), st.owner)
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
			if c.will == nil || c.life.normalClose.Load() || (will != nil && st.will == nil) {
				// None, discarded by a DISCONNECT, or published now. A
				// will not published because the broker stops stays
				// stored, for after the restart.
				st.journal.forgetWill()
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
	var will *outbox.Message
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
		st.journal.forgetWill()
	}
	st.mu.Unlock()
	if fire {
		s.publishWill(st, pw.msg, time.Now())
	}
}

func (s *Server) publishWill(st *clientState, m *outbox.Message, now time.Time) {
	if isReserved(m.Topic) {
		// No client-originated message lands on a $-topic ($SYS is the
		// broker's), as handlePublish refuses a PUBLISH there.
		s.stats.PublishDenied.Add(1)
		s.stats.WillsReservedTopic.Add(1)
		s.log.Info("Will not published: $-topics are the broker's", "client", st.id, "topic", m.Topic)
		return
	}
	var p Principal
	if box := st.principal.Load(); box != nil {
		p = box.p
		if box.restored {
			if p, m = s.restoredWillPublisher(st, m, now); p == nil {
				return
			}
		}
	}
	if p != nil && !p.CanPublish(bytesOf(m.Topic)) {
		s.stats.PublishDenied.Add(1)
		s.stats.WillsDenied.Add(1)
		s.log.Info("Will not published: not authorized", "client", st.id, "topic", m.Topic)
		return
	}
	s.stats.MessagesReceived[m.QoS].Add(1)
	s.publishMessage(st, m, now)
}

// isReserved reports a $-topic, which only the broker publishes to.
func isReserved(topic string) bool { return len(topic) > 0 && topic[0] == '$' }

func willMessage(c *client, now time.Time) *outbox.Message {
	w := c.will
	p := packets.Publish{QoS: w.QoS, Retain: w.Retain, Topic: bytesOf(w.Topic), Payload: w.Payload, Props: w.Props}
	return outbox.NewMessage(&p, w.Topic, c.id, now)
}

// persistWillLocked stores the will of the connection attaching to a
// durable session, or forgets the last one: a will is session state [MQTT
// 4.1], and a broker killed while the client is connected owes it after
// the restart (the connection closed without DISCONNECT). Caller holds
// st.mu.
func (st *clientState) persistWillLocked(p Principal) {
	w := st.client.will
	if !st.journal.durable() || w == nil || isReserved(w.Topic) {
		st.journal.forgetWill()
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
	sw.Username, sw.Anonymous = p.Username(), p.Anonymous()
	st.journal.saveWill(sw)
}

// restoredWillPublisher is the principal that publishes a will restored
// from the store, resolved under the rules in force now (nil, logged, when
// its owner is unknown or disabled now), and the message to publish, its
// expiry counted from now. The owner's password is not checked again: it
// was at the CONNECT that gave the will.
func (s *Server) restoredWillPublisher(st *clientState, m *outbox.Message, now time.Time) (Principal, *outbox.Message) {
	st.mu.Lock()
	owner := st.restoredWill
	st.mu.Unlock()
	if owner == nil {
		return nil, m
	}
	a := s.authorizer()
	var p Principal
	var res authz.AuthResult
	if owner.Anonymous {
		p, res = a.Authenticate("", false, nil, st.id)
	} else {
		p, res = authenticateVerified(a, owner.Username, st.id)
	}
	if res != authz.AuthOK {
		s.stats.PublishDenied.Add(1)
		s.stats.WillsRevoked.Add(1)
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
