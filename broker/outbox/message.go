// Package outbox holds what the broker owes one client: the messages kept
// for it, in order, in a bounded queue, and the inflight window of QoS 1/2
// deliveries with their packet ids and handshake state. Message is also how
// the broker keeps a retained message. It knows nothing of sockets or
// sessions' lifetimes.
package outbox

import (
	"time"

	"github.com/fleetmq/fleetmq/broker/packets"
)

// Message is an application message as the broker keeps it once it outlives
// the read buffer it arrived in: queued for an offline session, inflight, or
// retained. It is immutable once built and shared by every session it goes to.
type Message struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
	// Props carries the properties forwarded to subscribers: payload format,
	// content type, response topic, correlation data, user properties. The
	// message expiry interval is kept as ExpiresAt instead.
	Props packets.Properties
	// ExpiresAt is when the message expires (unix nanoseconds); 0 never.
	ExpiresAt int64
	// Origin is the client id of the publisher, for no-local.
	Origin string
	// Created is when the broker received it (unix nanoseconds).
	Created int64
}

// NewMessage copies what a PUBLISH carries into a Message the broker may keep.
func NewMessage(p *packets.Publish, topic string, origin string, now time.Time) *Message {
	m := &Message{
		Topic:   topic,
		Payload: append([]byte(nil), p.Payload...),
		QoS:     p.QoS,
		Retain:  p.Retain,
		Origin:  origin,
		Created: now.UnixNano(),
	}
	m.Props = ForwardedProps(&p.Props)
	if p.Props.HasMessageExpiry {
		m.ExpiresAt = now.Add(time.Duration(p.Props.MessageExpiry) * time.Second).UnixNano()
	}
	return m
}

// ForwardedProps returns a deep copy of the properties a broker passes from a
// PUBLISH to its subscribers [MQTT-3.3.2-4..] (topic alias, subscription
// identifiers and message expiry are per delivery, so they are left out).
func ForwardedProps(in *packets.Properties) packets.Properties {
	var out packets.Properties
	out.PayloadFormat, out.HasPayloadFormat = in.PayloadFormat, in.HasPayloadFormat
	out.ContentType = in.ContentType
	out.ResponseTopic = in.ResponseTopic
	if in.CorrelationData != nil {
		out.CorrelationData = append([]byte(nil), in.CorrelationData...)
	}
	if len(in.User) > 0 {
		out.User = append([]packets.UserProperty(nil), in.User...)
	}
	return out
}

// Expired reports whether m has expired at now (unix nanoseconds).
func (m *Message) Expired(now int64) bool {
	return m.ExpiresAt != 0 && now >= m.ExpiresAt
}
