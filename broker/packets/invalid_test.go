package packets

import (
	"errors"
	"testing"
)

// invalid is a packet a decoder must refuse: err is the sentinel the error
// wraps, code the v5 reason code Code gives for it, spec the statement
// checked.
type invalid struct {
	name string
	v    Version
	raw  []byte
	err  error
	code ReasonCode
	spec string
}

var invalids = []invalid{
	// Fixed header flags.
	{"CONNECT flags", V311, []byte{0x11, 14, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, 2, 'c', '1'}, ErrReservedFlags, MalformedPacket, "MQTT-2.2.2-1"},
	{"CONNACK flags", V311, []byte{0x21, 2, 0, 0}, ErrReservedFlags, MalformedPacket, "MQTT-2.2.2-1"},
	{"PUBACK flags", V311, []byte{0x41, 2, 0, 1}, ErrReservedFlags, MalformedPacket, "MQTT-2.2.2-1"},
	{"PUBREL flags 0", V5, []byte{0x60, 2, 0, 1}, ErrReservedFlags, MalformedPacket, "MQTT-3.6.1-1"},
	{"SUBSCRIBE flags 0", V311, []byte{0x80, 6, 0, 1, 0, 1, 'a', 0}, ErrReservedFlags, MalformedPacket, "MQTT-3.8.1-1"},
	{"UNSUBSCRIBE flags 0", V5, []byte{0xA0, 6, 0, 1, 0, 0, 1, 'a'}, ErrReservedFlags, MalformedPacket, "MQTT-3.10.1-1"},
	{"SUBACK flags", V311, []byte{0x92, 3, 0, 1, 0}, ErrReservedFlags, MalformedPacket, "MQTT-2.2.2-1"},
	{"PINGREQ flags", V311, []byte{0xC1, 0}, ErrReservedFlags, MalformedPacket, "MQTT-2.2.2-1"},
	{"DISCONNECT 5.0 flags", V5, []byte{0xE2, 0}, ErrReservedFlags, MalformedPacket, "MQTT-2.1.3-1"},
	{"AUTH flags", V5, []byte{0xF1, 0}, ErrReservedFlags, MalformedPacket, "MQTT-2.1.3-1"},

	// CONNECT.
	{"CONNECT protocol level 6", V5, []byte{0x10, 14, 0, 4, 'M', 'Q', 'T', 'T', 6, 2, 0, 60, 0, 0, 1, 'c'}, ErrUnsupportedVersion, UnsupportedProtocolVersion, "MQTT-3.1.2-2"},
	{"CONNECT MQTT level 3", V31, []byte{0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 3, 2, 0, 60, 0, 0, 1}, ErrUnsupportedVersion, UnsupportedProtocolVersion, "MQTT-3.1.2-1"},
	{"CONNECT MQIsdp level 4", V311, []byte{0x10, 12, 0, 6, 'M', 'Q', 'I', 's', 'd', 'p', 4, 2, 0, 60}, ErrUnsupportedVersion, UnsupportedProtocolVersion, "MQTT-3.1.2-1"},
	{"CONNECT unknown protocol name", V311, []byte{0x10, 5, 0, 2, 'H', 'I', 4}, ErrUnsupportedVersion, UnsupportedProtocolVersion, "MQTT-3.1.2-1"},
	{"CONNECT reserved flag", V311, []byte{0x10, 14, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x03, 0, 60, 0, 2, 'c', '1'}, ErrReservedFlags, MalformedPacket, "MQTT-3.1.2-3"},
	{"CONNECT will QoS without will", V311, []byte{0x10, 14, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x0A, 0, 60, 0, 2, 'c', '1'}, ErrMalformed, MalformedPacket, "MQTT-3.1.2-13"},
	{"CONNECT will retain without will", V5, []byte{0x10, 15, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x22, 0, 60, 0, 0, 2, 'c', '1'}, ErrMalformed, MalformedPacket, "MQTT-3.1.2-13 (5.0)"},
	{"CONNECT will QoS 3", V311, []byte{0x10, 18, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x1E, 0, 60, 0, 0, 0, 1, 't', 0, 1, 'p'}, ErrInvalidQoS, MalformedPacket, "MQTT-3.1.2-14"},
	{"CONNECT 3.1.1 password without user name", V311, []byte{0x10, 18, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x42, 0, 60, 0, 2, 'c', '1', 0, 2, 'p', 'w'}, ErrMalformed, MalformedPacket, "MQTT-3.1.2-22"},
	{"CONNECT 3.1 password without user name", V31, []byte{0x10, 18, 0, 6, 'M', 'Q', 'I', 's', 'd', 'p', 3, 0x42, 0, 60, 0, 1, 'c', 0, 1, 'p'}, ErrMalformed, MalformedPacket, "MQTT-3.1.2-22"},
	{"CONNECT client id invalid UTF-8", V311, []byte{0x10, 14, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, 2, 0xC3, 0x28}, ErrInvalidUTF8, MalformedPacket, "MQTT-1.5.4-1"},
	{"CONNECT client id U+0000", V311, []byte{0x10, 14, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, 2, 'a', 0}, ErrInvalidUTF8, MalformedPacket, "MQTT-1.5.4-2"},
	{"CONNECT will topic wildcard", V311, []byte{0x10, 19, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x06, 0, 60, 0, 0, 0, 3, 'a', '/', '#', 0, 0}, ErrTopicNameInvalid, TopicNameInvalid, "MQTT-3.3.2-2"},
	{"CONNECT will topic empty", V311, []byte{0x10, 16, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x06, 0, 60, 0, 0, 0, 0, 0, 0}, ErrTopicNameInvalid, TopicNameInvalid, "MQTT-4.7.3-1"},
	{"CONNECT truncated keep alive", V311, []byte{0x10, 9, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0}, ErrMalformed, MalformedPacket, "MQTT-3.1.2"},
	{"CONNECT trailing byte", V311, []byte{0x10, 15, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, 2, 'c', '1', 9}, ErrMalformed, MalformedPacket, "MQTT-3.1.3"},
	{"CONNECT user name flag, no user name", V311, []byte{0x10, 14, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x82, 0, 60, 0, 2, 'c', '1'}, ErrMalformed, MalformedPacket, "MQTT-3.1.2-19"},
	{"CONNECT 5.0 receive maximum 0", V5, []byte{0x10, 16, 0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 60, 3, 0x21, 0, 0, 0, 0}, ErrProtocol, ProtocolError, "3.1.2.11.3"},
	{"CONNECT 5.0 maximum packet size 0", V5, []byte{0x10, 18, 0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 60, 5, 0x27, 0, 0, 0, 0, 0, 0}, ErrProtocol, ProtocolError, "3.1.2.11.4"},
	{"CONNECT 5.0 session expiry twice", V5, []byte{0x10, 23, 0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 60, 10, 0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2, 0, 0}, ErrDuplicateProperty, ProtocolError, "3.1.2.11.2"},
	{"CONNECT 5.0 request problem information 2", V5, []byte{0x10, 15, 0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 60, 2, 0x17, 2, 0, 0}, ErrProtocol, ProtocolError, "3.1.2.11.7"},
	{"CONNECT 5.0 request response information 2", V5, []byte{0x10, 15, 0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 60, 2, 0x19, 2, 0, 0}, ErrProtocol, ProtocolError, "3.1.2.11.6"},
	{"CONNECT 5.0 authentication data without method", V5, []byte{0x10, 17, 0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 60, 4, 0x16, 0, 1, 'x', 0, 0}, ErrProtocol, ProtocolError, "3.1.2.11.10"},
	{"CONNECT 5.0 topic alias not allowed", V5, []byte{0x10, 16, 0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 60, 3, 0x23, 0, 1, 0, 0}, ErrUnexpectedProperty, MalformedPacket, "2.2.2.2"},
	{"CONNECT 5.0 session expiry in will properties", V5, []byte{0x10, 24, 0, 4, 'M', 'Q', 'T', 'T', 5, 6, 0, 60, 0, 0, 0, 5, 0x11, 0, 0, 0, 1, 0, 1, 't', 0, 0}, ErrUnexpectedProperty, MalformedPacket, "3.1.3.2"},
	{"CONNECT 5.0 properties length beyond body", V5, []byte{0x10, 11, 0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 60, 9}, ErrMalformed, MalformedPacket, "MQTT-1.5.5"},

	// CONNACK.
	{"CONNACK reserved acknowledge flags", V311, []byte{0x20, 2, 0x02, 0}, ErrReservedFlags, MalformedPacket, "3.2.2.1"},
	{"CONNACK return code 6", V311, []byte{0x20, 2, 0, 6}, ErrInvalidReasonCode, ProtocolError, "3.2.2.3"},
	{"CONNACK session present with refusal", V311, []byte{0x20, 2, 1, 5}, ErrProtocol, ProtocolError, "MQTT-3.2.2-4"},
	{"CONNACK 3.1.1 trailing byte", V311, []byte{0x20, 3, 0, 0, 0}, ErrMalformed, MalformedPacket, "3.2"},
	{"CONNACK 5.0 no property length", V5, []byte{0x20, 2, 0, 0}, ErrMalformed, MalformedPacket, "3.2.2.3.1"},
	{"CONNACK 5.0 reason code 0x04", V5, []byte{0x20, 3, 0, 0x04, 0}, ErrInvalidReasonCode, ProtocolError, "3.2.2.2"},
	{"CONNACK 5.0 maximum QoS 2", V5, []byte{0x20, 5, 0, 0, 2, 0x24, 2}, ErrProtocol, ProtocolError, "3.2.2.3.4"},
	{"CONNACK 5.0 retain available 2", V5, []byte{0x20, 5, 0, 0, 2, 0x25, 2}, ErrProtocol, ProtocolError, "3.2.2.3.5"},
	{"CONNACK 5.0 request problem information", V5, []byte{0x20, 5, 0, 0, 2, 0x17, 1}, ErrUnexpectedProperty, MalformedPacket, "2.2.2.2"},
	{"CONNACK 5.0 reason string twice", V5, []byte{0x20, 11, 0, 0, 8, 0x1F, 0, 1, 'a', 0x1F, 0, 1, 'b'}, ErrDuplicateProperty, ProtocolError, "3.2.2.3.9"},

	// PUBLISH.
	{"PUBLISH QoS 3", V311, []byte{0x36, 5, 0, 1, 't', 0, 1}, ErrInvalidQoS, MalformedPacket, "MQTT-3.3.1-4"},
	{"PUBLISH DUP with QoS 0", V311, []byte{0x38, 3, 0, 1, 't'}, ErrProtocol, ProtocolError, "MQTT-3.3.1-2"},
	{"PUBLISH QoS 1 packet identifier 0", V311, []byte{0x32, 5, 0, 1, 't', 0, 0}, ErrInvalidPacketID, ProtocolError, "MQTT-2.3.1-1"},
	{"PUBLISH QoS 2 no packet identifier", V311, []byte{0x34, 3, 0, 1, 't'}, ErrMalformed, MalformedPacket, "3.3.2.2"},
	{"PUBLISH topic with +", V311, []byte{0x30, 5, 0, 3, 'a', '/', '+'}, ErrTopicNameInvalid, TopicNameInvalid, "MQTT-3.3.2-2"},
	{"PUBLISH topic #", V5, []byte{0x30, 4, 0, 1, '#', 0}, ErrTopicNameInvalid, TopicNameInvalid, "MQTT-3.3.2-2"},
	{"PUBLISH topic invalid UTF-8", V311, []byte{0x30, 4, 0, 2, 0xC3, 0x28}, ErrInvalidUTF8, MalformedPacket, "MQTT-1.5.4-1"},
	{"PUBLISH topic surrogate", V311, []byte{0x30, 5, 0, 3, 0xED, 0xA0, 0x80}, ErrInvalidUTF8, MalformedPacket, "MQTT-1.5.4-1"},
	{"PUBLISH topic U+0000", V311, []byte{0x30, 4, 0, 2, 'a', 0}, ErrInvalidUTF8, MalformedPacket, "MQTT-1.5.4-2"},
	{"PUBLISH topic overlong encoding", V311, []byte{0x30, 4, 0, 2, 0xC0, 0xAF}, ErrInvalidUTF8, MalformedPacket, "MQTT-1.5.4-1"},
	{"PUBLISH 3.1.1 empty topic", V311, []byte{0x30, 3, 0, 0, 'x'}, ErrTopicNameInvalid, TopicNameInvalid, "MQTT-4.7.3-1"},
	{"PUBLISH 5.0 empty topic without alias", V5, []byte{0x30, 3, 0, 0, 0}, ErrProtocol, ProtocolError, "3.3.2.1"},
	{"PUBLISH 5.0 topic alias 0", V5, []byte{0x30, 7, 0, 1, 't', 3, 0x23, 0, 0}, ErrTopicAliasInvalid, TopicAliasInvalid, "MQTT-3.3.2-8"},
	{"PUBLISH topic length beyond body", V311, []byte{0x30, 3, 0, 5, 't'}, ErrMalformed, MalformedPacket, "MQTT-1.5.4"},
	{"PUBLISH 5.0 no property length", V5, []byte{0x30, 3, 0, 1, 't'}, ErrMalformed, MalformedPacket, "3.3.2.3.1"},
	{"PUBLISH 5.0 properties length beyond body", V5, []byte{0x30, 5, 0, 1, 't', 4, 0x01}, ErrMalformed, MalformedPacket, "3.3.2.3.1"},
	{"PUBLISH 5.0 property value cut short", V5, []byte{0x30, 6, 0, 1, 't', 2, 0x23, 0}, ErrMalformed, MalformedPacket, "3.3.2.3.4"},
	{"PUBLISH 5.0 session expiry not allowed", V5, []byte{0x30, 9, 0, 1, 't', 5, 0x11, 0, 0, 0, 1}, ErrUnexpectedProperty, MalformedPacket, "2.2.2.2"},
	{"PUBLISH 5.0 unknown property", V5, []byte{0x30, 6, 0, 1, 't', 2, 0x7F, 0}, ErrUnexpectedProperty, MalformedPacket, "2.2.2.2"},
	{"PUBLISH 5.0 message expiry twice", V5, []byte{0x30, 14, 0, 1, 't', 10, 0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 2}, ErrDuplicateProperty, ProtocolError, "3.3.2.3.3"},
	{"PUBLISH 5.0 topic alias twice", V5, []byte{0x30, 10, 0, 1, 't', 6, 0x23, 0, 1, 0x23, 0, 2}, ErrDuplicateProperty, ProtocolError, "3.3.2.3.4"},
	{"PUBLISH 5.0 subscription identifier 0", V5, []byte{0x30, 6, 0, 1, 't', 2, 0x0B, 0}, ErrProtocol, ProtocolError, "3.3.2.3.8"},
	{"PUBLISH 5.0 payload format 2", V5, []byte{0x30, 6, 0, 1, 't', 2, 0x01, 2}, ErrProtocol, ProtocolError, "3.3.2.3.2"},
	{"PUBLISH 5.0 response topic with wildcard", V5, []byte{0x30, 9, 0, 1, 't', 5, 0x08, 0, 2, 'a', '#'}, ErrProtocol, ProtocolError, "MQTT-3.3.2-14"},
	{"PUBLISH 5.0 user property invalid UTF-8", V5, []byte{0x30, 11, 0, 1, 't', 7, 0x26, 0, 1, 0xFF, 0, 1, 'v'}, ErrInvalidUTF8, MalformedPacket, "MQTT-1.5.4-1"},
	{"PUBLISH 5.0 property identifier longer than 4 bytes", V5, []byte{0x30, 9, 0, 1, 't', 5, 0x80, 0x80, 0x80, 0x80, 0x01}, ErrMalformed, MalformedPacket, "MQTT-1.5.5"},

	// PUBACK, PUBREC, PUBREL, PUBCOMP.
	{"PUBACK packet identifier 0", V311, []byte{0x40, 2, 0, 0}, ErrInvalidPacketID, ProtocolError, "MQTT-2.3.1-1"},
	{"PUBACK 3.1.1 with reason code", V311, []byte{0x40, 3, 0, 1, 0}, ErrMalformed, MalformedPacket, "3.4"},
	{"PUBACK truncated", V5, []byte{0x40, 1, 0}, ErrMalformed, MalformedPacket, "3.4.2"},
	{"PUBREL 5.0 reason code 0x10", V5, []byte{0x62, 3, 0, 1, 0x10}, ErrInvalidReasonCode, ProtocolError, "3.6.2.1"},
	{"PUBACK 5.0 reason code 0x92", V5, []byte{0x40, 3, 0, 1, 0x92}, ErrInvalidReasonCode, ProtocolError, "3.4.2.1"},
	{"PUBACK 5.0 topic alias not allowed", V5, []byte{0x40, 7, 0, 1, 0, 3, 0x23, 0, 1}, ErrUnexpectedProperty, MalformedPacket, "2.2.2.2"},
	{"PUBCOMP 5.0 reason string twice", V5, []byte{0x70, 12, 0, 1, 0, 8, 0x1F, 0, 1, 'a', 0x1F, 0, 1, 'b'}, ErrDuplicateProperty, ProtocolError, "3.7.2.2.2"},
	{"PUBREC 5.0 trailing byte", V5, []byte{0x50, 5, 0, 1, 0, 0, 9}, ErrMalformed, MalformedPacket, "3.5.2"},

	// SUBSCRIBE.
	{"SUBSCRIBE no filters", V311, []byte{0x82, 2, 0, 1}, ErrEmptySubscribe, ProtocolError, "MQTT-3.8.3-3"},
	{"SUBSCRIBE 5.0 no filters", V5, []byte{0x82, 3, 0, 1, 0}, ErrEmptySubscribe, ProtocolError, "MQTT-3.8.3-2 (5.0)"},
	{"SUBSCRIBE packet identifier 0", V311, []byte{0x82, 6, 0, 0, 0, 1, 'a', 0}, ErrInvalidPacketID, ProtocolError, "MQTT-2.3.1-1"},
	{"SUBSCRIBE 3.1.1 reserved option bits", V311, []byte{0x82, 6, 0, 1, 0, 1, 'a', 0x04}, ErrReservedFlags, MalformedPacket, "MQTT-3-8.3-4"},
	{"SUBSCRIBE 3.1.1 QoS 3", V311, []byte{0x82, 6, 0, 1, 0, 1, 'a', 3}, ErrInvalidQoS, MalformedPacket, "MQTT-3-8.3-4"},
	{"SUBSCRIBE 5.0 reserved option bits", V5, []byte{0x82, 7, 0, 1, 0, 0, 1, 'a', 0x40}, ErrReservedFlags, MalformedPacket, "MQTT-3.8.3-5"},
	{"SUBSCRIBE 5.0 QoS 3", V5, []byte{0x82, 7, 0, 1, 0, 0, 1, 'a', 0x03}, ErrProtocol, ProtocolError, "3.8.3.1"},
	{"SUBSCRIBE 5.0 retain handling 3", V5, []byte{0x82, 7, 0, 1, 0, 0, 1, 'a', 0x30}, ErrProtocol, ProtocolError, "3.8.3.1"},
	{"SUBSCRIBE 5.0 no local on shared", V5, []byte{0x82, 16, 0, 1, 0, 0, 10, '$', 's', 'h', 'a', 'r', 'e', '/', 'g', '/', 'a', 0x04}, ErrProtocol, ProtocolError, "MQTT-3.8.3-4"},
	{"SUBSCRIBE filter # not last", V311, []byte{0x82, 10, 0, 1, 0, 5, 'a', '/', '#', '/', 'b', 0}, ErrTopicFilterInvalid, TopicFilterInvalid, "MQTT-4.7.1-2"},
	{"SUBSCRIBE filter a#", V311, []byte{0x82, 7, 0, 1, 0, 2, 'a', '#', 0}, ErrTopicFilterInvalid, TopicFilterInvalid, "MQTT-4.7.1-2"},
	{"SUBSCRIBE filter a+", V311, []byte{0x82, 7, 0, 1, 0, 2, 'a', '+', 0}, ErrTopicFilterInvalid, TopicFilterInvalid, "MQTT-4.7.1-3"},
	{"SUBSCRIBE empty filter", V311, []byte{0x82, 5, 0, 1, 0, 0, 0}, ErrTopicFilterInvalid, TopicFilterInvalid, "MQTT-4.7.3-1"},
	{"SUBSCRIBE filter invalid UTF-8", V311, []byte{0x82, 6, 0, 1, 0, 1, 0xFF, 0}, ErrInvalidUTF8, MalformedPacket, "MQTT-1.5.4-1"},
	{"SUBSCRIBE 5.0 shared without filter", V5, []byte{0x82, 14, 0, 1, 0, 0, 8, '$', 's', 'h', 'a', 'r', 'e', '/', 'g', 0}, ErrTopicFilterInvalid, TopicFilterInvalid, "MQTT-4.8.2-1"},
	{"SUBSCRIBE 5.0 share name with +", V5, []byte{0x82, 17, 0, 1, 0, 0, 11, '$', 's', 'h', 'a', 'r', 'e', '/', 'g', '+', '/', 'a', 0}, ErrTopicFilterInvalid, TopicFilterInvalid, "MQTT-4.8.2-2"},
	{"SUBSCRIBE 5.0 empty share name", V5, []byte{0x82, 15, 0, 1, 0, 0, 9, '$', 's', 'h', 'a', 'r', 'e', '/', '/', 'a', 0}, ErrTopicFilterInvalid, TopicFilterInvalid, "MQTT-4.8.2-1"},
	{"SUBSCRIBE 5.0 subscription identifier twice", V5, []byte{0x82, 11, 0, 1, 4, 0x0B, 1, 0x0B, 2, 0, 1, 'a', 0}, ErrDuplicateProperty, ProtocolError, "3.8.2.1.2"},
	{"SUBSCRIBE 5.0 subscription identifier 0", V5, []byte{0x82, 9, 0, 1, 2, 0x0B, 0, 0, 1, 'a', 0}, ErrProtocol, ProtocolError, "3.8.2.1.2"},
	{"SUBSCRIBE missing options byte", V311, []byte{0x82, 5, 0, 1, 0, 1, 'a'}, ErrMalformed, MalformedPacket, "3.8.3"},

	// SUBACK.
	{"SUBACK 3.1.1 return code 3", V311, []byte{0x90, 3, 0, 1, 3}, ErrInvalidReasonCode, ProtocolError, "MQTT-3.9.3-2"},
	{"SUBACK 5.0 reason code 0x81", V5, []byte{0x90, 4, 0, 1, 0, 0x81}, ErrInvalidReasonCode, ProtocolError, "3.9.3"},
	{"SUBACK 5.0 packet identifier 0", V5, []byte{0x90, 4, 0, 0, 0, 0}, ErrInvalidPacketID, ProtocolError, "MQTT-2.2.1-3"},

	// UNSUBSCRIBE.
	{"UNSUBSCRIBE no filters", V311, []byte{0xA2, 2, 0, 1}, ErrEmptySubscribe, ProtocolError, "MQTT-3.10.3-2"},
	{"UNSUBSCRIBE filter a#", V311, []byte{0xA2, 6, 0, 1, 0, 2, 'a', '#'}, ErrTopicFilterInvalid, TopicFilterInvalid, "MQTT-4.7.1-2"},
	{"UNSUBSCRIBE 5.0 subscription identifier not allowed", V5, []byte{0xA2, 8, 0, 1, 2, 0x0B, 1, 0, 1, 'a'}, ErrUnexpectedProperty, MalformedPacket, "2.2.2.2"},
	{"UNSUBSCRIBE packet identifier 0", V311, []byte{0xA2, 5, 0, 0, 0, 1, 'a'}, ErrInvalidPacketID, ProtocolError, "MQTT-2.3.1-1"},

	// UNSUBACK.
	{"UNSUBACK 3.1.1 trailing byte", V311, []byte{0xB0, 3, 0, 1, 0}, ErrMalformed, MalformedPacket, "3.11.2"},
	{"UNSUBACK 5.0 reason code 0x02", V5, []byte{0xB0, 4, 0, 1, 0, 0x02}, ErrInvalidReasonCode, ProtocolError, "3.11.3"},
	{"UNSUBACK 5.0 no property length", V5, []byte{0xB0, 2, 0, 1}, ErrMalformed, MalformedPacket, "3.11.2.1.1"},

	// PINGREQ, PINGRESP, DISCONNECT, AUTH.
	{"PINGRESP with body", V311, []byte{0xD0, 1, 0}, ErrMalformed, MalformedPacket, "3.13.1"},
	{"DISCONNECT 3.1.1 with body", V311, []byte{0xE0, 1, 0}, ErrMalformed, MalformedPacket, "3.14.1"},
	{"DISCONNECT 5.0 reason code 0x01", V5, []byte{0xE0, 1, 0x01}, ErrInvalidReasonCode, ProtocolError, "3.14.2.1"},
	{"DISCONNECT 5.0 authentication method not allowed", V5, []byte{0xE0, 6, 0, 4, 0x15, 0, 1, 'm'}, ErrUnexpectedProperty, MalformedPacket, "2.2.2.2"},
	{"DISCONNECT 5.0 properties length beyond body", V5, []byte{0xE0, 3, 0, 5, 0x11}, ErrMalformed, MalformedPacket, "3.14.2.2.1"},
	{"DISCONNECT 5.0 server reference twice", V5, []byte{0xE0, 10, 0x9C, 8, 0x1C, 0, 1, 'a', 0x1C, 0, 1, 'b'}, ErrDuplicateProperty, ProtocolError, "3.14.2.2.5"},
	{"AUTH in 3.1.1", V311, []byte{0xF0, 0}, ErrUnknownPacketType, MalformedPacket, "2.1.2"},
	{"AUTH 5.0 reason code without property length", V5, []byte{0xF0, 1, 0x18}, ErrMalformed, MalformedPacket, "3.15.2.2.1"},
	{"AUTH 5.0 reason code 0x01", V5, []byte{0xF0, 2, 0x01, 0}, ErrInvalidReasonCode, ProtocolError, "3.15.2.1"},
	{"AUTH 5.0 session expiry not allowed", V5, []byte{0xF0, 7, 0x18, 5, 0x11, 0, 0, 0, 1}, ErrUnexpectedProperty, MalformedPacket, "2.2.2.2"},
	{"AUTH 5.0 authentication data without method", V5, []byte{0xF0, 6, 0x18, 4, 0x16, 0, 1, 'd'}, ErrProtocol, ProtocolError, "3.15.2.2.3"},
	{"reserved packet type 0", V311, []byte{0x00, 0}, ErrUnknownPacketType, MalformedPacket, "2.1.2"},
}

