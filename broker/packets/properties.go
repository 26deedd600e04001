package packets

import (
	"fmt"
	"slices"
)

// v5 property identifiers [MQTT-2.2.2.2].
const (
	propPayloadFormat        = 0x01
	propMessageExpiry        = 0x02
	propContentType          = 0x03
	propResponseTopic        = 0x08
	propCorrelationData      = 0x09
	propSubscriptionID       = 0x0B
	propSessionExpiry        = 0x11
	propAssignedClientID     = 0x12
	propServerKeepAlive      = 0x13
	propAuthMethod           = 0x15
	propAuthData             = 0x16
	propRequestProblemInfo   = 0x17
	propWillDelay            = 0x18
	propRequestResponseInfo  = 0x19
	propResponseInfo         = 0x1A
	propServerReference      = 0x1C
	propReasonString         = 0x1F
	propReceiveMaximum       = 0x21
	propTopicAliasMaximum    = 0x22
	propTopicAlias           = 0x23
	propMaximumQoS           = 0x24
	propRetainAvailable      = 0x25
	propUser                 = 0x26
	propMaximumPacketSize    = 0x27
	propWildcardSubAvailable = 0x28
	propSubIDAvailable       = 0x29
	propSharedSubAvailable   = 0x2A
)

// willProps stands for the will properties of CONNECT in the tables below:
// they are a property block of their own with their own allowed set.
const willProps Type = 16

func bits(ids ...int) (m uint64) {
	for _, id := range ids {
		m |= 1 << id
	}
	return m
}

// allowedProps is, per packet type, the set of property identifiers it may
// carry (the table in 2.2.2.2). An identifier outside the set is a
// Malformed Packet.
var allowedProps = [...]uint64{
	CONNECT: bits(propSessionExpiry, propAuthMethod, propAuthData, propRequestProblemInfo,
		propRequestResponseInfo, propReceiveMaximum, propTopicAliasMaximum, propUser,
		propMaximumPacketSize),
	CONNACK: bits(propSessionExpiry, propAssignedClientID, propServerKeepAlive, propAuthMethod,
		propAuthData, propResponseInfo, propServerReference, propReasonString, propReceiveMaximum,
		propTopicAliasMaximum, propMaximumQoS, propRetainAvailable, propUser,
		propMaximumPacketSize, propWildcardSubAvailable, propSubIDAvailable,
		propSharedSubAvailable),
	PUBLISH: bits(propPayloadFormat, propMessageExpiry, propContentType, propResponseTopic,
		propCorrelationData, propSubscriptionID, propTopicAlias, propUser),
	PUBACK:      bits(propReasonString, propUser),
	PUBREC:      bits(propReasonString, propUser),
	PUBREL:      bits(propReasonString, propUser),
	PUBCOMP:     bits(propReasonString, propUser),
	SUBSCRIBE:   bits(propSubscriptionID, propUser),
	SUBACK:      bits(propReasonString, propUser),
	UNSUBSCRIBE: bits(propUser),
	UNSUBACK:    bits(propReasonString, propUser),
	PINGREQ:     0,
	PINGRESP:    0,
	DISCONNECT:  bits(propSessionExpiry, propServerReference, propReasonString, propUser),
	AUTH:        bits(propAuthMethod, propAuthData, propReasonString, propUser),
	willProps: bits(propPayloadFormat, propMessageExpiry, propContentType, propResponseTopic,
		propCorrelationData, propWillDelay, propUser),
}

func (t Type) allows(id int) bool {
	return int(t) < len(allowedProps) && id < 64 && allowedProps[t]&(1<<id) != 0
}

func propName(t Type) string {
	if t == willProps {
		return "will properties"
	}
	return "properties"
}

// decode reads a property block (its length, then the properties) of
// packet type t into p, which the caller has zeroed. copyBytes makes byte
// slices copies instead of aliases of the body.
func (p *Properties) decode(r *reader, t Type, copyBytes bool) error {
	n, err := r.varint()
	if err != nil {
		return fmt.Errorf("%s length: %w", propName(t), err)
	}
	if n > r.len() {
		return fmt.Errorf("%s: %w", propName(t), errShort)
	}
	pr := reader{b: r.b[r.i : r.i+n]}
	r.i += n
	if err := p.decodeBlock(&pr, t, copyBytes); err != nil {
		return fmt.Errorf("%s: %w", propName(t), err)
	}
	return nil
}

