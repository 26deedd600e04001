package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/fleetmq/fleetmq/broker/outbox"
	"github.com/fleetmq/fleetmq/broker/packets"
	"github.com/fleetmq/fleetmq/broker/topic"
)

// Record formats. Every value starts with a format byte, so a later
// version can read (or refuse) an older one. A message is kept as the v5
// PUBLISH that carries it (the codec is golden-tested and fuzzed) after
// the fields a PUBLISH cannot hold.
//
//	session:      2 | expiry u32 | disconnectedAt i64 | flags (1: owner known) | owner str
//	              (format 1, written before sessions had owners, ends after
//	              disconnectedAt and is read as an unknown owner)
//	subscription: 1 | group str | filter str | qos | id uvarint | flags | retainHandling
//	delivery:     1 | state | packetID u16 | qos | flags | n uvarint | n × subID uvarint | seq u64 | message
//	retained:     1 | message
//	will:         1 | delay u32 | expiryInterval u32 | flags (1: anonymous) | username str | message
//	message:      expiresAt i64 | created i64 | origin str | PUBLISH (v5, packet id 1 when QoS > 0)
//
// str is a uvarint length and the bytes. Keys: sessions by client id;
// subscriptions, deliveries, inbound ids and wills by clientKey (uvarint length +
// client id, so one id is never a prefix of another's keys) and then the
// filter, the big-endian seq or the big-endian packet id (a will: nothing).
const (
	recordV1  = 1
	sessionV2 = 2 // a session record with its owner
)

// Delivery states in a record.
const (
	stateQueued    = 0
	stateAwaitAck  = 1 // outbox.AwaitAck + 1
	stateAwaitComp = 2 // outbox.AwaitComp + 1
)

var errShort = errors.New("record too short")

func clientKey(dst []byte, id string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(id)))
	return append(dst, id...)
}

// splitClientKey returns the client id a key starts with and the rest.
func splitClientKey(k []byte) (id string, rest []byte, err error) {
	n, w := binary.Uvarint(k)
	if w <= 0 || uint64(len(k)-w) < n {
		return "", nil, fmt.Errorf("bad key %x", k)
	}
	return string(k[w : w+int(n)]), k[w+int(n):], nil
}

func appendStr(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// reader decodes a record; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) byte() byte {
	if r.err != nil || len(r.b) < 1 {
		r.fail()
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) u16() uint16 {
	if r.err != nil || len(r.b) < 2 {
		r.fail()
		return 0
	}
	v := binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return v
}

func (r *reader) u32() uint32 {
	if r.err != nil || len(r.b) < 4 {
		r.fail()
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *reader) u64() uint64 {
	if r.err != nil || len(r.b) < 8 {
		r.fail()
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, w := binary.Uvarint(r.b)
	if w <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[w:]
	return v
}

func (r *reader) str() string { return string(r.bytes()) }

// bytes reads a length-prefixed byte string; the result aliases the record.
func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil || uint64(len(r.b)) < n {
		r.fail()
		return nil
	}
	b := r.b[:n:n]
	r.b = r.b[n:]
	return b
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errShort
	}
}

func (r *reader) version() {
	if v := r.byte(); r.err == nil && v != recordV1 {
		r.err = fmt.Errorf("record format %d, want %d", v, recordV1)
	}
}

func encodeSession(expiry uint32, disconnectedAt int64, owner Owner) []byte {
	b := make([]byte, 0, 16+len(owner.Username))
	b = append(b, sessionV2)
	b = binary.BigEndian.AppendUint32(b, expiry)
	b = binary.BigEndian.AppendUint64(b, uint64(disconnectedAt))
	var flags byte
	if owner.Known {
		flags |= 1
	}
	b = append(b, flags)
	return appendStr(b, owner.Username)
}

func decodeSession(v []byte, s *Session) error {
	r := reader{b: v}
	format := r.byte()
	if r.err == nil && format != recordV1 && format != sessionV2 {
		return fmt.Errorf("session record format %d, want %d or %d", format, recordV1, sessionV2)
	}
	s.Expiry = r.u32()
	s.DisconnectedAt = int64(r.u64())
	if format == sessionV2 {
		s.Owner.Known = r.byte()&1 != 0
		s.Owner.Username = r.str()
	}
	return r.err
}

func encodeSubscription(sub topic.Subscription) []byte {
	b := make([]byte, 0, 16+len(sub.Group)+len(sub.Filter))
	b = append(b, recordV1)
	b = appendStr(b, sub.Group)
	b = appendStr(b, sub.Filter)
	b = append(b, sub.QoS)
	b = binary.AppendUvarint(b, uint64(sub.ID))
	var flags byte
	if sub.NoLocal {
		flags |= 1
	}
	if sub.RetainAsPublished {
		flags |= 2
	}
	return append(b, flags, sub.RetainHandling)
}

func decodeSubscription(v []byte) (topic.Subscription, error) {
	r := reader{b: v}
	r.version()
	var sub topic.Subscription
	sub.Group = r.str()
	sub.Filter = r.str()
	sub.QoS = r.byte()
	sub.ID = uint32(r.uvarint())
	flags := r.byte()
	sub.NoLocal, sub.RetainAsPublished = flags&1 != 0, flags&2 != 0
	sub.RetainHandling = r.byte()
	if r.err == nil && (sub.QoS > 2 || sub.Filter == "") {
		r.err = fmt.Errorf("bad subscription %q QoS %d", sub.Filter, sub.QoS)
	}
	return sub, r.err
}

func appendMessage(b []byte, m *outbox.Message) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(m.ExpiresAt))
	b = binary.BigEndian.AppendUint64(b, uint64(m.Created))
	b = appendStr(b, m.Origin)
	p := packets.Publish{QoS: m.QoS, Retain: m.Retain, Topic: []byte(m.Topic), Payload: m.Payload, Props: m.Props}
	if m.QoS > 0 {
		p.PacketID = 1
	}
	return p.Append(b, packets.V5)
}

