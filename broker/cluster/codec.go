package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/fleetmq/fleetmq/broker/outbox"
	"github.com/fleetmq/fleetmq/broker/packets"
)

// A message between nodes: a version byte, the sending node's incarnation
// and sequence number (receivers drop a copy they have seen), the
// expiry and creation times, the publisher's client id, then the message
// as an MQTT v5 PUBLISH packet, which already encodes the topic, QoS,
// retain flag, payload and every forwarded property.
const wireV1 = 1

// encode builds the message with its sequence number left to fill in at
// seqAt (8 bytes, big endian): the sender numbers a message only as it
// hands it to NATS, so numbers go out in order.
func encode(sender string, m *outbox.Message) (b []byte, seqAt int) {
	b = make([]byte, 0, 40+len(sender)+len(m.Origin)+len(m.Topic)+len(m.Payload))
	b = append(b, wireV1)
	b = appendStr(b, sender)
	seqAt = len(b)
	b = binary.BigEndian.AppendUint64(b, 0)
	b = binary.BigEndian.AppendUint64(b, uint64(m.ExpiresAt))
	b = binary.BigEndian.AppendUint64(b, uint64(m.Created))
	b = appendStr(b, m.Origin)
	p := packets.Publish{QoS: m.QoS, Retain: m.Retain, Topic: []byte(m.Topic), Payload: m.Payload, Props: m.Props}
	if m.QoS > 0 {
		p.PacketID = 1 // required on the wire; meaningless here
	}
	return p.Append(b, packets.V5), seqAt
}

var errShort = errors.New("cluster message truncated")

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func readStr(b []byte) (string, []byte, error) {
	l, n := binary.Uvarint(b)
	if n <= 0 || uint64(len(b[n:])) < l {
		return "", nil, errShort
	}
	return string(b[n : n+int(l)]), b[n+int(l):], nil
}

func decode(b []byte) (sender string, seq uint64, m *outbox.Message, err error) {
	if len(b) == 0 || b[0] != wireV1 {
		return "", 0, nil, fmt.Errorf("cluster message: unknown version")
	}
	if sender, b, err = readStr(b[1:]); err != nil {
		return "", 0, nil, err
	}
	if len(b) < 8+16 {
		return "", 0, nil, errShort
	}
	seq = binary.BigEndian.Uint64(b)
	b = b[8:]
	expiresAt := int64(binary.BigEndian.Uint64(b))
	created := int64(binary.BigEndian.Uint64(b[8:]))
	origin, b, err := readStr(b[16:])
	if err != nil {
		return "", 0, nil, err
	}
	first, body, n, err := packets.Frame(b, 0)
	if err != nil {
		return "", 0, nil, fmt.Errorf("cluster message: %w", err)
	}
	if n == 0 {
		return "", 0, nil, errShort
	}
	if packets.Type(first>>4) != packets.PUBLISH {
		return "", 0, nil, errors.New("cluster message: not a PUBLISH")
	}
	var p packets.Publish
	if err := p.Decode(packets.V5, first&0x0F, body); err != nil {
		return "", 0, nil, fmt.Errorf("cluster message: %w", err)
	}
	return sender, seq, &outbox.Message{
		Topic: string(p.Topic), Payload: append([]byte(nil), p.Payload...),
		QoS: p.QoS, Retain: p.Retain, Props: outbox.ForwardedProps(&p.Props),
		ExpiresAt: expiresAt, Created: created, Origin: origin,
	}, nil
}