func (p *Properties) decodeBlock(r *reader, t Type, copyBytes bool) error {
	var seen uint64
	for r.len() > 0 {
		id, err := r.varint()
		if err != nil {
			return fmt.Errorf("identifier: %w", err)
		}
		if !t.allows(id) {
			// "A Control Packet which contains an Identifier which is not valid
			// for its packet type ... is a Malformed Packet" (2.2.2.2).
			return fmt.Errorf("0x%02X: %w", id, ErrUnexpectedProperty)
		}
		// Every property but User Property, and Subscription Identifier in
		// PUBLISH, is "a Protocol Error to include ... more than once".
		if id != propUser && !(id == propSubscriptionID && t == PUBLISH) {
			if seen&(1<<id) != 0 {
				return fmt.Errorf("0x%02X: %w", id, ErrDuplicateProperty)
			}
			seen |= 1 << id
		}
		if err := p.decodeOne(r, id, copyBytes); err != nil {
			return fmt.Errorf("0x%02X: %w", id, err)
		}
	}
	// "It is a Protocol Error to include Authentication Data if there is no
	// Authentication Method" (3.1.2.11.10, 3.2.2.3.18, 3.15.2.2.3).
	if len(p.AuthData) > 0 && p.AuthMethod == "" {
		return fmt.Errorf("authentication data without method: %w", ErrProtocol)
	}
	return nil
}

var (
	errNotBool   = fmt.Errorf("%w: value other than 0 or 1", ErrProtocol)
	errZeroValue = fmt.Errorf("%w: value 0", ErrProtocol)
)

// readBool reads the byte properties whose only values are 0 and 1.
func readBool(r *reader) (byte, error) {
	b, err := r.byte()
	if err == nil && b > 1 {
		err = errNotBool
	}
	return b, err
}

func (p *Properties) decodeOne(r *reader, id int, copyBytes bool) (err error) {
	switch id {
	case propPayloadFormat:
		p.PayloadFormat, err = readBool(r)
		p.HasPayloadFormat = true
	case propMessageExpiry:
		p.MessageExpiry, err = r.uint32()
		p.HasMessageExpiry = true
	case propContentType:
		p.ContentType, err = r.string()
	case propResponseTopic:
		var b []byte
		if b, err = r.utf8(); err != nil {
			return err
		}
		// The Response Topic is a Topic Name: no wildcards [MQTT-3.3.2-14],
		// at least one character [MQTT-4.7.3-1].
		if len(b) == 0 || !ValidTopicName(b) {
			return fmt.Errorf("response topic: %w: %w", ErrProtocol, ErrTopicNameInvalid)
		}
		p.ResponseTopic = string(b)
	case propCorrelationData:
		p.CorrelationData, err = readBinary(r, copyBytes)
	case propSubscriptionID:
		var v int
		if v, err = r.varint(); err != nil {
			return err
		}
		// "It is a Protocol Error if the Subscription Identifier has a value
		// of 0" (3.3.2.3.8, 3.8.2.1.2).
		if v == 0 {
			return errZeroValue
		}
		p.SubscriptionIDs = append(p.SubscriptionIDs, uint32(v))
	case propSessionExpiry:
		p.SessionExpiry, err = r.uint32()
		p.HasSessionExpiry = true
	case propAssignedClientID:
		p.AssignedClientID, err = r.string()
	case propServerKeepAlive:
		p.ServerKeepAlive, err = r.uint16()
		p.HasServerKeepAlive = true
	case propAuthMethod:
		p.AuthMethod, err = r.string()
	case propAuthData:
		p.AuthData, err = readBinary(r, copyBytes)
	case propRequestProblemInfo:
		p.RequestProblemInfo, err = readBool(r)
		p.HasRequestProblemInfo = true
	case propWillDelay:
		p.WillDelay, err = r.uint32()
		p.HasWillDelay = true
	case propRequestResponseInfo:
		p.RequestResponseInfo, err = readBool(r)
		p.HasRequestResponseInfo = true
	case propResponseInfo:
		p.ResponseInfo, err = r.string()
	case propServerReference:
		p.ServerReference, err = r.string()
	case propReasonString:
		p.ReasonString, err = r.string()
	case propReceiveMaximum:
		// "It is a Protocol Error to include ... Receive Maximum ... value 0"
		// (3.1.2.11.3, 3.2.2.3.3).
		if p.ReceiveMaximum, err = r.uint16(); err == nil && p.ReceiveMaximum == 0 {
			err = errZeroValue
		}
		p.HasReceiveMaximum = true
	case propTopicAliasMaximum:
		p.TopicAliasMaximum, err = r.uint16()
		p.HasTopicAliasMaximum = true
	case propTopicAlias:
		// "A Topic Alias of 0 is not permitted" [MQTT-3.3.2-8].
		if p.TopicAlias, err = r.uint16(); err == nil && p.TopicAlias == 0 {
			err = ErrTopicAliasInvalid
		}
		p.HasTopicAlias = true
	case propMaximumQoS:
		p.MaximumQoS, err = readBool(r)
		p.HasMaximumQoS = true
	case propRetainAvailable:
		p.RetainAvailable, err = readBool(r)
		p.HasRetainAvailable = true
	case propUser:
		var u UserProperty
		if u.Key, err = r.string(); err != nil {
			return err
		}
		if u.Value, err = r.string(); err != nil {
			return err
		}
		p.User = append(p.User, u)
	case propMaximumPacketSize:
		// "It is a Protocol Error to include ... Maximum Packet Size ... value
		// 0" (3.1.2.11.4, 3.2.2.3.6).
		if p.MaximumPacketSize, err = r.uint32(); err == nil && p.MaximumPacketSize == 0 {
			err = errZeroValue
		}
		p.HasMaximumPacketSize = true
	case propWildcardSubAvailable:
		p.WildcardSubAvailable, err = readBool(r)
		p.HasWildcardSubAvailable = true
	case propSubIDAvailable:
		p.SubIDAvailable, err = readBool(r)
		p.HasSubIDAvailable = true
	case propSharedSubAvailable:
		p.SharedSubAvailable, err = readBool(r)
		p.HasSharedSubAvailable = true
	default:
		panic("packets: property table and decoder disagree") // allows() is checked first
	}
	return err
}

