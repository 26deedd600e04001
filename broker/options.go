package broker

import (
	"cmp"
	"fmt"
	"log/slog"
	"time"

	"github.com/fleetmq/fleetmq/broker/cluster"
	"github.com/fleetmq/fleetmq/broker/store"
)

// Limits bound what one client or the whole broker may use. Zero values are
// replaced by the defaults in DefaultLimits.
type Limits struct {
	// MaxPacketSize is the largest packet accepted from a client, in bytes
	// (v5: announced as Maximum Packet Size in CONNACK).
	MaxPacketSize uint32 `json:"maxPacketSize,omitempty"`
	// MaxConnections is the number of concurrent client connections.
	MaxConnections int `json:"maxConnections,omitempty"`
	// MaxInflight is the receive maximum announced to v5 clients (inbound
	// QoS 2 window) and the outbound QoS 1/2 window per client (smaller when
	// the client announces a smaller Receive Maximum).
	MaxInflight uint16 `json:"maxInflight,omitempty"`
	// MaxQueuedMessages is how many messages a session holds while offline or
	// while its inflight window is full.
	MaxQueuedMessages int `json:"maxQueuedMessages,omitempty"`
	// MaxPendingBytes is how much encoded output may wait for a slow
	// connection before QoS 0 messages to it are dropped and QoS 1/2 ones
	// queued instead, and before the connection's own packets stop being
	// read until its output has drained to half.
	MaxPendingBytes int `json:"maxPendingBytes,omitempty"`
	// MaxTopicLength and MaxTopicLevels bound topic names and filters.
	MaxTopicLength int `json:"maxTopicLength,omitempty"`
	MaxTopicLevels int `json:"maxTopicLevels,omitempty"`
	// MaxKeepAlive caps the keepalive a client may ask for, in seconds;
	// v5 clients asking for more (or for 0) get Server Keep Alive.
	MaxKeepAlive uint16 `json:"maxKeepAlive,omitempty"`
	// MaxSessionExpiry caps how long an offline session is kept, in seconds
	// (3.1.1 persistent sessions too).
	MaxSessionExpiry uint32 `json:"maxSessionExpiry,omitempty"`
	// TopicAliasMaximum is the number of inbound topic aliases a v5 client
	// may use.
	TopicAliasMaximum uint16 `json:"topicAliasMaximum,omitempty"`
	// MaxClientIDLength bounds client identifiers (3.1 allows only 23).
	MaxClientIDLength int `json:"maxClientIDLength,omitempty"`
	// ConnectTimeout is how long a new connection has, counted from accept,
	// to complete its CONNECT, in seconds. Bytes trickling in do not extend
	// it.
	ConnectTimeout uint16 `json:"connectTimeout,omitempty"`
	// MaxConnectPacketSize bounds the first packet (CONNECT), which is read
	// before the client is authenticated, in bytes (MaxPacketSize when that
	// is smaller). A larger one is refused: v5 CONNACK 0x95, else a close.
	MaxConnectPacketSize uint32 `json:"maxConnectPacketSize,omitempty"`
	// MaxUnauthenticated is how many connections may be open without having
	// completed CONNECT; a socket accepted beyond it is closed at once.
	MaxUnauthenticated int `json:"maxUnauthenticated,omitempty"`
	// TopicAliasMaximumOut is the number of topic aliases the broker uses
	// towards a v5 client (fewer when the client's Topic Alias Maximum is
	// smaller). Each keeps a copy of its topic; at most 4 KiB of topics
	// per connection get one, a topic that does not fit goes without.
	TopicAliasMaximumOut uint16 `json:"topicAliasMaximumOut,omitempty"`
	// MaxSubscriptionsPerClient bounds the subscriptions one session holds.
	// A SUBSCRIBE past it is refused per filter (v5 0x97 Quota exceeded,
	// 3.1.1 0x80); subscribing again to a filter the session has replaces
	// it and is always allowed.
	MaxSubscriptionsPerClient int `json:"maxSubscriptionsPerClient,omitempty"`
	// MaxRetainedPerUser and MaxRetainedBytesPerUser bound the retained
	// messages published by one username (anonymous clients, and every
	// client of a broker without an auth bundle, count as one user);
	// MaxRetainedMessages and MaxRetainedBytes bound all of them. Bytes are
	// topic, payload and properties. A retained PUBLISH past a limit is
	// refused (v5 PUBACK/PUBREC 0x97; 3.1.1 acknowledged and dropped);
	// replacing or deleting one never is unless it grows the usage.
	MaxRetainedPerUser      int   `json:"maxRetainedPerUser,omitempty"`
	MaxRetainedBytesPerUser int64 `json:"maxRetainedBytesPerUser,omitempty"`
	MaxRetainedMessages     int   `json:"maxRetainedMessages,omitempty"`
	MaxRetainedBytes        int64 `json:"maxRetainedBytes,omitempty"`
}

