package packets

import "fmt"

// Decode decodes the body of an UNSUBSCRIBE packet of version v.
func (u *Unsubscribe) Decode(v Version, flags byte, body []byte) error {
	*u = Unsubscribe{}
	if flags != 0x2 {
		// [MQTT-3.10.1-1]: UNSUBSCRIBE flags are 0b0010.
		return errFlags(UNSUBSCRIBE, flags)
	}
	r := reader{b: body}
	var err error
	if u.PacketID, err = r.uint16(); err != nil {
		return fmt.Errorf("decode UNSUBSCRIBE: packet identifier: %w", err)
	}
	if u.PacketID == 0 {
		return errPacketID(UNSUBSCRIBE)
	}
	if v == V5 {
		if err := u.Props.decode(&r, UNSUBSCRIBE, true); err != nil {
			return fmt.Errorf("decode UNSUBSCRIBE: %w", err)
		}
	}
	if r.len() == 0 {
		// At least one filter: [MQTT-3.10.3-2]; 5.0: "An UNSUBSCRIBE packet
		// with no Payload is a Protocol Error".
		return fmt.Errorf("decode UNSUBSCRIBE: %w", ErrEmptySubscribe)
	}
	for r.len() > 0 {
		f, err := readFilter(&r, v)
		if err != nil {
			return fmt.Errorf("decode UNSUBSCRIBE: filter %d: %w", len(u.Filters), err)
		}
		u.Filters = append(u.Filters, f)
	}
	return nil
}

func (u *Unsubscribe) remaining(v Version) int {
	n := 2
	if v == V5 {
		n += u.Props.blockSize(UNSUBSCRIBE)
	}
	for _, f := range u.Filters {
		n += 2 + len(f)
	}
	return n
}

// Size is the number of bytes Append adds.
func (u *Unsubscribe) Size(v Version) int { return packetSize(u.remaining(v)) }

// Append appends the UNSUBSCRIBE packet for version v.
func (u *Unsubscribe) Append(dst []byte, v Version) []byte {
	dst = append(dst, byte(UNSUBSCRIBE)<<4|0x2)
	dst = AppendRemainingLength(dst, u.remaining(v))
	dst = appendUint16(dst, u.PacketID)
	if v == V5 {
		dst = u.Props.appendBlock(dst, UNSUBSCRIBE)
	}
	for _, f := range u.Filters {
		dst = appendString(dst, f)
	}
	return dst
}

// Decode decodes the body of an UNSUBACK packet of version v. In 3.1 and
// 3.1.1 the body is the Packet Identifier alone [MQTT-3.11.2].
func (u *Unsuback) Decode(v Version, flags byte, body []byte) error {
	*u = Unsuback{}
	if flags != 0 {
		return errFlags(UNSUBACK, flags)
	}
	r := reader{b: body}
	var err error
	if u.PacketID, err = r.uint16(); err != nil {
		return fmt.Errorf("decode UNSUBACK: packet identifier: %w", err)
	}
	if u.PacketID == 0 {
		return errPacketID(UNSUBACK)
	}
	if v == V5 {
		if err := u.Props.decode(&r, UNSUBACK, true); err != nil {
			return fmt.Errorf("decode UNSUBACK: %w", err)
		}
		if u.ReasonCodes, err = readCodes(&r, &unsubackCodes); err != nil {
			return fmt.Errorf("decode UNSUBACK: %w", err)
		}
	}
	if r.len() != 0 {
		return fmt.Errorf("decode UNSUBACK: %w", errTrailing)
	}
	return nil
}

func (u *Unsuback) remaining(v Version) int {
	if v != V5 {
		return 2
	}
	return 2 + u.Props.blockSize(UNSUBACK) + len(u.ReasonCodes)
}

// Size is the number of bytes Append adds.
func (u *Unsuback) Size(v Version) int { return packetSize(u.remaining(v)) }

// Append appends the UNSUBACK packet for version v; 3.1.1 has no reason
// codes and no properties.
func (u *Unsuback) Append(dst []byte, v Version) []byte {
	dst = append(dst, byte(UNSUBACK)<<4)
	dst = AppendRemainingLength(dst, u.remaining(v))
	dst = appendUint16(dst, u.PacketID)
	if v == V5 {
		dst = u.Props.appendBlock(dst, UNSUBACK)
		for _, c := range u.ReasonCodes {
			dst = append(dst, byte(c))
		}
	}
	return dst
}