func readBinary(r *reader, copyBytes bool) ([]byte, error) {
	if copyBytes {
		return r.binaryCopy()
	}
	return r.binary()
}

// Size is the encoded size of the property block that Append writes for
// packet type t, without the block's own length prefix. Only properties
// allowed in t are written (the table in 2.2.2.2), in identifier order; in
// SUBSCRIBE only the first Subscription Identifier. Strings and byte slices
// are written when non-empty, fixed-size values when their Has flag is set.
// CONNECT's will properties are not included in Size(CONNECT).
func (p *Properties) Size(t Type) int {
	n := 0
	str := func(id int, s string) {
		if s != "" && t.allows(id) {
			n += 3 + len(s)
		}
	}
	fixed := func(id int, has bool, size int) {
		if has && t.allows(id) {
			n += 1 + size
		}
	}
	fixed(propPayloadFormat, p.HasPayloadFormat, 1)
	fixed(propMessageExpiry, p.HasMessageExpiry, 4)
	str(propContentType, p.ContentType)
	str(propResponseTopic, p.ResponseTopic)
	if len(p.CorrelationData) > 0 && t.allows(propCorrelationData) {
		n += 3 + len(p.CorrelationData)
	}
	if t.allows(propSubscriptionID) {
		for i, id := range p.SubscriptionIDs {
			if i > 0 && t == SUBSCRIBE {
				break
			}
			n += 1 + RemainingLengthSize(int(id))
		}
	}
	fixed(propSessionExpiry, p.HasSessionExpiry, 4)
	str(propAssignedClientID, p.AssignedClientID)
	fixed(propServerKeepAlive, p.HasServerKeepAlive, 2)
	str(propAuthMethod, p.AuthMethod)
	if len(p.AuthData) > 0 && t.allows(propAuthData) {
		n += 3 + len(p.AuthData)
	}
	fixed(propRequestProblemInfo, p.HasRequestProblemInfo, 1)
	fixed(propWillDelay, p.HasWillDelay, 4)
	fixed(propRequestResponseInfo, p.HasRequestResponseInfo, 1)
	str(propResponseInfo, p.ResponseInfo)
	str(propServerReference, p.ServerReference)
	str(propReasonString, p.ReasonString)
	fixed(propReceiveMaximum, p.HasReceiveMaximum, 2)
	fixed(propTopicAliasMaximum, p.HasTopicAliasMaximum, 2)
	fixed(propTopicAlias, p.HasTopicAlias, 2)
	fixed(propMaximumQoS, p.HasMaximumQoS, 1)
	fixed(propRetainAvailable, p.HasRetainAvailable, 1)
	if t.allows(propUser) {
		for _, u := range p.User {
			n += 5 + len(u.Key) + len(u.Value)
		}
	}
	fixed(propMaximumPacketSize, p.HasMaximumPacketSize, 4)
	fixed(propWildcardSubAvailable, p.HasWildcardSubAvailable, 1)
	fixed(propSubIDAvailable, p.HasSubIDAvailable, 1)
	fixed(propSharedSubAvailable, p.HasSharedSubAvailable, 1)
	return n
}

// blockSize is the size of the property block with its length prefix.
func (p *Properties) blockSize(t Type) int {
	n := p.Size(t)
	return RemainingLengthSize(n) + n
}

// appendBlock appends the property block of packet type t, length prefix
// included. It writes what Size(t) counts, in the same order.
func (p *Properties) appendBlock(dst []byte, t Type) []byte {
	return p.appendSized(dst, t, p.Size(t))
}

