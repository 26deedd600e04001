package broker

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetmq/fleetmq/broker/outbox"
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
	mu     sync.Mutex
	client *client
	// owner is who the session belongs to: only a client authenticated as
	// the same user attaches to it (Server.attach).
	owner           store.Owner
	subs            map[string]subRef // by the filter as subscribed, $share prefix included
	inflight        outbox.Inflight
	queue           *outbox.Queue
	inboundQoS2     map[uint16]struct{} // QoS 2 packet ids received, PUBREL not yet
	expiry          uint32              // session expiry interval, seconds
	expiryAtConnect uint32
	expiryTimer     *time.Timer
	will            *pendingWill // armed when the connection dropped with a delayed will
	// restoredWill is the will loaded from the store at start, until a
	// client attaches: who published it, to authorize it (will.go).
	restoredWill *store.Will
	ended        bool
	// revoked: a reload took its principal's rights away (rebind); its
	// will is discarded, never published.
	revoked bool
	// restored: loaded from the store and not yet claimed by a connection
	// (restore.go).
	restored bool
	// journal writes the session's changes to the store while it is
	// durable (journal.go).
	journal journal
}

// principalBox is what the session may do. restored marks the stand-in a
// session loaded from the store has until its client returns (restore.go):
// it keeps what the session's subscriptions match, publishes nothing, and
// is re-resolved from the client's own principal when it connects.
type principalBox struct {
	p        Principal
	restored bool
}

type subRef struct{ group, filter string }

func newClientState(s *Server, id string) *clientState {
	return &clientState{
		id:    id,
		srv:   s,
		subs:  make(map[string]subRef),
		queue: outbox.NewQueue(s.lim.MaxQueuedMessages),
	}
}

// getPrincipal returns what the session may do now; nil before its first
// CONNECT finished.
func (st *clientState) getPrincipal() Principal {
	if b := st.principal.Load(); b != nil {
		return b.p
	}
	return nil
}

// endLocked ends the session: subscriptions leave the index, queued and
// inflight messages are dropped, a pending will is returned for publishing.
// Caller holds Server.mu and st.mu.
func (st *clientState) endLocked() *outbox.Message {
	if st.ended {
		return nil
	}
	st.ended = true
	for _, ref := range st.subs {
		st.srv.indexUnsubscribe(st, ref.group, ref.filter)
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
	st.journal.drop() // its will too
	var will *outbox.Message
	if st.will != nil {
		st.will.stop()
		will = st.will.msg
		st.will = nil
	}
	return will
}

// subscribeLocked records a subscription in the session and the index.
func (st *clientState) subscribeLocked(key string, sub topic.Subscription) (existed bool) {
	existed = st.srv.index.Subscribe(st, sub)
	if !existed {
		st.srv.clusterInterest(sub.Filter, true)
	}
	st.subs[key] = subRef{group: sub.Group, filter: sub.Filter}
	st.journal.saveSub(key, sub)
	return existed
}

// unsubscribeLocked removes the subscription made with key from the
// session, the index and the store; it reports whether there was one.
func (st *clientState) unsubscribeLocked(key string) bool {
	ref, ok := st.subs[key]
	if !ok {
		return false
	}
	st.srv.indexUnsubscribe(st, ref.group, ref.filter)
	delete(st.subs, key)
	st.journal.deleteSub(key)
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

// mayRead reports whether the session's principal may read topic now. The
// topic index asks it to pick a shared-subscription member that may, so
// one that may not never takes a message from the group (route checks
// the member picked again, as every target).
func (st *clientState) mayRead(topic []byte) bool {
	p := st.getPrincipal()
	return p != nil && p.CanRead(topic)
}
