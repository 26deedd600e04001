package broker

import (
	"sync/atomic"
	"time"
)

// Stats are the broker's counters. Each is an atomic so the hot path never
// locks to count.
type Stats struct {
	ClientsConnected atomic.Int64
	ConnectsTotal    atomic.Int64

	MessagesReceived [3]atomic.Int64 // by QoS
	MessagesSent     [3]atomic.Int64 // by QoS
	BytesReceived    atomic.Int64
	BytesSent        atomic.Int64

	// MessagesDropped counts deliveries lost to a bounded queue, a slow
	// consumer, a client's maximum packet size or expiry.
	MessagesDropped atomic.Int64
	ProtocolErrors  atomic.Int64
	AuthFailures    atomic.Int64
	PublishDenied   atomic.Int64
	SubscribeDenied atomic.Int64
	DeliveryDenied  atomic.Int64
	Revoked         atomic.Int64
	// TakeoverRefused and TakeoverDiscarded count CONNECTs for a session
	// another user owns, refused or given a fresh session
	// (Options.SessionTakeover).
	TakeoverRefused   atomic.Int64
	TakeoverDiscarded atomic.Int64

	// Unauthenticated is how many connections have not completed CONNECT
	// yet (a gauge, bounded by Limits.MaxUnauthenticated).
	Unauthenticated atomic.Int64
	// ConnectTimeouts counts connections closed for not completing
	// CONNECT within Limits.ConnectTimeout.
	ConnectTimeouts atomic.Int64
	// ConnectTooLarge counts first packets refused for exceeding
	// Limits.MaxConnectPacketSize.
	ConnectTooLarge atomic.Int64
	// UnauthenticatedRefused counts sockets closed at accept because
	// Limits.MaxUnauthenticated connections were already waiting.
	UnauthenticatedRefused atomic.Int64
	// ReadsThrottled counts the times a connection's reader stopped
	// taking packets because its output was past Limits.MaxPendingBytes.
	ReadsThrottled atomic.Int64
	// SubscriptionQuotaExceeded and RetainedQuotaExceeded count requests
	// refused by Limits.MaxSubscriptionsPerClient and the retained limits.
	SubscriptionQuotaExceeded atomic.Int64
	RetainedQuotaExceeded     atomic.Int64
	// ConnectionQuotaExceeded and PublishRateExceeded count CONNECTs and
	// PUBLISHes refused by a user's maxConnections and publishRate
	// (userlimits.go).
	ConnectionQuotaExceeded atomic.Int64
	PublishRateExceeded     atomic.Int64
	// WillsRevoked, WillsReservedTopic and WillsDenied count wills
	// discarded: their session was revoked by a reload, their topic is a
	// $-topic, or their publisher may not publish there.
	WillsRevoked       atomic.Int64
	WillsReservedTopic atomic.Int64
	WillsDenied        atomic.Int64
	// AuthThrottledSource and AuthThrottledUser count CONNECTs refused
	// without a password check because their source address or username
	// failed too often lately; AuthBusy those refused because no hashing
	// slot came free in time (authguard.go).
	AuthThrottledSource atomic.Int64
	AuthThrottledUser   atomic.Int64
	AuthBusy            atomic.Int64
}

// StatsSnapshot is a copy of the counters at one moment.
type StatsSnapshot struct {
	Uptime           time.Duration
	ClientsConnected int64
	ConnectsTotal    int64
	Sessions         int
	Subscriptions    int
	Retained         int
	MessagesReceived [3]int64
	MessagesSent     [3]int64
	BytesReceived    int64
	BytesSent        int64
	MessagesDropped  int64
	ProtocolErrors   int64
	AuthFailures     int64
	PublishDenied    int64
	SubscribeDenied  int64
	DeliveryDenied   int64
	Revoked          int64
	// TakeoverRefused, TakeoverDiscarded: see Stats.
	TakeoverRefused   int64
	TakeoverDiscarded int64

	Unauthenticated        int64
	ConnectTimeouts        int64
	ConnectTooLarge        int64
	UnauthenticatedRefused int64
	ReadsThrottled         int64
	// RetainedBytes is what the retained messages weigh, as the retained
	// limits count it.
	RetainedBytes             int64
	SubscriptionQuotaExceeded int64
	RetainedQuotaExceeded     int64
	ConnectionQuotaExceeded   int64
	PublishRateExceeded       int64
	// WillsRevoked, WillsReservedTopic, WillsDenied: see Stats.
	WillsRevoked        int64
	WillsReservedTopic  int64
	WillsDenied         int64
	AuthThrottledSource int64
	AuthThrottledUser   int64
	AuthBusy            int64
}

func (st *Stats) snapshot(s *Server) StatsSnapshot {
	s.mu.Lock()
	sessions := len(s.sessions)
	s.mu.Unlock()
	out := StatsSnapshot{
		Uptime:           time.Since(s.started),
		ClientsConnected: st.ClientsConnected.Load(),
		ConnectsTotal:    st.ConnectsTotal.Load(),
		Sessions:         sessions,
		Subscriptions:    s.index.Count(),
		Retained:         s.retained.Len(),
		BytesReceived:    st.BytesReceived.Load(),
		BytesSent:        st.BytesSent.Load(),
		MessagesDropped:  st.MessagesDropped.Load(),
		ProtocolErrors:   st.ProtocolErrors.Load(),
		AuthFailures:     st.AuthFailures.Load(),
		PublishDenied:    st.PublishDenied.Load(),
		SubscribeDenied:  st.SubscribeDenied.Load(),
		DeliveryDenied:   st.DeliveryDenied.Load(),
		Revoked:          st.Revoked.Load(),

		Unauthenticated:           st.Unauthenticated.Load(),
		ConnectTimeouts:           st.ConnectTimeouts.Load(),
		ConnectTooLarge:           st.ConnectTooLarge.Load(),
		UnauthenticatedRefused:    st.UnauthenticatedRefused.Load(),
		ReadsThrottled:            st.ReadsThrottled.Load(),
		RetainedBytes:             s.retainedBytes(),
		SubscriptionQuotaExceeded: st.SubscriptionQuotaExceeded.Load(),
		RetainedQuotaExceeded:     st.RetainedQuotaExceeded.Load(),
		WillsRevoked:              st.WillsRevoked.Load(),
		WillsReservedTopic:        st.WillsReservedTopic.Load(),
		WillsDenied:               st.WillsDenied.Load(),
		AuthThrottledSource:       st.AuthThrottledSource.Load(),
		AuthThrottledUser:         st.AuthThrottledUser.Load(),
		AuthBusy:                  st.AuthBusy.Load(),
	}
	out.ConnectionQuotaExceeded = st.ConnectionQuotaExceeded.Load()
	out.PublishRateExceeded = st.PublishRateExceeded.Load()
	out.TakeoverRefused = st.TakeoverRefused.Load()
	out.TakeoverDiscarded = st.TakeoverDiscarded.Load()
	for q := range 3 {
		out.MessagesReceived[q] = st.MessagesReceived[q].Load()
		out.MessagesSent[q] = st.MessagesSent[q].Load()
	}
	return out
}
