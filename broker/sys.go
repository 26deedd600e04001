package broker

import (
	"strconv"
	"time"

	"github.com/fleetmq/fleetmq/broker/outbox"
)

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
		m := &outbox.Message{Topic: v.topic, Payload: []byte(v.value), Retain: true, Created: now.UnixNano()}
		s.publishMessage(nil, m, now)
	}
}
