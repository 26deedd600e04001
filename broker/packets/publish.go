package packets

import "fmt"

// PUBLISH fixed header flags [MQTT-3.3.1].
const (
	publishRetain = 0x01
	publishQoS    = 0x06
	publishDup    = 0x08
)

var (
	errPublishQoS3  = fmt.Errorf("decode PUBLISH: %w: %w", ErrMalformed, ErrInvalidQoS)
	errPublishDup   = fmt.Errorf("decode PUBLISH: %w: DUP set with QoS 0", ErrProtocol)
	errPublishID    = fmt.Errorf("decode PUBLISH: %w", ErrInvalidPacketID)
	errPublishTopic = fmt.Errorf("decode PUBLISH: topic: %w", ErrTopicNameInvalid)
	errPublishAlias = fmt.Errorf("decode PUBLISH: %w: %w: empty topic without topic alias", ErrProtocol, ErrTopicNameInvalid)
)

// Decode decodes the body of a PUBLISH packet of version v. Topic, Payload
// and Props.CorrelationData alias body; use Clone to keep the packet.
// Decoding a packet without strings or user properties allocates nothing.
func (p *Publish) Decode(v Version, flags byte, body []byte) error {
	*p = Publish{
		Dup:    flags&publishDup != 0,
		QoS:    (flags & publishQoS) >> 1,
		Retain: flags&publishRetain != 0,
	}
	if p.QoS == 3 {
		// "A PUBLISH Packet MUST NOT have both QoS bits set to 1"
		// [MQTT-3.3.1-4]; 5.0: a Malformed Packet.
		return errPublishQoS3
	}
	if p.Dup && p.QoS == 0 {
		// "The DUP flag MUST be set to 0 for all QoS 0 messages" [MQTT-3.3.1-2].
		return errPublishDup
	}
	r := reader{b: body}
	topic, err := r.binary()
	if err != nil {
		return fmt.Errorf("decode PUBLISH: topic: %w", err)
	}
	// [MQTT-3.3.2-1]: a UTF-8 Encoded String; [MQTT-3.3.2-2]: no wildcards.
	if !ValidUTF8(topic) {
		return fmt.Errorf("decode PUBLISH: topic: %w", ErrInvalidUTF8)
	}
	if hasWildcard(topic) {
		return errPublishTopic
	}
	p.Topic = topic
	if p.QoS > 0 {
		if p.PacketID, err = r.uint16(); err != nil {
			return fmt.Errorf("decode PUBLISH: packet identifier: %w", err)
		}
		// A non-zero Packet Identifier when QoS > 0 [MQTT-2.3.1-1] (3.1.1),
		// [MQTT-2.2.1-3] (5.0).
		if p.PacketID == 0 {
			return errPublishID
		}
	}
	if v == V5 {
		if err := p.Props.decode(&r, PUBLISH, false); err != nil {
			return fmt.Errorf("decode PUBLISH: %w", err)
		}
	}
	if len(topic) == 0 {
		if v < V5 {
			// "All Topic Names and Topic Filters MUST be at least one
			// character long" [MQTT-4.7.3-1].
			return errPublishTopic
		}
		if !p.Props.HasTopicAlias {
			// "It is a Protocol Error if the Topic Name is zero length and
			// there is no Topic Alias" (3.3.2.1).
			return errPublishAlias
		}
	}
	if r.len() > 0 {
		p.Payload = body[r.i:len(body):len(body)]
	}
	return nil
}

// remaining returns the remaining length and, for v5, the size of the
// property block without its length prefix.
func (p *Publish) remaining(v Version) (rl, props int) {
	rl = 2 + len(p.Topic) + len(p.Payload)
	if p.QoS > 0 {
		rl += 2
	}
	if v == V5 {
		props = p.Props.Size(PUBLISH)
		rl += RemainingLengthSize(props) + props
	}
	return rl, props
}

// Size is the number of bytes Append adds.
func (p *Publish) Size(v Version) int {
	rl, _ := p.remaining(v)
	return packetSize(rl)
}

// Append appends the PUBLISH packet for version v. The Packet Identifier is
// written only when QoS > 0. Append allocates nothing when dst has room.
func (p *Publish) Append(dst []byte, v Version) []byte {
	dst = append(dst, byte(PUBLISH)<<4|boolBit(p.Dup, publishDup)|(p.QoS&3)<<1|boolBit(p.Retain, publishRetain))
	rl, props := p.remaining(v)
	dst = AppendRemainingLength(dst, rl)
	dst = appendString(dst, p.Topic)
	if p.QoS > 0 {
		dst = appendUint16(dst, p.PacketID)
	}
	if v == V5 {
		dst = p.Props.appendSized(dst, PUBLISH, props)
	}
	return append(dst, p.Payload...)
}

// Clone returns a deep copy of p that does not alias the decode buffer.
// Topic and Payload share one new allocation.
func (p *Publish) Clone() *Publish {
	c := *p
	c.Props = p.Props.Clone()
	if n := len(p.Topic) + len(p.Payload); n > 0 {
		buf := make([]byte, 0, n)
		buf = append(buf, p.Topic...)
		buf = append(buf, p.Payload...)
		c.Topic = cloneInto(buf[:len(p.Topic):len(p.Topic)], p.Topic)
		c.Payload = cloneInto(buf[len(p.Topic):n:n], p.Payload)
	} else {
		c.Topic = cloneBytes(p.Topic)
		c.Payload = cloneBytes(p.Payload)
	}
	return &c
}

// cloneInto returns b (a copy of orig) but nil when orig is nil, so a clone
// compares equal to its original with reflect.DeepEqual.
func cloneInto(b, orig []byte) []byte {
	if orig == nil {
		return nil
	}
	return b
}