func TestInvalidVectors(t *testing.T) {
	for _, tc := range invalids {
		t.Run(tc.name, func(t *testing.T) {
			first, body := frameOne(t, tc.raw)
			_, err := decodeAny(tc.v, first, body)
			if !errors.Is(err, tc.err) {
				t.Fatalf("[%s] decode error = %v, want %v", tc.spec, err, tc.err)
			}
			if got := Code(err); got != tc.code {
				t.Errorf("[%s] Code(%v) = 0x%02X, want 0x%02X", tc.spec, err, got, tc.code)
			}
		})
	}
}

// TestConnectVersionOnError checks that the broker can tell which version to
// answer in, even when CONNECT is refused [MQTT-3.1.2-2].
func TestConnectVersionOnError(t *testing.T) {
	tests := []struct {
		name    string
		body    []byte
		version Version
		proto   string
		err     error
	}{
		{"level 6", []byte{0, 4, 'M', 'Q', 'T', 'T', 6, 2, 0, 60}, 6, "MQTT", ErrUnsupportedVersion},
		{"5.0 bad property", []byte{0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 60, 2, 0x01, 1, 0, 0}, V5, "MQTT", ErrUnexpectedProperty},
		{"5.0 reserved flag", []byte{0, 4, 'M', 'Q', 'T', 'T', 5, 1, 0, 60, 0, 0, 0}, V5, "MQTT", ErrReservedFlags},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c Connect
			err := c.Decode(0, tc.body)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if c.Version != tc.version || c.ProtocolName != tc.proto {
				t.Errorf("Version, ProtocolName = %d, %q; want %d, %q", c.Version, c.ProtocolName, tc.version, tc.proto)
			}
		})
	}
}

