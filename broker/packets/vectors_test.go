package packets

import (
	"bytes"
	"reflect"
	"testing"
)

// vector is one golden packet: raw is the whole packet, fixed header
// included, pkt the struct it decodes to. The bytes are valid in every
// version of vs. Unless decodeOnly (a valid but non-canonical encoding),
// Append of pkt must give raw exactly.
type vector struct {
	name       string
	vs         []Version
	raw        []byte
	pkt        any
	decodeOnly bool
}

var (
	v3x = []Version{V31, V311}
	v31 = []Version{V31}
	v4  = []Version{V311}
	v5  = []Version{V5}
	all = []Version{V31, V311, V5}
)

var vectors = []vector{
	// CONNECT [MQTT-3.1]
	{
		name: "CONNECT 3.1 will user password",
		vs:   v31,
		raw: []byte{
			0x10, 39, // CONNECT, remaining length
			0, 6, 'M', 'Q', 'I', 's', 'd', 'p', // protocol name
			3,          // protocol level 3.1
			0xEE,       // flags: user, password, will retain, will QoS 1, will, clean session
			0x00, 0x1E, // keep alive 30
			0, 3, 'z', 'e', 'n', // client id
			0, 3, 'l', 'w', 't', // will topic
			0, 3, 'b', 'y', 'e', // will payload
			0, 4, 'u', 's', 'e', 'r', // user name
			0, 4, 'p', 'a', 's', 's', // password
		},
		pkt: &Connect{ProtocolName: "MQIsdp", Version: V31, CleanStart: true, KeepAlive: 30, ClientID: "zen",
			Will:     &Will{Topic: "lwt", Payload: []byte("bye"), QoS: 1, Retain: true},
			Username: "user", HasUsername: true, Password: []byte("pass"), HasPassword: true},
	},
	{
		name: "CONNECT 3.1.1 minimal",
		vs:   v4,
		raw: []byte{
			0x10, 14, // CONNECT, remaining length
			0, 4, 'M', 'Q', 'T', 'T', // protocol name
			4,     // protocol level 3.1.1
			0x02,  // flags: clean session
			0, 60, // keep alive 60
			0, 2, 'c', '1', // client id
		},
		pkt: &Connect{ProtocolName: "MQTT", Version: V311, CleanStart: true, KeepAlive: 60, ClientID: "c1"},
	},
	{
		name: "CONNECT 3.1.1 will QoS 2 empty payload, user without password, empty client id",
		vs:   v4,
		raw: []byte{
			0x10, 22, // CONNECT, remaining length
			0, 4, 'M', 'Q', 'T', 'T', // protocol name
			4,    // protocol level 3.1.1
			0x96, // flags: user, will QoS 2, will, clean session
			0, 0, // keep alive 0
			0, 0, // client id ""
			0, 3, 'a', '/', 'b', // will topic
			0, 0, // will payload (empty)
			0, 1, 'u', // user name
		},
		pkt: &Connect{ProtocolName: "MQTT", Version: V311, CleanStart: true, ClientID: "",
			Will:     &Will{Topic: "a/b", QoS: 2},
			Username: "u", HasUsername: true},
	},
	{
		name: "CONNECT 5.0 every property",
		vs:   v5,
		raw: []byte{
			0x10, 120, // CONNECT, remaining length
			0, 4, 'M', 'Q', 'T', 'T', // protocol name
			5,       // protocol level 5.0
			0xCE,    // flags: user, password, will QoS 1, will, clean start
			0, 0x0A, // keep alive 10
			41,                  // properties length
			0x11, 0, 0, 0, 0x78, // session expiry interval 120
			0x15, 0, 5, 'S', 'C', 'R', 'A', 'M', // authentication method
			0x16, 0, 3, 'a', 'b', 'c', // authentication data
			0x17, 0, // request problem information 0
			0x19, 1, // request response information 1
			0x21, 0, 100, // receive maximum 100
			0x22, 0, 10, // topic alias maximum 10
			0x26, 0, 1, 'k', 0, 1, 'v', // user property k=v
			0x27, 0, 0, 0x10, 0x00, // maximum packet size 4096
			0, 3, 'i', 'd', '5', // client id
			44,      // will properties length
			0x01, 1, // payload format indicator: UTF-8
			0x02, 0, 0, 0x0E, 0x10, // message expiry interval 3600
			0x03, 0, 10, 't', 'e', 'x', 't', '/', 'p', 'l', 'a', 'i', 'n', // content type
			0x08, 0, 4, 'r', 'e', 's', 'p', // response topic
			0x09, 0, 2, 1, 2, // correlation data
			0x18, 0, 0, 0, 5, // will delay interval 5
			0x26, 0, 1, 'a', 0, 1, 'b', // user property a=b
			0, 4, 'w', 'i', 'l', 'l', // will topic
			0, 4, 'g', 'o', 'n', 'e', // will payload
			0, 1, 'u', // user name
			0, 1, 'p', // password
		},
		pkt: &Connect{ProtocolName: "MQTT", Version: V5, CleanStart: true, KeepAlive: 10, ClientID: "id5",
			Props: Properties{
				SessionExpiry: 120, HasSessionExpiry: true,
				AuthMethod: "SCRAM", AuthData: []byte("abc"),
				RequestProblemInfo: 0, HasRequestProblemInfo: true,
				RequestResponseInfo: 1, HasRequestResponseInfo: true,
				ReceiveMaximum: 100, HasReceiveMaximum: true,
				TopicAliasMaximum: 10, HasTopicAliasMaximum: true,
				User:              []UserProperty{{"k", "v"}},
				MaximumPacketSize: 4096, HasMaximumPacketSize: true,
			},
			Will: &Will{Topic: "will", Payload: []byte("gone"), QoS: 1, Props: Properties{
				PayloadFormat: 1, HasPayloadFormat: true,
				MessageExpiry: 3600, HasMessageExpiry: true,
				ContentType: "text/plain", ResponseTopic: "resp", CorrelationData: []byte{1, 2},
				WillDelay: 5, HasWillDelay: true,
				User: []UserProperty{{"a", "b"}},
			}},
			Username: "u", HasUsername: true, Password: []byte("p"), HasPassword: true},
	},
	{
		name: "CONNECT 5.0 password without user name",
		vs:   v5,
		raw: []byte{
			0x10, 18, // CONNECT, remaining length
			0, 4, 'M', 'Q', 'T', 'T', // protocol name
			5,    // protocol level 5.0
			0x42, // flags: password, clean start
			0, 0, // keep alive 0
			0,         // properties length
			0, 1, 'x', // client id
			0, 2, 'p', 'w', // password
		},
		pkt: &Connect{ProtocolName: "MQTT", Version: V5, CleanStart: true, ClientID: "x",
			Password: []byte("pw"), HasPassword: true},
	},

	// CONNACK [MQTT-3.2]
	{
		name: "CONNACK accepted, session present",
		vs:   v3x,
		raw: []byte{
			0x20, 2, // CONNACK, remaining length
			0x01, // acknowledge flags: session present
			0x00, // return code: accepted
		},
		pkt: &Connack{SessionPresent: true, ReasonCode: ConnAccepted},
	},
	{
		name: "CONNACK refused, not authorized",
		vs:   v3x,
		raw: []byte{
			0x20, 2, // CONNACK, remaining length
			0x00, // acknowledge flags
			0x05, // return code: not authorized
		},
		pkt: &Connack{ReasonCode: ConnRefusedNotAuthorized},
	},
	{
		name: "CONNACK 5.0 success",
		vs:   v5,
		raw: []byte{
			0x20, 3, // CONNACK, remaining length
			0x00, // acknowledge flags
			0x00, // reason code: success
			0,    // properties length
		},
		pkt: &Connack{},
	},
	{
		name: "CONNACK 5.0 bad user name or password",
		vs:   v5,
		raw: []byte{
			0x20, 3, // CONNACK, remaining length
			0x00, // acknowledge flags
			0x86, // reason code: bad user name or password
			0,    // properties length
		},
		pkt: &Connack{ReasonCode: BadUserNameOrPassword},
	},
	{
		name: "CONNACK 5.0 every property",
		vs:   v5,
		raw: []byte{
			0x20, 72, // CONNACK, remaining length
			0x01,                         // acknowledge flags: session present
			0x00,                         // reason code: success
			69,                           // properties length
			0x11, 0xFF, 0xFF, 0xFF, 0xFF, // session expiry interval: never
			0x12, 0, 6, 'a', 'u', 't', 'o', '-', '1', // assigned client identifier
			0x13, 0, 30, // server keep alive 30
			0x15, 0, 1, 'M', // authentication method
			0x16, 0, 1, 0xFF, // authentication data
			0x1A, 0, 2, 'r', 'i', // response information
			0x1C, 0, 3, 's', 'r', 'v', // server reference
			0x1F, 0, 2, 'o', 'k', // reason string
			0x21, 0, 20, // receive maximum 20
			0x22, 0, 5, // topic alias maximum 5
			0x24, 1, // maximum QoS 1
			0x25, 0, // retain available 0
			0x26, 0, 1, 'x', 0, 1, 'y', // user property x=y
			0x27, 0, 1, 0, 0, // maximum packet size 65536
			0x28, 0, // wildcard subscription available 0
			0x29, 0, // subscription identifiers available 0
			0x2A, 1, // shared subscription available 1
		},
		pkt: &Connack{SessionPresent: true, Props: Properties{
			SessionExpiry: 0xFFFFFFFF, HasSessionExpiry: true,
			AssignedClientID: "auto-1",
			ServerKeepAlive:  30, HasServerKeepAlive: true,
			AuthMethod: "M", AuthData: []byte{0xFF},
			ResponseInfo: "ri", ServerReference: "srv", ReasonString: "ok",
			ReceiveMaximum: 20, HasReceiveMaximum: true,
			TopicAliasMaximum: 5, HasTopicAliasMaximum: true,
			MaximumQoS: 1, HasMaximumQoS: true,
			RetainAvailable: 0, HasRetainAvailable: true,
			User:              []UserProperty{{"x", "y"}},
			MaximumPacketSize: 65536, HasMaximumPacketSize: true,
			WildcardSubAvailable: 0, HasWildcardSubAvailable: true,
			SubIDAvailable: 0, HasSubIDAvailable: true,
			SharedSubAvailable: 1, HasSharedSubAvailable: true,
		}},
	},

	// PUBLISH [MQTT-3.3]
	{
		name: "PUBLISH QoS 0",
		vs:   v3x,
		raw: []byte{
			0x30, 7, // PUBLISH QoS 0, remaining length
			0, 3, 'a', '/', 'b', // topic name
			'h', 'i', // payload
		},
		pkt: &Publish{Topic: []byte("a/b"), Payload: []byte("hi")},
	},
	{
		name: "PUBLISH QoS 1 dup retain",
		vs:   v3x,
		raw: []byte{
			0x3B, 6, // PUBLISH dup, QoS 1, retain; remaining length
			0, 1, 't', // topic name
			0, 7, // packet identifier 7
			'x', // payload
		},
		pkt: &Publish{Dup: true, QoS: 1, Retain: true, Topic: []byte("t"), PacketID: 7, Payload: []byte("x")},
	},
	{
		name: "PUBLISH QoS 2 empty payload",
		vs:   v3x,
		raw: []byte{
			0x34, 5, // PUBLISH QoS 2, remaining length
			0, 1, 't', // topic name
			0, 10, // packet identifier 10
		},
		pkt: &Publish{QoS: 2, Topic: []byte("t"), PacketID: 10},
	},
	{
		name: "PUBLISH two-byte remaining length",
		vs:   all[:2],
		raw: append([]byte{
			0x30, 0xCD, 0x01, // PUBLISH QoS 0, remaining length 205
			0, 3, 'b', 'i', 'g', // topic name
		}, bytes.Repeat([]byte{'x'}, 200)...), // payload
		pkt: &Publish{Topic: []byte("big"), Payload: bytes.Repeat([]byte{'x'}, 200)},
	},
	{
		name: "PUBLISH 5.0 QoS 0 no properties",
		vs:   v5,
		raw: []byte{
			0x30, 5, // PUBLISH QoS 0, remaining length
			0, 1, 't', // topic name
			0,   // properties length
			'x', // payload
		},
		pkt: &Publish{Topic: []byte("t"), Payload: []byte("x")},
	},
	{
		name: "PUBLISH 5.0 every property",
		vs:   v5,
		raw: []byte{
			0x32, 47, // PUBLISH QoS 1, remaining length
			0, 1, 'a', // topic name
			0, 5, // packet identifier 5
			40,      // properties length
			0x01, 1, // payload format indicator: UTF-8
			0x02, 0, 0, 0, 60, // message expiry interval 60
			0x03, 0, 4, 'j', 's', 'o', 'n', // content type
			0x08, 0, 3, 'r', '/', '1', // response topic
			0x09, 0, 2, 'i', 'd', // correlation data
			0x0B, 1, // subscription identifier 1
			0x0B, 0xC8, 0x01, // subscription identifier 200
			0x23, 0, 3, // topic alias 3
			0x26, 0, 1, 'k', 0, 1, 'v', // user property k=v
			'p', // payload
		},
		pkt: &Publish{QoS: 1, Topic: []byte("a"), PacketID: 5, Payload: []byte("p"), Props: Properties{
			PayloadFormat: 1, HasPayloadFormat: true,
			MessageExpiry: 60, HasMessageExpiry: true,
			ContentType: "json", ResponseTopic: "r/1", CorrelationData: []byte("id"),
			SubscriptionIDs: []uint32{1, 200},
			TopicAlias:      3, HasTopicAlias: true,
			User: []UserProperty{{"k", "v"}},
		}},
	},
	{
		name: "PUBLISH 5.0 empty topic with topic alias",
		vs:   v5,
		raw: []byte{
			0x30, 7, // PUBLISH QoS 0, remaining length
			0, 0, // topic name ""
			3,          // properties length
			0x23, 0, 1, // topic alias 1
			'z', // payload
		},
		pkt: &Publish{Payload: []byte("z"), Props: Properties{TopicAlias: 1, HasTopicAlias: true}},
	},

	// PUBACK, PUBREC, PUBREL, PUBCOMP [MQTT-3.4..3.7]; the 2-byte form is
	// also 5.0's short form for Success without properties.
	{
		name: "PUBACK",
		vs:   all,
		raw:  []byte{0x40, 2, 0, 1}, // PUBACK, remaining length, packet identifier 1
		pkt:  &Ack{Type: PUBACK, PacketID: 1},
	},
	{
		name: "PUBREC",
		vs:   all,
		raw:  []byte{0x50, 2, 0x12, 0x34}, // PUBREC, remaining length, packet identifier 0x1234
		pkt:  &Ack{Type: PUBREC, PacketID: 0x1234},
	},
	{
		name: "PUBREL",
		vs:   all,
		raw:  []byte{0x62, 2, 0, 2}, // PUBREL (flags 0b0010), remaining length, packet identifier 2
		pkt:  &Ack{Type: PUBREL, PacketID: 2},
	},
	{
		name: "PUBCOMP",
		vs:   all,
		raw:  []byte{0x70, 2, 0, 3}, // PUBCOMP, remaining length, packet identifier 3
		pkt:  &Ack{Type: PUBCOMP, PacketID: 3},
	},
	{
		name: "PUBACK 5.0 reason code without properties",
		vs:   v5,
		raw: []byte{
			0x40, 3, // PUBACK, remaining length
			0, 4, // packet identifier 4
			0x10, // reason code: no matching subscribers
		},
		pkt: &Ack{Type: PUBACK, PacketID: 4, ReasonCode: NoMatchingSubscribers},
	},
	{
		name: "PUBACK 5.0 success, empty properties",
		vs:   v5,
		raw: []byte{
			0x40, 4, // PUBACK, remaining length
			0, 1, // packet identifier 1
			0x00, // reason code: success
			0,    // properties length
		},
		pkt:        &Ack{Type: PUBACK, PacketID: 1},
		decodeOnly: true, // Append writes the 2-byte form
	},
	{
		name: "PUBREC 5.0 properties",
		vs:   v5,
		raw: []byte{
			0x50, 16, // PUBREC, remaining length
			0, 5, // packet identifier 5
			0x80,                 // reason code: unspecified error
			12,                   // properties length
			0x1F, 0, 2, 'n', 'o', // reason string
			0x26, 0, 1, 'a', 0, 1, 'b', // user property a=b
		},
		pkt: &Ack{Type: PUBREC, PacketID: 5, ReasonCode: UnspecifiedError,
			Props: Properties{ReasonString: "no", User: []UserProperty{{"a", "b"}}}},
	},
	{
		name: "PUBREL 5.0 packet identifier not found",
		vs:   v5,
		raw: []byte{
			0x62, 11, // PUBREL, remaining length
			0, 6, // packet identifier 6
			0x92,                           // reason code: packet identifier not found
			7,                              // properties length
			0x1F, 0, 4, 'g', 'o', 'n', 'e', // reason string
		},
		pkt: &Ack{Type: PUBREL, PacketID: 6, ReasonCode: PacketIdentifierNotFound,
			Props: Properties{ReasonString: "gone"}},
	},
	{
		name: "PUBCOMP 5.0 success with user property",
		vs:   v5,
		raw: []byte{
			0x70, 11, // PUBCOMP, remaining length
			0, 6, // packet identifier 6
			0x00,                       // reason code: success
			7,                          // properties length
			0x26, 0, 1, 'k', 0, 1, 'v', // user property k=v
		},
		pkt: &Ack{Type: PUBCOMP, PacketID: 6, Props: Properties{User: []UserProperty{{"k", "v"}}}},
	},

	// SUBSCRIBE [MQTT-3.8]
	{
		name: "SUBSCRIBE",
		vs:   v3x,
		raw: []byte{
			0x82, 12, // SUBSCRIBE (flags 0b0010), remaining length
			0, 10, // packet identifier 10
			0, 3, 'a', '/', '+', // filter
			1,         // QoS 1
			0, 1, '#', // filter
			2, // QoS 2
		},
		pkt: &Subscribe{PacketID: 10, Subscriptions: []Subscription{
			{Filter: "a/+", SubOptions: SubOptions{QoS: 1}},
			{Filter: "#", SubOptions: SubOptions{QoS: 2}},
		}},
	},
	{
		name: "SUBSCRIBE 5.0 options and properties",
		vs:   v5,
		raw: []byte{
			0x82, 32, // SUBSCRIBE, remaining length
			0, 11, // packet identifier 11
			10,               // properties length
			0x0B, 0x80, 0x01, // subscription identifier 128
			0x26, 0, 1, 'k', 0, 1, 'v', // user property k=v
			0, 3, 'x', '/', '#', // filter
			0x2E,                                                    // options: retain handling 2, retain as published, no local, QoS 2
			0, 10, '$', 's', 'h', 'a', 'r', 'e', '/', 'g', '/', 'y', // filter
			0x11, // options: retain handling 1, QoS 1
		},
		pkt: &Subscribe{PacketID: 11,
			Props: Properties{SubscriptionIDs: []uint32{128}, User: []UserProperty{{"k", "v"}}},
			Subscriptions: []Subscription{
				{Filter: "x/#", SubOptions: SubOptions{QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 2}},
				{Filter: "$share/g/y", SubOptions: SubOptions{QoS: 1, RetainHandling: 1}},
			}},
	},

	// SUBACK [MQTT-3.9]
	{
		name: "SUBACK",
		vs:   v3x,
		raw: []byte{
			0x90, 4, // SUBACK, remaining length
			0, 10, // packet identifier 10
			0x01, // granted QoS 1
			0x80, // failure
		},
		pkt: &Suback{PacketID: 10, ReasonCodes: []ReasonCode{GrantedQoS1, SubackFailure}},
	},
	{
		name: "SUBACK 5.0 no properties",
		vs:   v5,
		raw: []byte{
			0x90, 4, // SUBACK, remaining length
			0, 1, // packet identifier 1
			0,    // properties length
			0x00, // granted QoS 0
		},
		pkt: &Suback{PacketID: 1, ReasonCodes: []ReasonCode{Success}},
	},
	{
		name: "SUBACK 5.0 properties",
		vs:   v5,
		raw: []byte{
			0x90, 16, // SUBACK, remaining length
			0, 11, // packet identifier 11
			11,              // properties length
			0x1F, 0, 1, 'r', // reason string
			0x26, 0, 1, 'k', 0, 1, 'v', // user property k=v
			0x02, // granted QoS 2
			0x8F, // topic filter invalid
		},
		pkt: &Suback{PacketID: 11, ReasonCodes: []ReasonCode{GrantedQoS2, TopicFilterInvalid},
			Props: Properties{ReasonString: "r", User: []UserProperty{{"k", "v"}}}},
	},

	// UNSUBSCRIBE [MQTT-3.10]
	{
		name: "UNSUBSCRIBE",
		vs:   v3x,
		raw: []byte{
			0xA2, 10, // UNSUBSCRIBE (flags 0b0010), remaining length
			0, 12, // packet identifier 12
			0, 3, 'a', '/', 'b', // filter
			0, 1, '#', // filter
		},
		pkt: &Unsubscribe{PacketID: 12, Filters: []string{"a/b", "#"}},
	},
	{
		name: "UNSUBSCRIBE 5.0 properties",
		vs:   v5,
		raw: []byte{
			0xA2, 22, // UNSUBSCRIBE, remaining length
			0, 13, // packet identifier 13
			7,                          // properties length
			0x26, 0, 1, 'k', 0, 1, 'v', // user property k=v
			0, 10, '$', 's', 'h', 'a', 'r', 'e', '/', 'g', '/', 't', // filter
		},
		pkt: &Unsubscribe{PacketID: 13, Filters: []string{"$share/g/t"},
			Props: Properties{User: []UserProperty{{"k", "v"}}}},
	},

	// UNSUBACK [MQTT-3.11]
	{
		name: "UNSUBACK",
		vs:   v3x,
		raw:  []byte{0xB0, 2, 0, 12}, // UNSUBACK, remaining length, packet identifier 12
		pkt:  &Unsuback{PacketID: 12},
	},
	{
		name: "UNSUBACK 5.0 properties",
		vs:   v5,
		raw: []byte{
			0xB0, 9, // UNSUBACK, remaining length
			0, 13, // packet identifier 13
			4,               // properties length
			0x1F, 0, 1, 'x', // reason string
			0x00, // success
			0x11, // no subscription existed
		},
		pkt: &Unsuback{PacketID: 13, ReasonCodes: []ReasonCode{Success, NoSubscriptionExisted},
			Props: Properties{ReasonString: "x"}},
	},
	{
		name: "UNSUBACK 5.0 no properties",
		vs:   v5,
		raw: []byte{
			0xB0, 4, // UNSUBACK, remaining length
			0, 14, // packet identifier 14
			0,    // properties length
			0x87, // not authorized
		},
		pkt: &Unsuback{PacketID: 14, ReasonCodes: []ReasonCode{NotAuthorized}},
	},

	// PINGREQ, PINGRESP [MQTT-3.12, 3.13]
	{name: "PINGREQ", vs: all, raw: []byte{0xC0, 0}, pkt: &ping{PINGREQ}},
	{name: "PINGRESP", vs: all, raw: []byte{0xD0, 0}, pkt: &ping{PINGRESP}},

	// DISCONNECT [MQTT-3.14]; 5.0 omits a Normal Disconnection's reason code.
	{name: "DISCONNECT", vs: all, raw: []byte{0xE0, 0}, pkt: &Disconnect{}},
	{
		name: "DISCONNECT 5.0 with will message",
		vs:   v5,
		raw: []byte{
			0xE0, 1, // DISCONNECT, remaining length
			0x04, // reason code: disconnect with will message
		},
		pkt: &Disconnect{ReasonCode: DisconnectWithWill},
	},
	{
		name: "DISCONNECT 5.0 normal, empty properties",
		vs:   v5,
		raw: []byte{
			0xE0, 2, // DISCONNECT, remaining length
			0x00, // reason code: normal disconnection
			0,    // properties length
		},
		pkt:        &Disconnect{},
		decodeOnly: true, // Append writes the 0-byte form
	},
	{
		name: "DISCONNECT 5.0 properties",
		vs:   v5,
		raw: []byte{
			0xE0, 25, // DISCONNECT, remaining length
			0x8B,             // reason code: server shutting down
			23,               // properties length
			0x11, 0, 0, 0, 0, // session expiry interval 0
			0x1C, 0, 2, 's', '2', // server reference
			0x1F, 0, 3, 'b', 'y', 'e', // reason string
			0x26, 0, 1, 'k', 0, 1, 'v', // user property k=v
		},
		pkt: &Disconnect{ReasonCode: ServerShuttingDown, Props: Properties{
			SessionExpiry: 0, HasSessionExpiry: true,
			ServerReference: "s2", ReasonString: "bye", User: []UserProperty{{"k", "v"}},
		}},
	},

	// AUTH [MQTT-3.15], 5.0 only.
	{name: "AUTH 5.0 success", vs: v5, raw: []byte{0xF0, 0}, pkt: &Auth{}},
	{
		name: "AUTH 5.0 continue authentication",
		vs:   v5,
		raw: []byte{
			0xF0, 27, // AUTH, remaining length
			0x18,                                // reason code: continue authentication
			25,                                  // properties length
			0x15, 0, 5, 'S', 'C', 'R', 'A', 'M', // authentication method
			0x16, 0, 2, 'c', 'd', // authentication data
			0x1F, 0, 2, 'g', 'o', // reason string
			0x26, 0, 1, 'k', 0, 1, 'v', // user property k=v
		},
		pkt: &Auth{ReasonCode: ContinueAuthentication, Props: Properties{
			AuthMethod: "SCRAM", AuthData: []byte("cd"), ReasonString: "go", User: []UserProperty{{"k", "v"}},
		}},
	},
}