func (r *reader) message() *outbox.Message {
	expiresAt := int64(r.u64())
	created := int64(r.u64())
	origin := r.str()
	if r.err != nil {
		return nil
	}
	first, body, n, err := packets.Frame(r.b, 0)
	if err == nil && (n == 0 || packets.Type(first>>4) != packets.PUBLISH) {
		err = errors.New("message is not a PUBLISH packet")
	}
	if err != nil {
		r.err = fmt.Errorf("message: %w", err)
		return nil
	}
	var p packets.Publish
	if err := p.Decode(packets.V5, first&0x0F, body); err != nil {
		r.err = fmt.Errorf("message: %w", err)
		return nil
	}
	r.b = r.b[n:]
	m := &outbox.Message{
		Topic: string(p.Topic), Payload: append([]byte(nil), p.Payload...),
		QoS: p.QoS, Retain: p.Retain, Props: outbox.ForwardedProps(&p.Props),
		ExpiresAt: expiresAt, Origin: origin, Created: created,
	}
	return m
}

func encodeDelivery(d *Delivery) []byte {
	m := d.Msg
	b := make([]byte, 0, 64+len(m.Topic)+len(m.Payload)+len(m.Origin))
	b = append(b, recordV1)
	state := byte(stateQueued)
	if d.Inflight {
		state = d.State + 1
	}
	b = append(b, state)
	b = binary.BigEndian.AppendUint16(b, d.PacketID)
	b = append(b, d.QoS)
	var flags byte
	if d.Retain {
		flags |= 1
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(len(d.SubIDs)))
	for _, id := range d.SubIDs {
		b = binary.AppendUvarint(b, uint64(id))
	}
	b = binary.BigEndian.AppendUint64(b, d.Seq)
	return appendMessage(b, m)
}

func decodeDelivery(v []byte) (Delivery, error) {
	r := reader{b: v}
	r.version()
	var d Delivery
	state := r.byte()
	d.PacketID = r.u16()
	d.QoS = r.byte()
	d.Retain = r.byte()&1 != 0
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)) {
		r.fail()
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		d.SubIDs = append(d.SubIDs, uint32(r.uvarint()))
	}
	d.Seq = r.u64()
	d.Msg = r.message()
	if r.err != nil {
		return d, r.err
	}
	switch {
	case state > stateAwaitComp:
		return d, fmt.Errorf("bad delivery state %d", state)
	case d.QoS < 1 || d.QoS > 2:
		return d, fmt.Errorf("bad delivery QoS %d", d.QoS)
	case state != stateQueued && d.PacketID == 0:
		return d, errors.New("inflight delivery without packet id")
	}
	if state != stateQueued {
		d.Inflight, d.State = true, state-1
	}
	return d, nil
}

func encodeRetained(m *outbox.Message) []byte {
	b := make([]byte, 0, 48+len(m.Topic)+len(m.Payload)+len(m.Origin))
	b = append(b, recordV1)
	return appendMessage(b, m)
}

func decodeRetained(v []byte) (*outbox.Message, error) {
	r := reader{b: v}
	r.version()
	m := r.message()
	return m, r.err
}

func encodeWill(w *Will) []byte {
	m := w.Msg
	b := make([]byte, 0, 64+len(w.Username)+len(m.Topic)+len(m.Payload)+len(m.Origin))
	b = append(b, recordV1)
	b = binary.BigEndian.AppendUint32(b, w.Delay)
	b = binary.BigEndian.AppendUint32(b, w.ExpiryInterval)
	var flags byte
	if w.Anonymous {
		flags |= 1
	}
	b = append(b, flags)
	b = appendStr(b, w.Username)
	return appendMessage(b, m)
}

func decodeWill(v []byte) (*Will, error) {
	r := reader{b: v}
	r.version()
	w := &Will{Delay: r.u32(), ExpiryInterval: r.u32()}
	w.Anonymous = r.byte()&1 != 0
	w.Username = r.str()
	w.Msg = r.message()
	if r.err != nil {
		return nil, r.err
	}
	if w.Msg.QoS > 2 || w.Msg.Topic == "" {
		return nil, fmt.Errorf("bad will %q QoS %d", w.Msg.Topic, w.Msg.QoS)
	}
	return w, nil
}
