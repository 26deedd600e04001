package packets

import "fmt"

// CONNECT flag bits [MQTT-3.1.2.3].
const (
	connectReserved   = 0x01
	connectCleanStart = 0x02
	connectWill       = 0x04
	connectWillQoS    = 0x18
	connectWillRetain = 0x20
	connectPassword   = 0x40
	connectUsername   = 0x80
)

// Decode decodes the body of a CONNECT packet. flags is the low nibble of
// the fixed header. Unlike Publish.Decode it copies every byte slice, so
// the result (the will message in particular) may be kept.
//
// The protocol name and level decide the version: "MQIsdp"/3, "MQTT"/4 and
// "MQTT"/5. For anything else Decode sets ProtocolName and Version and
// returns an error wrapping ErrUnsupportedVersion, so that the broker can
// still answer with a CONNACK [MQTT-3.1.2-2]. Version is set as soon as it
// is read, so it is also available with any later error.
func (c *Connect) Decode(flags byte, body []byte) error {
	*c = Connect{}
	r := reader{b: body}
	name, err := r.utf8()
	if err != nil {
		return fmt.Errorf("decode CONNECT: protocol name: %w", err)
	}
	level, err := r.byte()
	if err != nil {
		return fmt.Errorf("decode CONNECT: protocol level: %w", err)
	}
	c.ProtocolName, c.Version = string(name), Version(level)
	switch {
	case c.ProtocolName == "MQIsdp" && c.Version == V31:
	case c.ProtocolName == "MQTT" && (c.Version == V311 || c.Version == V5):
	default:
		// [MQTT-3.1.2-1], [MQTT-3.1.2-2]
		return fmt.Errorf("decode CONNECT: %w: %q level %d", ErrUnsupportedVersion, c.ProtocolName, level)
	}
	if flags != 0 {
		// [MQTT-2.2.2-1] (3.1.1), [MQTT-2.1.3-1] (5.0)
		return fmt.Errorf("decode CONNECT: %w: fixed header 0x%X", ErrReservedFlags, flags)
	}

	cf, err := r.byte()
	if err != nil {
		return fmt.Errorf("decode CONNECT: flags: %w", err)
	}
	if cf&connectReserved != 0 {
		// "The Server MUST validate that the reserved flag in the CONNECT
		// packet is set to 0" [MQTT-3.1.2-3]; 5.0: a Malformed Packet.
		return fmt.Errorf("decode CONNECT: %w: %w: connect flag bit 0", ErrMalformed, ErrReservedFlags)
	}
	will := cf&connectWill != 0
	willQoS := (cf & connectWillQoS) >> 3
	willRetain := cf&connectWillRetain != 0
	if !will && (willQoS != 0 || willRetain) {
		// Will QoS and Will Retain MUST be 0 when the Will Flag is 0:
		// [MQTT-3.1.2-13], [MQTT-3.1.2-15] in 3.1.1; [MQTT-3.1.2-11],
		// [MQTT-3.1.2-13] in 5.0.
		return fmt.Errorf("decode CONNECT: %w: will QoS or retain without will flag", ErrMalformed)
	}
	if willQoS == 3 {
		// [MQTT-3.1.2-14] (3.1.1); 5.0: "A value of 3 (0x03) is a Malformed
		// Packet" [MQTT-3.1.2-12].
		return fmt.Errorf("decode CONNECT: will: %w", ErrInvalidQoS)
	}
	c.HasUsername = cf&connectUsername != 0
	c.HasPassword = cf&connectPassword != 0
	if c.Version < V5 && c.HasPassword && !c.HasUsername {
		// "If the User Name Flag is set to 0, the Password Flag MUST be set
		// to 0" [MQTT-3.1.2-22]; 5.0 allows a password alone.
		return fmt.Errorf("decode CONNECT: %w: password without user name", ErrMalformed)
	}
	c.CleanStart = cf&connectCleanStart != 0

	if c.KeepAlive, err = r.uint16(); err != nil {
		return fmt.Errorf("decode CONNECT: keep alive: %w", err)
	}
	if c.Version == V5 {
		if err := c.Props.decode(&r, CONNECT, true); err != nil {
			return fmt.Errorf("decode CONNECT: %w", err)
		}
	}
	// [MQTT-3.1.3-4]: the Client Identifier is a UTF-8 Encoded String. Its
	// length and characters are the broker's business [MQTT-3.1.3-5].
	if c.ClientID, err = r.string(); err != nil {
		return fmt.Errorf("decode CONNECT: client identifier: %w", err)
	}
	if will {
		w := &Will{QoS: willQoS, Retain: willRetain}
		if c.Version == V5 {
			if err := w.Props.decode(&r, willProps, true); err != nil {
				return fmt.Errorf("decode CONNECT: %w", err)
			}
		}
		topic, err := r.utf8()
		if err != nil {
			return fmt.Errorf("decode CONNECT: will topic: %w", err)
		}
		// The will topic is the Topic Name of the will PUBLISH:
		// [MQTT-3.1.3-11], no wildcards [MQTT-3.3.2-2], not empty
		// [MQTT-4.7.3-1].
		if len(topic) == 0 || !ValidTopicName(topic) {
			return fmt.Errorf("decode CONNECT: will topic %q: %w", topic, ErrTopicNameInvalid)
		}
		w.Topic = string(topic)
		if w.Payload, err = r.binaryCopy(); err != nil {
			return fmt.Errorf("decode CONNECT: will payload: %w", err)
		}
		c.Will = w
	}
	if c.HasUsername {
		// [MQTT-3.1.3-11] (3.1.1) / [MQTT-3.1.3-12] (5.0): UTF-8 string.
		if c.Username, err = r.string(); err != nil {
			return fmt.Errorf("decode CONNECT: user name: %w", err)
		}
	}
	if c.HasPassword {
		if c.Password, err = r.binaryCopy(); err != nil {
			return fmt.Errorf("decode CONNECT: password: %w", err)
		}
	}
	if r.len() != 0 {
		return fmt.Errorf("decode CONNECT: %w", errTrailing)
	}
	return nil
}

