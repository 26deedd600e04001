// Package packets encodes and decodes MQTT 3.1, 3.1.1 and 5.0 control
// packets. It is pure: no sockets, no broker state.
//
// Decoders alias the input buffer ([]byte fields point into it) so the
// broker's hot path can decode a PUBLISH, route it and encode it again
// without allocating; a caller that keeps a packet beyond the life of the
// read buffer must Clone it. Encoders append to a caller-owned slice.
//
// # Reading packets
//
// The broker appends socket reads to a buffer and calls Frame until it
// reports that more bytes are needed; Frame refuses a packet larger than the
// limit as soon as its fixed header is in. The high nibble of the first
// byte selects the decoder, the low nibble is passed to it as flags:
//
//	first, body, n, err := packets.Frame(buf, maxSize)
//	switch packets.Type(first >> 4) {
//	case packets.PUBLISH:
//		err = pub.Decode(version, first&0x0F, body)
//	...
//	}
//
// Only Publish.Decode aliases body (Topic, Payload, CorrelationData); the
// other decoders copy, so a CONNECT's will, say, is safe to keep.
//
// # Validation and reason codes
//
// Decoders check everything the spec lets a receiver check on one packet
// in isolation: reserved flags, lengths, UTF-8 [MQTT-1.5.4], topic names and
// filters, which properties a packet may carry and how often, property
// values, reason codes. What needs session state (topic alias range,
// packet identifiers in use, Maximum QoS, a second CONNECT) is the
// broker's. Every decode error wraps a sentinel; Code maps it to the v5
// reason code to put in CONNACK or DISCONNECT, using the spec's split
// between a Malformed Packet (cannot be parsed) and a Protocol Error
// (parsed, but not allowed).
//
// # Writing packets
//
// Append writes the shortest valid form (a v5 PUBACK with Success and no
// properties is four bytes) and only the properties the packet type may
// carry. Size returns exactly the number of bytes Append adds, so the
// broker can respect a client's Maximum Packet Size before encoding.
// Append does not validate: strings over 65,535 bytes or a packet over
// MaxRemainingLength produce garbage.
package packets

import "errors"

// Version is the protocol level carried in CONNECT.
type Version byte

// Protocol levels.
const (
	V31  Version = 3 // MQTT 3.1, protocol name "MQIsdp"
	V311 Version = 4 // MQTT 3.1.1
	V5   Version = 5 // MQTT 5.0
)

// Type is the control packet type: the high nibble of the first byte.
type Type byte

// Control packet types [MQTT-2.1.2].
const (
	CONNECT     Type = 1
	CONNACK     Type = 2
	PUBLISH     Type = 3
	PUBACK      Type = 4
	PUBREC      Type = 5
	PUBREL      Type = 6
	PUBCOMP     Type = 7
	SUBSCRIBE   Type = 8
	SUBACK      Type = 9
	UNSUBSCRIBE Type = 10
	UNSUBACK    Type = 11
	PINGREQ     Type = 12
	PINGRESP    Type = 13
	DISCONNECT  Type = 14
	AUTH        Type = 15
)

var typeNames = [...]string{"RESERVED", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
	"SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "UNKNOWN"
}

// MaxRemainingLength is the largest value the variable byte integer of the
// fixed header can carry (268,435,455 bytes).
const MaxRemainingLength = 268435455

// ReasonCode is a v5 reason code; for 3.1.1 CONNACK it is the return code and
// for 3.1.1 SUBACK the granted QoS or 0x80.
type ReasonCode byte

