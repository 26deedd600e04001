package packets

import "fmt"

// errPacketID is the error for a Packet Identifier of 0. SUBSCRIBE,
// UNSUBSCRIBE and PUBLISH with QoS > 0 MUST carry a non-zero one
// [MQTT-2.3.1-1] (3.1.1), [MQTT-2.2.1-3] (5.0); the acknowledgements echo
// it, so 0 cannot be valid there either.
func errPacketID(t Type) error { return fmt.Errorf("decode %v: %w", t, ErrInvalidPacketID) }

// ackFlags is the fixed header flags of an acknowledgement: PUBREL is
// 0b0010 [MQTT-3.6.1-1], the others 0.
func ackFlags(t Type) byte {
	if t == PUBREL {
		return 0x2
	}
	return 0
}

// Decode decodes the body of a PUBACK, PUBREC, PUBREL or PUBCOMP packet
// (t) of version v. In 5.0 a remaining length of 2 means Success with no
// properties and 3 a reason code with no properties (3.4.2.1, 3.4.2.2.1).
func (a *Ack) Decode(v Version, t Type, flags byte, body []byte) error {
	*a = Ack{Type: t}
	if t < PUBACK || t > PUBCOMP {
		return fmt.Errorf("decode ack: %w: %v is not an acknowledgement", ErrUnknownPacketType, t)
	}
	if flags != ackFlags(t) {
		return errFlags(t, flags)
	}
	r := reader{b: body}
	var err error
	if a.PacketID, err = r.uint16(); err != nil {
		return fmt.Errorf("decode %v: packet identifier: %w", t, err)
	}
	if a.PacketID == 0 {
		return errPacketID(t)
	}
	if v == V5 && r.len() > 0 {
		code, _ := r.byte()
		a.ReasonCode = ReasonCode(code)
		valid := &pubackCodes
		if t == PUBREL || t == PUBCOMP {
			valid = &pubrelCodes
		}
		if !valid.has(a.ReasonCode) {
			return fmt.Errorf("decode %v: %w: 0x%02X", t, ErrInvalidReasonCode, code)
		}
		if r.len() > 0 {
			if err := a.Props.decode(&r, t, true); err != nil {
				return fmt.Errorf("decode %v: %w", t, err)
			}
		}
	}
	if r.len() != 0 {
		return fmt.Errorf("decode %v: %w", t, errTrailing)
	}
	return nil
}

func (a *Ack) remaining(v Version) int {
	if v != V5 {
		return 2
	}
	if ps := a.Props.Size(a.Type); ps > 0 {
		return 3 + RemainingLengthSize(ps) + ps
	}
	if a.ReasonCode != Success {
		return 3
	}
	return 2
}

// Size is the number of bytes Append adds.
func (a *Ack) Size(v Version) int { return packetSize(a.remaining(v)) }

// Append appends the acknowledgement a.Type in its shortest form for
// version v: in 5.0, Success without properties is 2 bytes of body and
// another reason code without properties 3.
func (a *Ack) Append(dst []byte, v Version) []byte {
	rl := a.remaining(v)
	dst = append(dst, byte(a.Type)<<4|ackFlags(a.Type))
	dst = AppendRemainingLength(dst, rl)
	dst = appendUint16(dst, a.PacketID)
	if rl > 2 {
		dst = append(dst, byte(a.ReasonCode))
	}
	if rl > 3 {
		dst = a.Props.appendBlock(dst, a.Type)
	}
	return dst
}