func vectorName(vec vector, v Version) string {
	return vec.name + "/" + map[Version]string{V31: "3.1", V311: "3.1.1", V5: "5.0"}[v]
}

func TestVectorsDecode(t *testing.T) {
	for _, vec := range vectors {
		for _, v := range vec.vs {
			t.Run(vectorName(vec, v), func(t *testing.T) {
				first, body := frameOne(t, vec.raw)
				got, err := decodeAny(v, first, body)
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				if !reflect.DeepEqual(got, vec.pkt) {
					t.Errorf("decode\n got %#v\nwant %#v", got, vec.pkt)
				}
			})
		}
	}
}

func TestVectorsEncode(t *testing.T) {
	for _, vec := range vectors {
		if vec.decodeOnly {
			continue
		}
		for _, v := range vec.vs {
			t.Run(vectorName(vec, v), func(t *testing.T) {
				got, size := encodeAny(vec.pkt, v)
				if !bytes.Equal(got, vec.raw) {
					t.Errorf("Append\n got % X\nwant % X", got, vec.raw)
				}
				if size != len(vec.raw) {
					t.Errorf("Size = %d, want %d", size, len(vec.raw))
				}
				// Append must append: a prefix in dst stays as it is.
				prefix := []byte{0xAA, 0xBB}
				if got := appendAny(prefix, vec.pkt, v); !bytes.Equal(got[:2], prefix) || !bytes.Equal(got[2:], vec.raw) {
					t.Errorf("Append after a prefix: got % X", got)
				}
			})
		}
	}
}

