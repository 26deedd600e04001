package packets

import "fmt"

// Decode decodes the body of a SUBSCRIBE packet of version v.
func (s *Subscribe) Decode(v Version, flags byte, body []byte) error {
	*s = Subscribe{}
	if flags != 0x2 {
		// [MQTT-3.8.1-1]: SUBSCRIBE flags are 0b0010.
		return errFlags(SUBSCRIBE, flags)
	}
	r := reader{b: body}
	var err error
	if s.PacketID, err = r.uint16(); err != nil {
		return fmt.Errorf("decode SUBSCRIBE: packet identifier: %w", err)
	}
	if s.PacketID == 0 {
		return errPacketID(SUBSCRIBE)
	}
	if v == V5 {
		if err := s.Props.decode(&r, SUBSCRIBE, true); err != nil {
			return fmt.Errorf("decode SUBSCRIBE: %w", err)
		}
	}
	if r.len() == 0 {
		// At least one filter: [MQTT-3.8.3-3] (3.1.1); 5.0 [MQTT-3.8.3-2]:
		// "A SUBSCRIBE packet with no Payload is a Protocol Error".
		return fmt.Errorf("decode SUBSCRIBE: %w", ErrEmptySubscribe)
	}
	for r.len() > 0 {
		var sub Subscription
		if sub.Filter, err = readFilter(&r, v); err != nil {
			return fmt.Errorf("decode SUBSCRIBE: filter %d: %w", len(s.Subscriptions), err)
		}
		opts, err := r.byte()
		if err != nil {
			return fmt.Errorf("decode SUBSCRIBE: options %d: %w", len(s.Subscriptions), err)
		}
		if err := sub.SubOptions.decode(opts, v, sub.Filter); err != nil {
			return fmt.Errorf("decode SUBSCRIBE: %q: %w", sub.Filter, err)
		}
		s.Subscriptions = append(s.Subscriptions, sub)
	}
	return nil
}

// readFilter reads a Topic Filter and checks it: UTF-8 (Malformed),
// wildcards, and in 5.0 the shared subscription form.
func readFilter(r *reader, v Version) (string, error) {
	b, err := r.utf8()
	if err != nil {
		return "", err
	}
	f := string(b)
	if !ValidTopicFilter(f) {
		return "", fmt.Errorf("%q: %w", f, ErrTopicFilterInvalid)
	}
	if v == V5 {
		if _, ok := validSharedFilter(f); !ok {
			return "", fmt.Errorf("%q: %w: shared subscription", f, ErrTopicFilterInvalid)
		}
	}
	return f, nil
}

func (o *SubOptions) decode(b byte, v Version, filter string) error {
	o.QoS = b & 0x03
	if v < V5 {
		// "The Server MUST treat a SUBSCRIBE packet as malformed and close the
		// Network Connection if any of Reserved bits in the payload are
		// non-zero, or QoS is not 0,1 or 2" [MQTT-3-8.3-4] (3.1.1).
		if b&^0x03 != 0 {
			return fmt.Errorf("%w: options 0x%02X", ErrReservedFlags, b)
		}
		if o.QoS == 3 {
			return fmt.Errorf("%w: %w", ErrMalformed, ErrInvalidQoS)
		}
		return nil
	}
	o.NoLocal = b&0x04 != 0
	o.RetainAsPublished = b&0x08 != 0
	o.RetainHandling = (b >> 4) & 0x03
	if b&0xC0 != 0 {
		// "The Server MUST treat a SUBSCRIBE packet as malformed if any of
		// Reserved bits in the Payload are non-zero" [MQTT-3.8.3-5].
		return fmt.Errorf("%w: options 0x%02X", ErrReservedFlags, b)
	}
	if o.QoS == 3 {
		// "It is a Protocol Error if the Maximum QoS field has the value 3"
		// (3.8.3.1).
		return fmt.Errorf("%w: %w", ErrProtocol, ErrInvalidQoS)
	}
	if o.RetainHandling == 3 {
		// "It is a Protocol Error to send a Retain Handling value of 3"
		// (3.8.3.1).
		return fmt.Errorf("%w: retain handling 3", ErrProtocol)
	}
	if shared, _ := validSharedFilter(filter); shared && o.NoLocal {
		// "It is a Protocol Error to set the No Local bit to 1 on a Shared
		// Subscription" [MQTT-3.8.3-4].
		return fmt.Errorf("%w: no local on a shared subscription", ErrProtocol)
	}
	return nil
}

