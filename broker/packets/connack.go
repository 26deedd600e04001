package packets

import "fmt"

// errFlags is the error for a fixed header whose reserved flag bits are not
// the value the spec lists: [MQTT-2.2.2-1], [MQTT-2.2.2-2] in 3.1.1;
// [MQTT-2.1.3-1] in 5.0, where it is a Malformed Packet.
func errFlags(t Type, flags byte) error {
	return fmt.Errorf("decode %v: %w: fixed header 0x%X", t, ErrReservedFlags, flags)
}

// Decode decodes the body of a CONNACK packet of version v.
func (c *Connack) Decode(v Version, flags byte, body []byte) error {
	*c = Connack{}
	if flags != 0 {
		return errFlags(CONNACK, flags)
	}
	r := reader{b: body}
	af, err := r.byte()
	if err != nil {
		return fmt.Errorf("decode CONNACK: acknowledge flags: %w", err)
	}
	if af&^1 != 0 {
		// "Bits 7-1 are reserved and MUST be set to 0" (3.2.2.1).
		return fmt.Errorf("decode CONNACK: %w: acknowledge flags 0x%02X", ErrReservedFlags, af)
	}
	c.SessionPresent = af == 1
	code, err := r.byte()
	if err != nil {
		return fmt.Errorf("decode CONNACK: reason code: %w", err)
	}
	c.ReasonCode = ReasonCode(code)
	valid := &connack311Codes
	if v == V5 {
		valid = &connackCodes
	}
	if !valid.has(c.ReasonCode) {
		return fmt.Errorf("decode CONNACK: %w: 0x%02X", ErrInvalidReasonCode, code)
	}
	if c.SessionPresent && c.ReasonCode != Success {
		// Session Present MUST be 0 with a non-zero code: [MQTT-3.2.2-4]
		// (3.1.1), [MQTT-3.2.2-6] (5.0).
		return fmt.Errorf("decode CONNACK: %w: session present with code 0x%02X", ErrProtocol, code)
	}
	if v == V5 {
		if err := c.Props.decode(&r, CONNACK, true); err != nil {
			return fmt.Errorf("decode CONNACK: %w", err)
		}
	}
	if r.len() != 0 {
		return fmt.Errorf("decode CONNACK: %w", errTrailing)
	}
	return nil
}

func (c *Connack) remaining(v Version) int {
	if v == V5 {
		return 2 + c.Props.blockSize(CONNACK)
	}
	return 2
}

// Size is the number of bytes Append adds.
func (c *Connack) Size(v Version) int { return packetSize(c.remaining(v)) }

// Append appends the CONNACK packet for version v.
func (c *Connack) Append(dst []byte, v Version) []byte {
	dst = append(dst, byte(CONNACK)<<4)
	dst = AppendRemainingLength(dst, c.remaining(v))
	dst = append(dst, boolBit(c.SessionPresent, 1), byte(c.ReasonCode))
	if v == V5 {
		dst = c.Props.appendBlock(dst, CONNACK)
	}
	return dst
}