// appendAny is encodeAny with a destination.
func appendAny(dst []byte, p any, v Version) []byte {
	b, _ := encodeAny(p, v)
	return append(append([]byte(nil), dst...), b...)
}

// TestVectorsCoverEveryProperty guards the table: every property of
// 2.2.2.2 appears in some 5.0 vector.
func TestVectorsCoverEveryProperty(t *testing.T) {
	var seen uint64
	for _, vec := range vectors {
		for _, v := range vec.vs {
			if v != V5 {
				continue
			}
			var ps []*Properties
			var typ []Type
			switch p := vec.pkt.(type) {
			case *Connect:
				ps, typ = append(ps, &p.Props), append(typ, CONNECT)
				if p.Will != nil {
					ps, typ = append(ps, &p.Will.Props), append(typ, willProps)
				}
			case *Connack:
				ps, typ = append(ps, &p.Props), append(typ, CONNACK)
			case *Publish:
				ps, typ = append(ps, &p.Props), append(typ, PUBLISH)
			case *Ack:
				ps, typ = append(ps, &p.Props), append(typ, p.Type)
			case *Subscribe:
				ps, typ = append(ps, &p.Props), append(typ, SUBSCRIBE)
			case *Suback:
				ps, typ = append(ps, &p.Props), append(typ, SUBACK)
			case *Unsubscribe:
				ps, typ = append(ps, &p.Props), append(typ, UNSUBSCRIBE)
			case *Unsuback:
				ps, typ = append(ps, &p.Props), append(typ, UNSUBACK)
			case *Disconnect:
				ps, typ = append(ps, &p.Props), append(typ, DISCONNECT)
			case *Auth:
				ps, typ = append(ps, &p.Props), append(typ, AUTH)
			}
			for i, p := range ps {
				block := p.appendBlock(nil, typ[i])
				r := reader{b: block}
				n, _ := r.varint()
				body := reader{b: block[r.i : r.i+n]}
				for body.len() > 0 {
					id, _ := body.varint()
					seen |= 1 << id
					var tmp Properties
					if err := tmp.decodeOne(&body, id, false); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	for id := 0; id < 64; id++ {
		known := false
		for _, m := range allowedProps {
			known = known || m&(1<<id) != 0
		}
		if known && seen&(1<<id) == 0 {
			t.Errorf("no 5.0 vector carries property 0x%02X", id)
		}
	}
}
