package broker

import (
	"github.com/fleetmq/fleetmq/broker/outbox"
	"github.com/fleetmq/fleetmq/broker/store"
	"github.com/fleetmq/fleetmq/broker/topic"
)

// Durability (Options.Store). A session with a non-zero expiry interval is
// durable: its record, subscriptions, deliveries (queued and inflight, in
// Seq order) and inbound QoS 2 ids are written to the store as they change,
// through the session's journal, under the session's lock, so the store
// sees each session's changes in the order they happened. Writes are
// asynchronous; what a client is promised waits for them:
//
//   - PUBACK/PUBREC of a PUBLISH that wrote anything (a delivery to a durable
//     session, a retained message, the inbound QoS 2 id), PUBCOMP, SUBACK and
//     UNSUBACK of a durable session are written from the store's commit
//     callback (client.afterDurable), in order per connection.
//   - A QoS 2 PUBLISH to a durable session goes out only once its packet id
//     is durable (outbox.Outflight.Unsent), so a restart resends it under
//     the same id and the receiver never sees it twice.
//   - An inbound QoS 2 id is committed in one group with what routing its
//     PUBLISH wrote (Store.BeginGroup), so a resend after a restart is routed
//     again exactly when the first routing was lost.
//
// QoS 0 is never stored; sessions with expiry 0 never touch the store.

// journal writes one session's changes to the store. It does nothing while
// the session is not durable (no store, or expiry 0), so session code
// calls it unconditionally. Its methods are called with the session's lock
// held and write synchronously into the store's ordered queue, which keeps
// the session's order of changes; the store commits them in the background.
type journal struct {
	store store.Store // nil: the session is not durable
	id    string
	// seq numbers the session's deliveries in the store (their key).
	seq uint64
	// willStored: the store holds a will for this session.
	willStored bool
}

// durable reports whether the session is in the store: replies that
// promise something about its state wait for the store (afterDurable).
func (j *journal) durable() bool { return j.store != nil }

// start makes the session durable from now on. What it held before is
// not written: the caller writes it (or it was loaded from the store).
func (j *journal) start(s store.Store, id string) { j.store, j.id = s, id }

// saveSession records the session's expiry, when its client left (0
// while connected) and its owner.
func (j *journal) saveSession(expiry uint32, disconnectedAt int64, owner store.Owner) {
	if j.store != nil {
		j.store.SaveSession(j.id, expiry, disconnectedAt, owner)
	}
}

// drop deletes the session and everything it owns (its will too) from the
// store; the session is not durable any more.
func (j *journal) drop() {
	if j.store != nil {
		j.store.DeleteSession(j.id)
		j.store = nil
	}
	j.willStored = false
}

// numbered gives d the next sequence number when the session is durable
// (d is then stored when put), and reports whether it did.
func (j *journal) numbered(d *outbox.Delivery) bool {
	if j.store == nil {
		return false
	}
	j.seq++
	d.Seq = j.seq
	return true
}

// put records (or updates) a numbered delivery.
func (j *journal) put(d store.Delivery) {
	if j.store != nil && d.Seq != 0 {
		j.store.PutDelivery(j.id, d)
	}
}

// forget deletes a finished or dropped delivery.
func (j *journal) forget(seq uint64) {
	if j.store != nil && seq != 0 {
		j.store.DeleteDelivery(j.id, seq)
	}
}

func (j *journal) saveSub(key string, sub topic.Subscription) {
	if j.store != nil {
		j.store.SaveSubscription(j.id, key, sub)
	}
}

func (j *journal) deleteSub(key string) {
	if j.store != nil {
		j.store.DeleteSubscription(j.id, key)
	}
}

// receivedQoS2 records an inbound QoS 2 packet id routed and awaiting
// PUBREL. It reports whether it wrote, in which case the caller must end
// group once routing has written too.
func (j *journal) receivedQoS2(id uint16) (group store.Group, wrote bool) {
	if j.store == nil {
		return group, false
	}
	// A resend after a restart that finds this id is acknowledged without
	// routing, so the id must be durable exactly when what routing writes
	// (deliveries, retained message) is: a crash between them would lose
	// the message or deliver it twice.
	group = j.store.BeginGroup()
	j.store.SaveInboundQoS2(j.id, id)
	return group, true
}

func (j *journal) releasedQoS2(id uint16) {
	if j.store != nil {
		j.store.ReleaseInboundQoS2(j.id, id)
	}
}

// saveWill records the will of the client attached to the session.
func (j *journal) saveWill(w store.Will) {
	if j.store != nil {
		j.store.SaveWill(j.id, w)
		j.willStored = true
	}
}

// forgetWill deletes the session's stored will, if any.
func (j *journal) forgetWill() {
	if j.willStored {
		j.willStored = false
		if j.store != nil {
			j.store.DeleteWill(j.id)
		}
	}
}