// v5 reason codes [MQTT-2.4] and the 3.1.1 CONNACK return codes.
const (
	Success                     ReasonCode = 0x00 // also NormalDisconnection, GrantedQoS0
	GrantedQoS1                 ReasonCode = 0x01
	GrantedQoS2                 ReasonCode = 0x02
	DisconnectWithWill          ReasonCode = 0x04
	NoMatchingSubscribers       ReasonCode = 0x10
	NoSubscriptionExisted       ReasonCode = 0x11
	ContinueAuthentication      ReasonCode = 0x18
	ReAuthenticate              ReasonCode = 0x19
	UnspecifiedError            ReasonCode = 0x80
	MalformedPacket             ReasonCode = 0x81
	ProtocolError               ReasonCode = 0x82
	ImplementationSpecificError ReasonCode = 0x83
	UnsupportedProtocolVersion  ReasonCode = 0x84
	ClientIdentifierNotValid    ReasonCode = 0x85
	BadUserNameOrPassword       ReasonCode = 0x86
	NotAuthorized               ReasonCode = 0x87
	ServerUnavailable           ReasonCode = 0x88
	ServerBusy                  ReasonCode = 0x89
	Banned                      ReasonCode = 0x8A
	ServerShuttingDown          ReasonCode = 0x8B
	BadAuthenticationMethod     ReasonCode = 0x8C
	KeepAliveTimeout            ReasonCode = 0x8D
	SessionTakenOver            ReasonCode = 0x8E
	TopicFilterInvalid          ReasonCode = 0x8F
	TopicNameInvalid            ReasonCode = 0x90
	PacketIdentifierInUse       ReasonCode = 0x91
	PacketIdentifierNotFound    ReasonCode = 0x92
	ReceiveMaximumExceeded      ReasonCode = 0x93
	TopicAliasInvalid           ReasonCode = 0x94
	PacketTooLarge              ReasonCode = 0x95
	MessageRateTooHigh          ReasonCode = 0x96
	QuotaExceeded               ReasonCode = 0x97
	AdministrativeAction        ReasonCode = 0x98
	PayloadFormatInvalid        ReasonCode = 0x99
	RetainNotSupported          ReasonCode = 0x9A
	QoSNotSupported             ReasonCode = 0x9B
	UseAnotherServer            ReasonCode = 0x9C
	ServerMoved                 ReasonCode = 0x9D
	SharedSubsNotSupported      ReasonCode = 0x9E
	ConnectionRateExceeded      ReasonCode = 0x9F
	MaximumConnectTime          ReasonCode = 0xA0
	SubIDsNotSupported          ReasonCode = 0xA1
	WildcardSubsNotSupported    ReasonCode = 0xA2
)

// 3.1.1 CONNACK return codes [MQTT-3.2.2.3].
const (
	ConnAccepted                  ReasonCode = 0
	ConnRefusedProtocolVersion    ReasonCode = 1
	ConnRefusedIdentifierRejected ReasonCode = 2
	ConnRefusedServerUnavailable  ReasonCode = 3
	ConnRefusedBadUsernamePass    ReasonCode = 4
	ConnRefusedNotAuthorized      ReasonCode = 5
)

// SubackFailure is the 3.1.1 SUBACK return code for a refused filter.
const SubackFailure ReasonCode = 0x80

// IsError reports whether a v5 reason code signals failure (>= 0x80).
func (r ReasonCode) IsError() bool { return r >= 0x80 }

// Sentinel decode errors. Each carries the v5 reason code the broker answers
// with (see Code).
var (
	ErrMalformed           = errors.New("packets: malformed packet")
	ErrProtocol            = errors.New("packets: protocol error")
	ErrUnsupportedVersion  = errors.New("packets: unsupported protocol version")
	ErrPacketTooLarge      = errors.New("packets: packet too large")
	ErrInvalidUTF8         = errors.New("packets: invalid UTF-8 string")
	ErrTopicNameInvalid    = errors.New("packets: invalid topic name")
	ErrTopicFilterInvalid  = errors.New("packets: invalid topic filter")
	ErrDuplicateProperty   = errors.New("packets: property appears twice")
	ErrReservedFlags       = errors.New("packets: reserved flag bits set")
	ErrInvalidPacketID     = errors.New("packets: packet identifier 0 with QoS > 0")
	ErrInvalidQoS          = errors.New("packets: QoS 3 is not allowed")
	ErrUnexpectedProperty  = errors.New("packets: property not allowed in this packet")
	ErrEmptySubscribe      = errors.New("packets: SUBSCRIBE or UNSUBSCRIBE without topic filters")
	ErrUnknownPacketType   = errors.New("packets: reserved packet type")
	ErrIncompleteRemaining = errors.New("packets: remaining length exceeds four bytes")
)

// UserProperty is a v5 name/value pair; order and duplicates are preserved.
type UserProperty struct {
	Key, Value string
}