func (c *Connect) protocolName() string {
	if c.ProtocolName != "" {
		return c.ProtocolName
	}
	if c.Version == V31 {
		return "MQIsdp"
	}
	return "MQTT"
}

func (c *Connect) remaining() int {
	n := 2 + len(c.protocolName()) + 1 + 1 + 2 + 2 + len(c.ClientID)
	if c.Version == V5 {
		n += c.Props.blockSize(CONNECT)
	}
	if c.Will != nil {
		if c.Version == V5 {
			n += c.Will.Props.blockSize(willProps)
		}
		n += 2 + len(c.Will.Topic) + 2 + len(c.Will.Payload)
	}
	if c.HasUsername {
		n += 2 + len(c.Username)
	}
	if c.HasPassword {
		n += 2 + len(c.Password)
	}
	return n
}

// Size is the number of bytes Append adds.
func (c *Connect) Size() int { return packetSize(c.remaining()) }

// Append appends the CONNECT packet for c.Version. An empty ProtocolName is
// written as "MQIsdp" for 3.1 and "MQTT" otherwise. Append does not
// validate c.
func (c *Connect) Append(dst []byte) []byte {
	dst = append(dst, byte(CONNECT)<<4)
	dst = AppendRemainingLength(dst, c.remaining())
	dst = appendString(dst, c.protocolName())
	dst = append(dst, byte(c.Version))
	cf := boolBit(c.CleanStart, connectCleanStart) |
		boolBit(c.HasUsername, connectUsername) |
		boolBit(c.HasPassword, connectPassword)
	if c.Will != nil {
		cf |= connectWill | (c.Will.QoS&3)<<3 | boolBit(c.Will.Retain, connectWillRetain)
	}
	dst = append(dst, cf)
	dst = appendUint16(dst, c.KeepAlive)
	if c.Version == V5 {
		dst = c.Props.appendBlock(dst, CONNECT)
	}
	dst = appendString(dst, c.ClientID)
	if c.Will != nil {
		if c.Version == V5 {
			dst = c.Will.Props.appendBlock(dst, willProps)
		}
		dst = appendString(dst, c.Will.Topic)
		dst = appendString(dst, c.Will.Payload)
	}
	if c.HasUsername {
		dst = appendString(dst, c.Username)
	}
	if c.HasPassword {
		dst = appendString(dst, c.Password)
	}
	return dst
}
