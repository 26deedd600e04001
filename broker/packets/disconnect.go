package packets

import "fmt"

// Decode decodes the body of a DISCONNECT packet of version v. In 3.1 and
// 3.1.1 the body is empty. In 5.0 an empty body is Normal Disconnection and
// a one-byte body a reason code without properties (3.14.2.1, 3.14.2.2.1).
func (d *Disconnect) Decode(v Version, flags byte, body []byte) error {
	*d = Disconnect{}
	if v != V5 {
		return DecodeEmpty(DISCONNECT, flags, body)
	}
	if flags != 0 {
		return errFlags(DISCONNECT, flags)
	}
	r := reader{b: body}
	if r.len() == 0 {
		return nil
	}
	code, _ := r.byte()
	d.ReasonCode = ReasonCode(code)
	if !disconnectCodes.has(d.ReasonCode) {
		return fmt.Errorf("decode DISCONNECT: %w: 0x%02X", ErrInvalidReasonCode, code)
	}
	if r.len() > 0 {
		if err := d.Props.decode(&r, DISCONNECT, true); err != nil {
			return fmt.Errorf("decode DISCONNECT: %w", err)
		}
	}
	if r.len() != 0 {
		return fmt.Errorf("decode DISCONNECT: %w", errTrailing)
	}
	return nil
}

func (d *Disconnect) remaining(v Version) int {
	if v != V5 {
		return 0
	}
	if ps := d.Props.Size(DISCONNECT); ps > 0 {
		return 1 + RemainingLengthSize(ps) + ps
	}
	if d.ReasonCode != Success {
		return 1
	}
	return 0
}

// Size is the number of bytes Append adds.
func (d *Disconnect) Size(v Version) int { return packetSize(d.remaining(v)) }

// Append appends the DISCONNECT packet for version v in its shortest form:
// 0xE0 0x00 for 3.1.1 and for a 5.0 Normal Disconnection without
// properties.
func (d *Disconnect) Append(dst []byte, v Version) []byte {
	rl := d.remaining(v)
	dst = append(dst, byte(DISCONNECT)<<4)
	dst = AppendRemainingLength(dst, rl)
	if rl > 0 {
		dst = append(dst, byte(d.ReasonCode))
	}
	if rl > 1 {
		dst = d.Props.appendBlock(dst, DISCONNECT)
	}
	return dst
}

// Decode decodes the body of a 5.0 AUTH packet. An empty body is Success
// without properties (3.15.2.1); otherwise the reason code and the property
// length are both present. AUTH does not exist before 5.0: there, type 15
// is reserved.
func (a *Auth) Decode(v Version, flags byte, body []byte) error {
	*a = Auth{}
	if v != V5 {
		return fmt.Errorf("decode AUTH: %w: AUTH in version %d", ErrUnknownPacketType, v)
	}
	if flags != 0 {
		return errFlags(AUTH, flags)
	}
	r := reader{b: body}
	if r.len() == 0 {
		return nil
	}
	code, _ := r.byte()
	a.ReasonCode = ReasonCode(code)
	if !authCodes.has(a.ReasonCode) {
		return fmt.Errorf("decode AUTH: %w: 0x%02X", ErrInvalidReasonCode, code)
	}
	if err := a.Props.decode(&r, AUTH, true); err != nil {
		return fmt.Errorf("decode AUTH: %w", err)
	}
	if r.len() != 0 {
		return fmt.Errorf("decode AUTH: %w", errTrailing)
	}
	return nil
}

func (a *Auth) remaining(v Version) int {
	if a.ReasonCode == Success && a.Props.Size(AUTH) == 0 {
		return 0
	}
	return 1 + a.Props.blockSize(AUTH)
}

// Size is the number of bytes Append adds.
func (a *Auth) Size(v Version) int { return packetSize(a.remaining(v)) }

// Append appends the AUTH packet; v is accepted for symmetry and must be
// V5.
func (a *Auth) Append(dst []byte, v Version) []byte {
	rl := a.remaining(v)
	dst = append(dst, byte(AUTH)<<4)
	dst = AppendRemainingLength(dst, rl)
	if rl > 0 {
		dst = append(dst, byte(a.ReasonCode))
		dst = a.Props.appendBlock(dst, AUTH)
	}
	return dst
}

// DecodeEmpty checks a packet that has no body: PINGREQ, PINGRESP and the
// 3.1/3.1.1 DISCONNECT. t only names the packet in the error. Flags must be
// 0 [MQTT-2.2.2-1] and the remaining length 0 (3.12.1, 3.13.1, 3.14.1).
func DecodeEmpty(t Type, flags byte, body []byte) error {
	if flags != 0 {
		return errFlags(t, flags)
	}
	if len(body) != 0 {
		return fmt.Errorf("decode %v: %w: %d bytes of body", t, ErrMalformed, len(body))
	}
	return nil
}

// AppendEmpty appends a packet without a body: PINGREQ or PINGRESP (or a
// 3.1.1 DISCONNECT).
func AppendEmpty(dst []byte, t Type) []byte {
	return append(dst, byte(t)<<4, 0)
}