func (o *SubOptions) byte(v Version) byte {
	b := o.QoS & 3
	if v == V5 {
		b |= boolBit(o.NoLocal, 0x04) | boolBit(o.RetainAsPublished, 0x08) | (o.RetainHandling&3)<<4
	}
	return b
}

func (s *Subscribe) remaining(v Version) int {
	n := 2
	if v == V5 {
		n += s.Props.blockSize(SUBSCRIBE)
	}
	for _, sub := range s.Subscriptions {
		n += 3 + len(sub.Filter)
	}
	return n
}

// Size is the number of bytes Append adds.
func (s *Subscribe) Size(v Version) int { return packetSize(s.remaining(v)) }

// Append appends the SUBSCRIBE packet for version v. In 3.1 and 3.1.1 only
// the QoS of each SubOptions is written.
func (s *Subscribe) Append(dst []byte, v Version) []byte {
	dst = append(dst, byte(SUBSCRIBE)<<4|0x2)
	dst = AppendRemainingLength(dst, s.remaining(v))
	dst = appendUint16(dst, s.PacketID)
	if v == V5 {
		dst = s.Props.appendBlock(dst, SUBSCRIBE)
	}
	for i := range s.Subscriptions {
		sub := &s.Subscriptions[i]
		dst = appendString(dst, sub.Filter)
		dst = append(dst, sub.SubOptions.byte(v))
	}
	return dst
}

// Decode decodes the body of a SUBACK packet of version v.
func (s *Suback) Decode(v Version, flags byte, body []byte) error {
	*s = Suback{}
	if flags != 0 {
		return errFlags(SUBACK, flags)
	}
	r := reader{b: body}
	var err error
	if s.PacketID, err = r.uint16(); err != nil {
		return fmt.Errorf("decode SUBACK: packet identifier: %w", err)
	}
	if s.PacketID == 0 {
		return errPacketID(SUBACK)
	}
	valid := &suback311Codes
	if v == V5 {
		valid = &subackCodes
		if err := s.Props.decode(&r, SUBACK, true); err != nil {
			return fmt.Errorf("decode SUBACK: %w", err)
		}
	}
	codes, err := readCodes(&r, valid)
	if err != nil {
		return fmt.Errorf("decode SUBACK: %w", err)
	}
	s.ReasonCodes = codes
	return nil
}

// readCodes reads the rest of the body as reason codes, each in valid.
func readCodes(r *reader, valid *reasonSet) ([]ReasonCode, error) {
	if r.len() == 0 {
		return nil, nil
	}
	codes := make([]ReasonCode, r.len())
	for i, c := range r.b[r.i:] {
		if !valid.has(ReasonCode(c)) {
			return nil, fmt.Errorf("%w: 0x%02X", ErrInvalidReasonCode, c)
		}
		codes[i] = ReasonCode(c)
	}
	r.i = len(r.b)
	return codes, nil
}

func (s *Suback) remaining(v Version) int {
	n := 2 + len(s.ReasonCodes)
	if v == V5 {
		n += s.Props.blockSize(SUBACK)
	}
	return n
}

// Size is the number of bytes Append adds.
func (s *Suback) Size(v Version) int { return packetSize(s.remaining(v)) }

// Append appends the SUBACK packet for version v.
func (s *Suback) Append(dst []byte, v Version) []byte {
	dst = append(dst, byte(SUBACK)<<4)
	dst = AppendRemainingLength(dst, s.remaining(v))
	dst = appendUint16(dst, s.PacketID)
	if v == V5 {
		dst = s.Props.appendBlock(dst, SUBACK)
	}
	for _, c := range s.ReasonCodes {
		dst = append(dst, byte(c))
	}
	return dst
}