// appendSized is appendBlock for a caller that already knows Size(t).
func (p *Properties) appendSized(dst []byte, t Type, size int) []byte {
	dst = AppendRemainingLength(dst, size)
	if p.HasPayloadFormat && t.allows(propPayloadFormat) {
		dst = append(dst, propPayloadFormat, p.PayloadFormat)
	}
	if p.HasMessageExpiry && t.allows(propMessageExpiry) {
		dst = appendUint32(append(dst, propMessageExpiry), p.MessageExpiry)
	}
	dst = appendStringProp(dst, t, propContentType, p.ContentType)
	dst = appendStringProp(dst, t, propResponseTopic, p.ResponseTopic)
	dst = appendStringProp(dst, t, propCorrelationData, p.CorrelationData)
	if t.allows(propSubscriptionID) {
		for i, id := range p.SubscriptionIDs {
			if i > 0 && t == SUBSCRIBE {
				break
			}
			dst = AppendRemainingLength(append(dst, propSubscriptionID), int(id))
		}
	}
	if p.HasSessionExpiry && t.allows(propSessionExpiry) {
		dst = appendUint32(append(dst, propSessionExpiry), p.SessionExpiry)
	}
	dst = appendStringProp(dst, t, propAssignedClientID, p.AssignedClientID)
	if p.HasServerKeepAlive && t.allows(propServerKeepAlive) {
		dst = appendUint16(append(dst, propServerKeepAlive), p.ServerKeepAlive)
	}
	dst = appendStringProp(dst, t, propAuthMethod, p.AuthMethod)
	dst = appendStringProp(dst, t, propAuthData, p.AuthData)
	if p.HasRequestProblemInfo && t.allows(propRequestProblemInfo) {
		dst = append(dst, propRequestProblemInfo, p.RequestProblemInfo)
	}
	if p.HasWillDelay && t.allows(propWillDelay) {
		dst = appendUint32(append(dst, propWillDelay), p.WillDelay)
	}
	if p.HasRequestResponseInfo && t.allows(propRequestResponseInfo) {
		dst = append(dst, propRequestResponseInfo, p.RequestResponseInfo)
	}
	dst = appendStringProp(dst, t, propResponseInfo, p.ResponseInfo)
	dst = appendStringProp(dst, t, propServerReference, p.ServerReference)
	dst = appendStringProp(dst, t, propReasonString, p.ReasonString)
	if p.HasReceiveMaximum && t.allows(propReceiveMaximum) {
		dst = appendUint16(append(dst, propReceiveMaximum), p.ReceiveMaximum)
	}
	if p.HasTopicAliasMaximum && t.allows(propTopicAliasMaximum) {
		dst = appendUint16(append(dst, propTopicAliasMaximum), p.TopicAliasMaximum)
	}
	if p.HasTopicAlias && t.allows(propTopicAlias) {
		dst = appendUint16(append(dst, propTopicAlias), p.TopicAlias)
	}
	if p.HasMaximumQoS && t.allows(propMaximumQoS) {
		dst = append(dst, propMaximumQoS, p.MaximumQoS)
	}
	if p.HasRetainAvailable && t.allows(propRetainAvailable) {
		dst = append(dst, propRetainAvailable, p.RetainAvailable)
	}
	if t.allows(propUser) {
		for _, u := range p.User {
			dst = appendString(appendString(append(dst, propUser), u.Key), u.Value)
		}
	}
	if p.HasMaximumPacketSize && t.allows(propMaximumPacketSize) {
		dst = appendUint32(append(dst, propMaximumPacketSize), p.MaximumPacketSize)
	}
	if p.HasWildcardSubAvailable && t.allows(propWildcardSubAvailable) {
		dst = append(dst, propWildcardSubAvailable, p.WildcardSubAvailable)
	}
	if p.HasSubIDAvailable && t.allows(propSubIDAvailable) {
		dst = append(dst, propSubIDAvailable, p.SubIDAvailable)
	}
	if p.HasSharedSubAvailable && t.allows(propSharedSubAvailable) {
		dst = append(dst, propSharedSubAvailable, p.SharedSubAvailable)
	}
	return dst
}

func appendStringProp[T string | []byte](dst []byte, t Type, id byte, s T) []byte {
	if len(s) == 0 || !t.allows(int(id)) {
		return dst
	}
	return appendString(append(dst, id), s)
}

// Clone returns a deep copy of p: its byte slices and slices of values are
// copied, so the copy stays valid after the decode buffer is reused.
func (p *Properties) Clone() Properties {
	c := *p
	c.CorrelationData = cloneBytes(p.CorrelationData)
	c.AuthData = cloneBytes(p.AuthData)
	c.SubscriptionIDs = slices.Clone(p.SubscriptionIDs)
	c.User = slices.Clone(p.User)
	return c
}

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}