// Properties holds every v5 property. A field whose zero value is
// meaningful on the wire has a Has* flag beside it; strings and byte slices
// are absent when empty. Which properties a packet may carry is checked by
// the decoder [MQTT-2.2.2].
type Properties struct {
	PayloadFormat    byte // 0x01
	HasPayloadFormat bool

	MessageExpiry    uint32 // 0x02, seconds
	HasMessageExpiry bool

	ContentType     string // 0x03
	ResponseTopic   string // 0x08
	CorrelationData []byte // 0x09

	// SubscriptionIDs is 0x0B: one value in SUBSCRIBE, any number in PUBLISH.
	SubscriptionIDs []uint32

	SessionExpiry    uint32 // 0x11, seconds
	HasSessionExpiry bool

	AssignedClientID string // 0x12

	ServerKeepAlive    uint16 // 0x13, seconds
	HasServerKeepAlive bool

	AuthMethod string // 0x15
	AuthData   []byte // 0x16

	RequestProblemInfo    byte // 0x17, default 1
	HasRequestProblemInfo bool

	WillDelay    uint32 // 0x18, seconds
	HasWillDelay bool

	RequestResponseInfo    byte // 0x19, default 0
	HasRequestResponseInfo bool

	ResponseInfo    string // 0x1A
	ServerReference string // 0x1C
	ReasonString    string // 0x1F

	ReceiveMaximum    uint16 // 0x21, default 65535
	HasReceiveMaximum bool

	TopicAliasMaximum    uint16 // 0x22, default 0
	HasTopicAliasMaximum bool

	TopicAlias    uint16 // 0x23
	HasTopicAlias bool

	MaximumQoS    byte // 0x24, default 2
	HasMaximumQoS bool

	RetainAvailable    byte // 0x25, default 1
	HasRetainAvailable bool

	User []UserProperty // 0x26

	MaximumPacketSize    uint32 // 0x27, default unlimited
	HasMaximumPacketSize bool

	WildcardSubAvailable    byte // 0x28, default 1
	HasWildcardSubAvailable bool

	SubIDAvailable    byte // 0x29, default 1
	HasSubIDAvailable bool

	SharedSubAvailable    byte // 0x2A, default 1
	HasSharedSubAvailable bool
}

// Will is the will message declared in CONNECT.
type Will struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
	Props   Properties // v5 will properties
}

// Connect is a CONNECT packet [MQTT-3.1].
type Connect struct {
	ProtocolName string // "MQTT" or "MQIsdp"
	Version      Version
	CleanStart   bool // Clean Session in 3.1.1
	KeepAlive    uint16
	ClientID     string
	Will         *Will // nil when the will flag is 0
	Username     string
	HasUsername  bool
	Password     []byte
	HasPassword  bool
	Props        Properties
}

// Connack is a CONNACK packet [MQTT-3.2].
type Connack struct {
	SessionPresent bool
	ReasonCode     ReasonCode // 3.1.1 return code or v5 reason code
	Props          Properties
}

// Publish is a PUBLISH packet [MQTT-3.3]. Topic and Payload alias the
// decode buffer.
type Publish struct {
	Dup      bool
	QoS      byte
	Retain   bool
	Topic    []byte
	PacketID uint16 // only when QoS > 0
	Props    Properties
	Payload  []byte
}

// Ack is PUBACK, PUBREC, PUBREL or PUBCOMP [MQTT-3.4..3.7]: they share one
// layout. In 3.1.1 ReasonCode is always Success and Props empty.
type Ack struct {
	Type       Type
	PacketID   uint16
	ReasonCode ReasonCode
	Props      Properties
}

// SubOptions are the options of one topic filter in SUBSCRIBE [MQTT-3.8.3.1].
type SubOptions struct {
	QoS               byte
	NoLocal           bool // v5
	RetainAsPublished bool // v5
	RetainHandling    byte // v5: 0 send, 1 send if new subscription, 2 do not send
}

// Subscription is one topic filter of SUBSCRIBE with its options.
type Subscription struct {
	Filter string
	SubOptions
}

// Subscribe is a SUBSCRIBE packet [MQTT-3.8].
type Subscribe struct {
	PacketID      uint16
	Props         Properties
	Subscriptions []Subscription
}

// Suback is a SUBACK packet [MQTT-3.9]: one reason code per filter.
type Suback struct {
	PacketID    uint16
	Props       Properties
	ReasonCodes []ReasonCode
}

// Unsubscribe is an UNSUBSCRIBE packet [MQTT-3.10].
type Unsubscribe struct {
	PacketID uint16
	Props    Properties
	Filters  []string
}

// Unsuback is an UNSUBACK packet [MQTT-3.11]; 3.1.1 carries no reason codes.
type Unsuback struct {
	PacketID    uint16
	Props       Properties
	ReasonCodes []ReasonCode
}

// Disconnect is a DISCONNECT packet [MQTT-3.14]; 3.1.1 has no body.
type Disconnect struct {
	ReasonCode ReasonCode
	Props      Properties
}

// Auth is a v5 AUTH packet [MQTT-3.15].
type Auth struct {
	ReasonCode ReasonCode
	Props      Properties
}
