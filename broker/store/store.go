// Package store keeps what a broker must not lose across a restart:
// persistent sessions (expiry, subscriptions), the messages they are owed
// (queued and inflight, with their QoS handshake state), the inbound QoS 2
// packet ids awaiting PUBREL, and retained messages.
//
// Writes are asynchronous and ordered: each call queues an operation and
// returns at once; one goroutine appends everything queued so far to a
// write-ahead log as one record with one fdatasync (group commit), and
// another applies the log to a bbolt file in the background. Sync registers a callback that runs
// once every write queued before it is durable, which is how the broker
// acknowledges a PUBLISH only after it is safe. Callbacks run in the order
// they were registered, on the store's goroutine, with no broker lock held.
//
// The implementation is Bolt: the log (wal.go) in front of a
// go.etcd.io/bbolt file; docs/architecture.md says why.
package store

import (
	"errors"

	"github.com/fleetmq/fleetmq/broker/outbox"
	"github.com/fleetmq/fleetmq/broker/topic"
)

// Errors of Open.
var (
	// ErrCorrupt wraps every error that means the store's file cannot be
	// trusted (bad checksum, bad page, undecodable record, unknown format).
	ErrCorrupt = errors.New("store: corrupt or unreadable")
	// ErrLocked means another process holds the store open.
	ErrLocked = errors.New("store: locked by another process")
	// ErrClosed is passed to callbacks of operations queued after Close.
	ErrClosed = errors.New("store: closed")
)

// Store is what the broker calls. Write methods never block on I/O and
// never run a callback synchronously, so they may be called with the
// broker's locks held.
type Store interface {
	// Load returns what the store held when it was opened (expired
	// sessions and messages already purged). The broker calls it once.
	Load() (*Snapshot, error)

	// SaveSession records a persistent session: its expiry interval
	// (seconds), when its client disconnected (unix nanoseconds; 0 while
	// connected) and who owns it.
	SaveSession(clientID string, expiry uint32, disconnectedAt int64, owner Owner)
	// DeleteSession forgets a session and everything it owns.
	DeleteSession(clientID string)
	// SaveSubscription records one subscription under key, the filter as
	// subscribed ($share prefix included).
	SaveSubscription(clientID, key string, sub topic.Subscription)
	DeleteSubscription(clientID, key string)
	// PutDelivery records (or updates) a delivery owed to a session, keyed
	// by d.Seq.
	PutDelivery(clientID string, d Delivery)
	DeleteDelivery(clientID string, seq uint64)
	// SaveInboundQoS2 records a QoS 2 packet id received and routed, whose
	// PUBREL has not come yet; a resent PUBLISH with it is not routed again.
	SaveInboundQoS2(clientID string, packetID uint16)
	ReleaseInboundQoS2(clientID string, packetID uint16)
	// SaveWill records the will of a persistent session's client (one per
	// session), published after a restart as if its connection had
	// dropped then; DeleteWill forgets it.
	SaveWill(clientID string, w Will)
	DeleteWill(clientID string)
	// SetRetained stores m as its topic's retained message.
	SetRetained(m *outbox.Message)
	DeleteRetained(topic string)

	// BeginGroup starts a group: the writes queued from now until
	// EndGroup are durable together, never some without the others.
	// Writes other goroutines queue meanwhile join the group's commit.
	// Commits wait for open groups, so keep them short (no I/O inside).
	BeginGroup() Group
	EndGroup(Group)

	// Sync calls done once every write queued before it is durable (err
	// nil) or failed.
	Sync(done func(err error))
	// Close applies what is queued, then closes. Later writes are dropped
	// and their Sync callbacks get ErrClosed.
	Close() error
}

// Group is an open group of writes (BeginGroup).
type Group uint64

// Snapshot is the store's content at open.
type Snapshot struct {
	Sessions []*Session
	Retained []*outbox.Message
}

// Session is one persistent session as stored.
type Session struct {
	ClientID string
	// Expiry is the session expiry interval in seconds.
	Expiry uint32
	// DisconnectedAt is when the client went away (unix nanoseconds), 0
	// when the broker stopped while it was connected.
	DisconnectedAt int64
	// Owner is the principal the session belongs to.
	Owner         Owner
	Subscriptions []Subscription
	// Deliveries are in Seq order: inflight ones first, then queued.
	Deliveries  []Delivery
	InboundQoS2 []uint16
	Will        *Will
}

// Owner is who a session belongs to: only a client authenticated as the
// same user may resume it.
type Owner struct {
	// Username is the owner's username as its Authorizer checked it; ""
	// for a client no username was checked for (anonymous, or a broker
	// open to all), all of which are one owner.
	Username string
	// Known is false for a session stored before owners were recorded:
	// any client may claim it, and the first one to connect owns it.
	Known bool
}

// Will is a stored will message.
type Will struct {
	// Msg is the message; its ExpiresAt is 0, the expiry counting from
	// publication (ExpiryInterval).
	Msg            *outbox.Message
	ExpiryInterval uint32 // seconds; 0 never expires
	Delay          uint32 // will delay interval, seconds
	// Username is who connected with the will, so publishing it after a
	// restart is authorized under the rules in force then; Anonymous when
	// the client had none.
	Username  string
	Anonymous bool
}

// Subscription is one stored subscription.
type Subscription struct {
	Key string // the filter as subscribed, $share prefix included
	Sub topic.Subscription
}

// Delivery is a message owed to a session and where its handshake stands.
type Delivery struct {
	outbox.Delivery
	// Inflight is true once a PUBLISH went out with PacketID; State is then
	// outbox.AwaitAck or outbox.AwaitComp.
	Inflight bool
	State    byte
	PacketID uint16
}

// Stats count the store's work, for tests and metrics.
type Stats struct {
	Commits       int64   // group commits: log records written, each one fdatasync
	Ops           int64   // write operations made durable
	LogBytes      int64   // bytes appended to the log
	CommitSeconds float64 // time spent writing and syncing log records
	Checkpoints   int64   // log segments applied to the bbolt file
	CheckpointOps int64   // operations those applied, after coalescing
	Pending       int64   // operations queued, not yet written
	Replayed      int64   // operations replayed from the log at open
	TornBytes     int64   // bytes of an interrupted last write dropped at open
	Failed        bool    // a write failed; the store accepts no more
}