func TestCode(t *testing.T) {
	tests := []struct {
		err  error
		want ReasonCode
	}{
		{nil, Success},
		{errors.New("io"), UnspecifiedError},
		{ErrMalformed, MalformedPacket},
		{ErrIncompleteRemaining, MalformedPacket},
		{ErrInvalidUTF8, MalformedPacket},
		{ErrReservedFlags, MalformedPacket},
		{ErrInvalidQoS, MalformedPacket},
		{ErrUnexpectedProperty, MalformedPacket},
		{ErrUnknownPacketType, MalformedPacket},
		{ErrProtocol, ProtocolError},
		{ErrDuplicateProperty, ProtocolError},
		{ErrInvalidPacketID, ProtocolError},
		{ErrEmptySubscribe, ProtocolError},
		{ErrInvalidReasonCode, ProtocolError},
		{ErrPacketTooLarge, PacketTooLarge},
		{ErrTopicNameInvalid, TopicNameInvalid},
		{ErrTopicFilterInvalid, TopicFilterInvalid},
		{ErrTopicAliasInvalid, TopicAliasInvalid},
		{ErrUnsupportedVersion, UnsupportedProtocolVersion},
		{errRemaining, MalformedPacket},
	}
	for _, tc := range tests {
		if got := Code(tc.err); got != tc.want {
			t.Errorf("Code(%v) = 0x%02X, want 0x%02X", tc.err, got, tc.want)
		}
	}
}
