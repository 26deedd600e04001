package broker

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/fleetmq/fleetmq/broker/packets"
	"github.com/fleetmq/fleetmq/broker/session"
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
	}
	for q := range 3 {
		out.MessagesReceived[q] = st.MessagesReceived[q].Load()
		out.MessagesSent[q] = st.MessagesSent[q].Load()
	}
	return out
}

// sysLoop publishes $SYS/broker/... statistics, retained, every interval,
// as Mosquitto does, so a dashboard subscribing late sees current values.
func (s *Server) sysLoop(every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	s.publishSys()
	for {
		select {
		case <-s.sysStop:
			return
		case <-t.C:
			s.publishSys()
		}
	}
}

func (s *Server) publishSys() {
	snap := s.Stats()
	var recv, sent int64
	for q := range 3 {
		recv += snap.MessagesReceived[q]
		sent += snap.MessagesSent[q]
	}
	values := [...]struct {
		topic, value string
	}{
		{"$SYS/broker/version", "fleetmq " + s.opts.Version},
		{"$SYS/broker/uptime", strconv.FormatInt(int64(snap.Uptime/time.Second), 10) + " seconds"},
		{"$SYS/broker/clients/connected", strconv.FormatInt(snap.ClientsConnected, 10)},
		{"$SYS/broker/clients/total", strconv.Itoa(snap.Sessions)},
		{"$SYS/broker/subscriptions/count", strconv.Itoa(snap.Subscriptions)},
		{"$SYS/broker/retained messages/count", strconv.Itoa(snap.Retained)},
		{"$SYS/broker/messages/received", strconv.FormatInt(recv, 10)},
		{"$SYS/broker/messages/sent", strconv.FormatInt(sent, 10)},
		{"$SYS/broker/messages/dropped", strconv.FormatInt(snap.MessagesDropped, 10)},
		{"$SYS/broker/bytes/received", strconv.FormatInt(snap.BytesReceived, 10)},
		{"$SYS/broker/bytes/sent", strconv.FormatInt(snap.BytesSent, 10)},
	}
	now := time.Now()
	for _, v := range values {
		m := &session.Message{Topic: v.topic, Payload: []byte(v.value), Retain: true, Created: now.UnixNano()}
		s.publishMessage(nil, m, now)
	}
}

// internalPublish routes a message the broker itself originates (wills,
// $SYS) through the same path as a client's.
func (s *Server) publishMessage(origin *clientState, m *session.Message, now time.Time) int {
	r := routed{
		pub:    packets.Publish{QoS: m.QoS, Retain: m.Retain, Topic: bytesOf(m.Topic), Payload: m.Payload, Props: m.Props},
		topic:  bytesOf(m.Topic),
		origin: origin,
		now:    now,
		msg:    m,
	}
	return s.route(&r)
}