// DefaultLimits are sane for a broker serving tens of thousands of devices.
var DefaultLimits = Limits{
	MaxPacketSize:     1 << 20,
	MaxConnections:    100000,
	MaxInflight:       128,
	MaxQueuedMessages: 1000,
	MaxPendingBytes:   1 << 20,
	MaxTopicLength:    1024,
	MaxTopicLevels:    32,
	MaxKeepAlive:      3600,
	MaxSessionExpiry:  7 * 24 * 3600,
	TopicAliasMaximum: 64,
	MaxClientIDLength: 256,

	ConnectTimeout:            10,
	MaxConnectPacketSize:      64 << 10,
	MaxUnauthenticated:        1024,
	TopicAliasMaximumOut:      16,
	MaxSubscriptionsPerClient: 1000,
	MaxRetainedPerUser:        100000,
	MaxRetainedBytesPerUser:   128 << 20,
	MaxRetainedMessages:       1000000,
	MaxRetainedBytes:          512 << 20,
}

// withDefaults returns l with every zero field set from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	l.MaxPacketSize = cmp.Or(l.MaxPacketSize, d.MaxPacketSize)
	l.MaxConnections = cmp.Or(l.MaxConnections, d.MaxConnections)
	l.MaxInflight = cmp.Or(l.MaxInflight, d.MaxInflight)
	l.MaxQueuedMessages = cmp.Or(l.MaxQueuedMessages, d.MaxQueuedMessages)
	l.MaxPendingBytes = cmp.Or(l.MaxPendingBytes, d.MaxPendingBytes)
	l.MaxTopicLength = cmp.Or(l.MaxTopicLength, d.MaxTopicLength)
	l.MaxTopicLevels = cmp.Or(l.MaxTopicLevels, d.MaxTopicLevels)
	l.MaxKeepAlive = cmp.Or(l.MaxKeepAlive, d.MaxKeepAlive)
	l.MaxSessionExpiry = cmp.Or(l.MaxSessionExpiry, d.MaxSessionExpiry)
	l.TopicAliasMaximum = cmp.Or(l.TopicAliasMaximum, d.TopicAliasMaximum)
	l.MaxClientIDLength = cmp.Or(l.MaxClientIDLength, d.MaxClientIDLength)
	l.ConnectTimeout = cmp.Or(l.ConnectTimeout, d.ConnectTimeout)
	l.MaxConnectPacketSize = cmp.Or(l.MaxConnectPacketSize, d.MaxConnectPacketSize)
	l.MaxUnauthenticated = cmp.Or(l.MaxUnauthenticated, d.MaxUnauthenticated)
	l.TopicAliasMaximumOut = cmp.Or(l.TopicAliasMaximumOut, d.TopicAliasMaximumOut)
	l.MaxSubscriptionsPerClient = cmp.Or(l.MaxSubscriptionsPerClient, d.MaxSubscriptionsPerClient)
	l.MaxRetainedPerUser = cmp.Or(l.MaxRetainedPerUser, d.MaxRetainedPerUser)
	l.MaxRetainedBytesPerUser = cmp.Or(l.MaxRetainedBytesPerUser, d.MaxRetainedBytesPerUser)
	l.MaxRetainedMessages = cmp.Or(l.MaxRetainedMessages, d.MaxRetainedMessages)
	l.MaxRetainedBytes = cmp.Or(l.MaxRetainedBytes, d.MaxRetainedBytes)
	return l
}

// Validate reports the first limit that cannot work.
func (l Limits) Validate() error {
	if err := cmp.Or(checkPacketSize("maxPacketSize", l.MaxPacketSize), checkPacketSize("maxConnectPacketSize", l.MaxConnectPacketSize)); err != nil {
		return err
	}
	switch {
	case l.MaxConnections < 0:
		return fmt.Errorf("maxConnections %d: must not be negative", l.MaxConnections)
	case l.MaxQueuedMessages < 0:
		return fmt.Errorf("maxQueuedMessages %d: must not be negative", l.MaxQueuedMessages)
	case l.MaxPendingBytes < 0:
		return fmt.Errorf("maxPendingBytes %d: must not be negative", l.MaxPendingBytes)
	case l.MaxTopicLength < 0 || l.MaxTopicLength > 65535:
		return fmt.Errorf("maxTopicLength %d: must be between 1 and 65535", l.MaxTopicLength)
	case l.MaxTopicLevels < 0:
		return fmt.Errorf("maxTopicLevels %d: must not be negative", l.MaxTopicLevels)
	case l.MaxClientIDLength < 0 || l.MaxClientIDLength > 65535:
		return fmt.Errorf("maxClientIDLength %d: must be between 1 and 65535", l.MaxClientIDLength)
	case l.MaxUnauthenticated < 0:
		return fmt.Errorf("maxUnauthenticated %d: must not be negative", l.MaxUnauthenticated)
	}
	return l.validateQuotas()
}

