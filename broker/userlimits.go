package broker

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetmq/fleetmq/broker/authz"
	"github.com/fleetmq/fleetmq/broker/packets"
)

// Per-user limits (the auth bundle's users[i].limits): connections per
// username, subscriptions per session, and a publish rate shared by the
// user's connections. A reload applies new limits to connected clients
// without ending any: a lowered maxConnections refuses new connections
// until the user is under it, a lowered maxSubscriptionsPerClient refuses
// new subscriptions, and a new publish rate counts from the next PUBLISH.

// LimitedPrincipal is implemented by principals whose user has limits of
// its own (*authz.Identity). Limits returns nil when it has none; the
// result must not be modified.
type LimitedPrincipal interface {
	Limits() *authz.UserLimits
}

// limitsOf returns p's user limits, nil when there are none.
func limitsOf(p Principal) *authz.UserLimits {
	if lp, ok := p.(LimitedPrincipal); ok {
		return lp.Limits()
	}
	return nil
}

// maxSubscriptions is how many subscriptions a session of p may hold: its
// user's maxSubscriptionsPerClient, which replaces the broker's, or the
// broker's.
func (s *Server) maxSubscriptions(p Principal) int {
	if l := limitsOf(p); l != nil && l.MaxSubscriptionsPerClient > 0 {
		return int(min(l.MaxSubscriptionsPerClient, int64(maxInt)))
	}
	return s.lim.MaxSubscriptionsPerClient
}

const maxInt = int(^uint(0) >> 1)

// userUsage is what one username uses across the broker. Server.users
// holds one per username with a live connection (and, until the next
// reload, one whose rate bucket was not full when its last connection
// ended, so reconnecting does not refill it).
type userUsage struct {
	name string
	// conns counts the username's attached connections; Server.mu guards
	// it.
	conns int
	rate  rateBucket
}

// rateBucket is a token bucket for PUBLISH packets. limited is read
// without the lock on every PUBLISH, so an unlimited user costs one atomic
// load.
type rateBucket struct {
	limited atomic.Bool
	// mu guards the fields below. It is a leaf: nothing else is locked
	// while it is held.
	mu     sync.Mutex
	rate   float64 // tokens a second
	burst  float64 // most tokens saved up
	tokens float64
	last   int64 // UnixNano of the last refill
}

// set applies l's publish rate (nil: none). Tokens saved up stay, up to
// the new burst; a bucket limited for the first time starts full.
func (b *rateBucket) set(l *authz.UserLimits, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if l == nil || l.PublishRate == nil {
		b.rate, b.burst = 0, 0
		b.limited.Store(false)
		return
	}
	rate, burst := float64(l.PublishRate.MessagesPerSecond), float64(l.PublishRate.EffectiveBurst())
	if !b.limited.Load() {
		b.tokens, b.last = burst, now.UnixNano()
	} else {
		b.refillLocked(now.UnixNano())
	}
	b.rate, b.burst = rate, burst
	b.tokens = min(b.tokens, burst)
	b.limited.Store(true)
}

func (b *rateBucket) refillLocked(now int64) {
	if now > b.last {
		b.tokens = min(b.burst, b.tokens+float64(now-b.last)*b.rate/1e9)
		b.last = now
	}
}

// take spends a token, reporting false when there is none.
func (b *rateBucket) take(now time.Time) bool {
	return b.refilled(now, func() bool {
		if b.tokens < 1 {
			return false
		}
		b.tokens--
		return true
	})
}

// full reports whether the bucket holds all it can (or limits nothing):
// forgetting it then loses nothing.
func (b *rateBucket) full(now time.Time) bool {
	return b.refilled(now, func() bool { return b.tokens >= b.burst })
}

// refilled refills the bucket and answers f, under b.mu; a bucket without
// a rate answers true.
func (b *rateBucket) refilled(now time.Time, f func() bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rate == 0 {
		return true
	}
	b.refillLocked(now.UnixNano())
	return f()
}

