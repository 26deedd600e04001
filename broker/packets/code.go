package packets

import "errors"

// More sentinel decode errors, next to those in types.go.
var (
	// ErrInvalidReasonCode is a reason code (or 3.1.1 return code) that the
	// spec does not list for the packet carrying it.
	ErrInvalidReasonCode = errors.New("packets: reason code not allowed in this packet")
	// ErrTopicAliasInvalid is a v5 Topic Alias of 0 [MQTT-3.3.2-8].
	ErrTopicAliasInvalid = errors.New("packets: topic alias 0")
)

// codes maps sentinels to v5 reason codes. Order matters: an error may wrap
// more than one sentinel (a v5 SUBSCRIBE with QoS 3 wraps ErrProtocol and
// ErrInvalidQoS) and the first match wins.
//
// The 5.0 spec (1.2) calls a packet that cannot be parsed Malformed and
// one that parses but carries data the protocol does not allow a Protocol
// Error; where a statement names the code, it is the one used:
//   - reserved flag bits: Malformed [MQTT-2.1.3-1], [MQTT-3.1.2-3],
//     [MQTT-3.8.3-5];
//   - an identifier not valid for its packet type: Malformed (2.2.2.2);
//   - a property twice, Receive Maximum / Maximum Packet Size /
//     Subscription Identifier 0, a byte property other than 0 or 1, SUBSCRIBE
//     QoS 3 or Retain Handling 3, No Local on a shared subscription, a
//     SUBSCRIBE or UNSUBSCRIBE with no filters: Protocol Error;
//   - PUBLISH QoS 3 and will QoS 3: Malformed [MQTT-3.3.1-4], [MQTT-3.1.2-12];
//   - ill-formed UTF-8 and U+0000: Malformed [MQTT-1.5.4-1], [MQTT-1.5.4-2].
var codes = [...]struct {
	err  error
	code ReasonCode
}{
	{ErrPacketTooLarge, PacketTooLarge},
	{ErrUnsupportedVersion, UnsupportedProtocolVersion},
	{ErrTopicAliasInvalid, TopicAliasInvalid},
	{ErrProtocol, ProtocolError},
	{ErrDuplicateProperty, ProtocolError},
	{ErrInvalidPacketID, ProtocolError},
	{ErrEmptySubscribe, ProtocolError},
	{ErrInvalidReasonCode, ProtocolError},
	{ErrTopicNameInvalid, TopicNameInvalid},
	{ErrTopicFilterInvalid, TopicFilterInvalid},
	{ErrMalformed, MalformedPacket},
	{ErrInvalidUTF8, MalformedPacket},
	{ErrReservedFlags, MalformedPacket},
	{ErrInvalidQoS, MalformedPacket},
	{ErrUnexpectedProperty, MalformedPacket},
	{ErrUnknownPacketType, MalformedPacket},
	{ErrIncompleteRemaining, MalformedPacket},
}

// Code maps a decode error to the v5 reason code the broker sends in
// CONNACK or DISCONNECT: Success for nil, UnspecifiedError for an error that
// wraps no sentinel of this package (an I/O error, say).
func Code(err error) ReasonCode {
	if err == nil {
		return Success
	}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return UnspecifiedError
}

// reasonSet is a set of reason codes: one bit per byte value.
type reasonSet [4]uint64

func newReasonSet(codes ...ReasonCode) (s reasonSet) {
	for _, c := range codes {
		s[c>>6] |= 1 << (c & 63)
	}
	return s
}

func (s *reasonSet) has(c ReasonCode) bool { return s[c>>6]&(1<<(c&63)) != 0 }

// Reason codes each v5 packet may carry [MQTT-2.4], tables in 3.2.2.2,
// 3.4.2.1, 3.5.2.1, 3.6.2.1, 3.7.2.1, 3.9.3, 3.11.3, 3.14.2.1, 3.15.2.1.
var (
	connackCodes = newReasonSet(Success, UnspecifiedError, MalformedPacket, ProtocolError,
		ImplementationSpecificError, UnsupportedProtocolVersion, ClientIdentifierNotValid,
		BadUserNameOrPassword, NotAuthorized, ServerUnavailable, ServerBusy, Banned,
		BadAuthenticationMethod, TopicNameInvalid, PacketTooLarge, QuotaExceeded,
		PayloadFormatInvalid, RetainNotSupported, QoSNotSupported, UseAnotherServer,
		ServerMoved, ConnectionRateExceeded)
	pubackCodes = newReasonSet(Success, NoMatchingSubscribers, UnspecifiedError,
		ImplementationSpecificError, NotAuthorized, TopicNameInvalid, PacketIdentifierInUse,
		QuotaExceeded, PayloadFormatInvalid) // PUBACK and PUBREC
	pubrelCodes = newReasonSet(Success, PacketIdentifierNotFound) // PUBREL and PUBCOMP
	subackCodes = newReasonSet(Success, GrantedQoS1, GrantedQoS2, UnspecifiedError,
		ImplementationSpecificError, NotAuthorized, TopicFilterInvalid, PacketIdentifierInUse,
		QuotaExceeded, SharedSubsNotSupported, SubIDsNotSupported, WildcardSubsNotSupported)
	unsubackCodes = newReasonSet(Success, NoSubscriptionExisted, UnspecifiedError,
		ImplementationSpecificError, NotAuthorized, TopicFilterInvalid, PacketIdentifierInUse)
	disconnectCodes = newReasonSet(Success, DisconnectWithWill, UnspecifiedError, MalformedPacket,
		ProtocolError, ImplementationSpecificError, NotAuthorized, ServerBusy, ServerShuttingDown,
		KeepAliveTimeout, SessionTakenOver, TopicFilterInvalid, TopicNameInvalid,
		ReceiveMaximumExceeded, TopicAliasInvalid, PacketTooLarge, MessageRateTooHigh,
		QuotaExceeded, AdministrativeAction, PayloadFormatInvalid, RetainNotSupported,
		QoSNotSupported, UseAnotherServer, ServerMoved, SharedSubsNotSupported,
		ConnectionRateExceeded, MaximumConnectTime, SubIDsNotSupported, WildcardSubsNotSupported)
	authCodes = newReasonSet(Success, ContinueAuthentication, ReAuthenticate)

	// 3.1.1 CONNACK return codes 0-5 [MQTT-3.2.2.3] and SUBACK return codes
	// [MQTT-3.9.3]; 3.1 has no 0x80 in SUBACK but it is accepted.
	connack311Codes = newReasonSet(ConnAccepted, ConnRefusedProtocolVersion,
		ConnRefusedIdentifierRejected, ConnRefusedServerUnavailable, ConnRefusedBadUsernamePass,
		ConnRefusedNotAuthorized)
	suback311Codes = newReasonSet(Success, GrantedQoS1, GrantedQoS2, SubackFailure)
)