// checkPacketSize checks a packet size limit named name (0: the default).
func checkPacketSize(name string, n uint32) error {
	switch {
	case n > 268435460:
		return fmt.Errorf("%s %d: above the protocol maximum 268435460", name, n)
	case n != 0 && n < 64:
		return fmt.Errorf("%s %d: must be at least 64 bytes", name, n)
	}
	return nil
}

// validateQuotas reports the first negative quota.
func (l Limits) validateQuotas() error {
	for _, q := range []struct {
		name string
		v    int64
	}{
		{"maxSubscriptionsPerClient", int64(l.MaxSubscriptionsPerClient)},
		{"maxRetainedPerUser", int64(l.MaxRetainedPerUser)},
		{"maxRetainedBytesPerUser", l.MaxRetainedBytesPerUser},
		{"maxRetainedMessages", int64(l.MaxRetainedMessages)},
		{"maxRetainedBytes", l.MaxRetainedBytes},
	} {
		if q.v < 0 {
			return fmt.Errorf("%s %d: must not be negative", q.name, q.v)
		}
	}
	return nil
}

// Options configure a Server.
type Options struct {
	Limits Limits
	// AllowAnonymous accepts clients without credentials when no Authorizer
	// is set, or when the Authorizer's policy allows it.
	AllowAnonymous bool
	// SysInterval is how often $SYS/broker/... statistics are published;
	// 0 means every 10 seconds, negative disables them.
	SysInterval time.Duration
	// Version is reported in $SYS/broker/version.
	Version string
	// Logger receives connection events and protocol errors; nil discards.
	Logger *slog.Logger
	// Auth decides who may connect and what they may do; nil allows
	// everything (subject to AllowAnonymous).
	Auth Authorizer
	// Hooks observe the broker for metrics; nil fields are skipped.
	Hooks Hooks
	// DisablePoller keeps a reader goroutine per connection even where idle
	// connections could be parked in epoll (Linux, plain TCP).
	DisablePoller bool
	// ResponseTopicPrefix, when set, answers a v5 client that asks for
	// Request Response Information with Response Information
	// "<prefix><client id>/" [MQTT-3.1.2-28]: a topic root for its
	// request/response exchanges. Empty: none is sent, which the spec allows.
	ResponseTopicPrefix string
	// Store makes persistent sessions, their messages and retained
	// messages survive a restart (see broker/store); nil keeps everything
	// in memory. New loads it; Shutdown flushes and closes it.
	Store store.Store
	// SessionTakeover is what a CONNECT gets for a client id whose session
	// belongs to another user (see SessionTakeover); "" is refuse.
	SessionTakeover SessionTakeover
	// Cluster makes the broker one node of a cluster sharing one topic
	// space with the others (broker/cluster); nil runs it alone, with no
	// NATS in any path.
	Cluster *cluster.Config
}

// SessionTakeover says what happens when a client connects with a client
// id whose session another principal owns. A session belongs to the
// principal that created it (Principal.Username: all clients no username
// was checked for, anonymous ones or everyone on an open broker, are one
// principal). Only the owner may resume it or take it over from a live
// connection [MQTT-3.1.4-3].
type SessionTakeover string

const (
	// SessionTakeoverRefuse refuses the CONNECT (v5 CONNACK 0x87 Not
	// authorized, 3.1.1 return code 5); the session and its connection are
	// left alone. The default.
	SessionTakeoverRefuse SessionTakeover = "refuse"
	// SessionTakeoverDiscard ends the owner's connection and session, as a
	// clean start would (its will is published as then), and starts a new
	// session for the newcomer, who gets nothing of the old one.
	SessionTakeoverDiscard SessionTakeover = "discard"
)

// Validate reports a value that is neither refuse nor discard ("" is
// refuse).
func (t SessionTakeover) Validate() error {
	switch t {
	case "", SessionTakeoverRefuse, SessionTakeoverDiscard:
		return nil
	}
	return fmt.Errorf("sessionTakeover %q: want refuse or discard", string(t))
}

// Hooks let an embedder (the admin API's metrics) observe the broker
// without the broker depending on it. Each is called synchronously on the
// hot path, so it must be cheap (an atomic add).
type Hooks struct {
	// ProtocolError is called when a client is disconnected for bad input.
	ProtocolError func(reason string)
}