// admitUserLocked counts a new connection of p's user, unless that would
// take the user past its maxConnections. Connections taken over were let
// go before this is called, so a reconnect at the limit is admitted.
// Caller holds s.mu.
func (s *Server) admitUserLocked(c *client, p Principal) bool {
	name := p.Username()
	if name == "" {
		return true // anonymous, or an open broker: no user to count
	}
	u := s.users[name]
	l := limitsOf(p)
	if l != nil && l.MaxConnections > 0 && u != nil && int64(u.conns) >= l.MaxConnections {
		return false
	}
	if u == nil {
		u = &userUsage{name: name}
		if s.users == nil {
			s.users = make(map[string]*userUsage)
		}
		s.users[name] = u
	}
	u.conns++
	u.rate.set(l, time.Now())
	c.usage = u
	return true
}

// releaseUser uncounts c's connection when it ends.
func (s *Server) releaseUser(c *client) {
	u := c.usage
	if u == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u.conns--
	if u.conns == 0 && u.rate.full(time.Now()) && s.users[u.name] == u {
		delete(s.users, u.name)
	}
}

// refreshUserLimits applies the limits of a new Authorizer to the users'
// live connections (their sessions were re-bound already), and forgets
// users with none left.
func (s *Server) refreshUserLimits(states []*clientState) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, u := range s.users {
		if u.conns == 0 {
			delete(s.users, name)
		}
	}
	for _, st := range states {
		if !st.connected.Load() {
			continue
		}
		p := st.getPrincipal()
		if p == nil || p.Username() == "" {
			continue
		}
		if u := s.users[p.Username()]; u != nil {
			u.rate.set(limitsOf(p), now)
		}
	}
}

// errOverRate ends the read loop of a client kicked for its publish rate.
var errOverRate = errors.New("publish rate exceeded")

// sustainedRefusals is how far a connection's refusals for its user's
// rate may outnumber its accepted PUBLISHes (c.rateDebt: +1 a refusal, -1
// an accepted one, never below 0) before it is disconnected, or the burst
// when larger. A client sending more than twice its rate, ignoring the
// refusals, gets there; one that slows down when refused does not.
const sustainedRefusals = 100

// overRate decides a PUBLISH against its user's publish rate, for a
// client whose user has one (c.usage.rate.limited). refused
// means the PUBLISH was answered (or the connection is being closed) and
// must not be routed. Over the rate:
//
//   - v5: QoS 1/2 get PUBACK/PUBREC 0x97 Quota exceeded, QoS 0 is dropped;
//   - 3.1.1 QoS 0 is dropped; 3.1.1 cannot be told that a QoS 1/2 message
//     was refused, so the connection is closed without acknowledging it:
//     the client still holds the message and sends it again after
//     reconnecting, so nothing it was promised is lost;
//   - a connection whose refusals outnumber its accepted messages by
//     sustainedRefusals (or its burst, when larger) is disconnected: v5
//     DISCONNECT 0x96 Message rate too high.
//
// Each refusal counts as fleetmq_quota_exceeded_total{quota="publish_rate"}.
func (c *client) overRate(p *packets.Publish, now time.Time) (refused bool, err error) {
	u := c.usage
	if p.QoS == 2 && c.qos2Pending(p.PacketID) {
		return false, nil // a resend of one taken already: answered as such
	}
	if u.rate.take(now) {
		c.rateDebt = max(c.rateDebt-1, 0)
		return false, nil
	}
	s := c.srv
	s.stats.PublishRateExceeded.Add(1)
	c.rateDebt++
	u.rate.mu.Lock()
	sustained := float64(c.rateDebt) >= max(sustainedRefusals, u.rate.burst)
	u.rate.mu.Unlock()
	if sustained || (c.version != packets.V5 && p.QoS > 0) {
		s.stats.MessagesDropped.Add(1)
		s.log.Info("Disconnecting client over its user's publish rate", "client", c.id, "remote", c.remote, "refusedOverAccepted", c.rateDebt)
		c.kick(packets.MessageRateTooHigh, "publish rate exceeded")
		return true, errOverRate
	}
	return true, c.refusePublish(p, packets.QuotaExceeded, "publish rate exceeded")
}

// qos2Pending reports whether a QoS 2 PUBLISH with id was received and
// not released yet (its resend is not a new message).
func (c *client) qos2Pending(id uint16) bool {
	st := c.st
	st.mu.Lock()
	defer st.mu.Unlock()
	_, ok := st.inboundQoS2[id]
	return ok
}
