package packets

import (
	"math/rand/v2"
	"testing"
)

// TestRandomRoundTrip starts from structs instead of bytes (the fuzz
// targets start from bytes): random valid packets of every type must
// survive Append, Frame and Decode unchanged, with Size exact.
func TestRandomRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		v := versions[r.IntN(3)]
		for _, p := range randomPackets(r, v) {
			roundTrip(t, p, v)
		}
	}
}

func randomPackets(r *rand.Rand, v Version) []any {
	str := func(alphabet string) string {
		runes := []rune(alphabet)
		b := make([]rune, r.IntN(6))
		for i := range b {
			b[i] = runes[r.IntN(len(runes))]
		}
		return string(b)
	}
	name := func() string { return "t" + str("ab/é$ ") } // a non-empty topic name
	bin := func() []byte {
		if r.IntN(2) == 0 {
			return nil
		}
		return append([]byte{'x', 0xFF}, []byte(str("\x0012"))...) // binary: any bytes
	}
	id := func() uint16 { return uint16(1 + r.IntN(65535)) }
	props := func(t Type) Properties {
		if v != V5 {
			return Properties{}
		}
		p := randomProps(r, name, bin)
		// What one property block may hold: keep what t allows (Append
		// drops the rest anyway), one Subscription Identifier in SUBSCRIBE.
		var clean Properties
		clean.decodeBlock(&reader{b: p.appendBlock(nil, t)[RemainingLengthSize(p.Size(t)):]}, t, false)
		return clean
	}
	codes := func(set *reasonSet) []ReasonCode {
		var cs []ReasonCode
		for len(cs) < 1+r.IntN(3) {
			if c := ReasonCode(r.IntN(256)); set.has(c) {
				cs = append(cs, c)
			}
		}
		return cs
	}
	code := func(set *reasonSet) ReasonCode { return codes(set)[0] }

	c := &Connect{Version: v, ProtocolName: map[Version]string{V31: "MQIsdp", V311: "MQTT", V5: "MQTT"}[v],
		CleanStart: r.IntN(2) == 0, KeepAlive: uint16(r.IntN(65536)), ClientID: str("abc-"), Props: props(CONNECT)}
	if r.IntN(2) == 0 {
		c.Will = &Will{Topic: name(), Payload: bin(), QoS: byte(r.IntN(3)), Retain: r.IntN(2) == 0, Props: props(willProps)}
	}
	if r.IntN(2) == 0 {
		c.Username, c.HasUsername = str("user"), true
	}
	if r.IntN(2) == 0 && (c.HasUsername || v == V5) {
		c.Password, c.HasPassword = bin(), true
	}

	qos := byte(r.IntN(3))
	pub := &Publish{QoS: qos, Dup: qos > 0 && r.IntN(2) == 0, Retain: r.IntN(2) == 0, Topic: []byte(name()),
		Payload: bin(), Props: props(PUBLISH)}
	if qos > 0 {
		pub.PacketID = id()
	}
	if v == V5 && pub.Props.HasTopicAlias && r.IntN(2) == 0 {
		pub.Topic = nil
	}

	sub := &Subscribe{PacketID: id(), Props: props(SUBSCRIBE)}
	for range 1 + r.IntN(3) {
		s := Subscription{Filter: []string{"a/+", "#", "a/b/#", "+/+", "$share/g/x"}[r.IntN(5)],
			SubOptions: SubOptions{QoS: byte(r.IntN(3))}}
		if v == V5 {
			s.RetainAsPublished, s.RetainHandling = r.IntN(2) == 0, byte(r.IntN(3))
			s.NoLocal = r.IntN(2) == 0 && s.Filter[0] != '$'
		}
		sub.Subscriptions = append(sub.Subscriptions, s)
	}

	var ackType = PUBACK + Type(r.IntN(4))
	ack := &Ack{Type: ackType, PacketID: id()}
	suback := &Suback{PacketID: id(), Props: props(SUBACK), ReasonCodes: codes(&suback311Codes)}
	unsub := &Unsubscribe{PacketID: id(), Props: props(UNSUBSCRIBE), Filters: []string{"a/#", "b"}[:1+r.IntN(2)]}
	unsuback := &Unsuback{PacketID: id()}
	connack := &Connack{}
	out := []any{c, pub, sub, ack, suback, unsub, unsuback, connack, &Disconnect{}, &ping{PINGREQ}}
	if v == V5 {
		if ackType <= PUBREC {
			ack.ReasonCode = code(&pubackCodes)
		} else {
			ack.ReasonCode = code(&pubrelCodes)
		}
		ack.Props = props(ackType)
		suback.ReasonCodes = codes(&subackCodes)
		unsuback.Props, unsuback.ReasonCodes = props(UNSUBACK), codes(&unsubackCodes)
		connack.ReasonCode, connack.Props = code(&connackCodes), props(CONNACK)
		out = append(out,
			&Disconnect{ReasonCode: code(&disconnectCodes), Props: props(DISCONNECT)},
			&Auth{ReasonCode: code(&authCodes), Props: props(AUTH)})
	} else {
		connack.ReasonCode = code(&connack311Codes)
	}
	connack.SessionPresent = connack.ReasonCode == Success && r.IntN(2) == 0
	return out
}

// randomProps fills each property with probability 1/2; every value is
// valid on the wire.
func randomProps(r *rand.Rand, name func() string, bin func() []byte) Properties {
	var p Properties
	coin := func() bool { return r.IntN(2) == 0 }
	if coin() {
		p.PayloadFormat, p.HasPayloadFormat = byte(r.IntN(2)), true
	}
	if coin() {
		p.MessageExpiry, p.HasMessageExpiry = r.Uint32(), true
	}
	if coin() {
		p.ContentType = name()
	}
	if coin() {
		p.ResponseTopic = name()
	}
	p.CorrelationData = bin()
	for range r.IntN(3) {
		p.SubscriptionIDs = append(p.SubscriptionIDs, uint32(1+r.IntN(MaxRemainingLength)))
	}
	if coin() {
		p.SessionExpiry, p.HasSessionExpiry = r.Uint32(), true
	}
	if coin() {
		p.AssignedClientID = name()
	}
	if coin() {
		p.ServerKeepAlive, p.HasServerKeepAlive = uint16(r.Uint32()), true
	}
	if coin() {
		p.AuthMethod, p.AuthData = name(), bin()
	}
	if coin() {
		p.RequestProblemInfo, p.HasRequestProblemInfo = byte(r.IntN(2)), true
	}
	if coin() {
		p.WillDelay, p.HasWillDelay = r.Uint32(), true
	}
	if coin() {
		p.RequestResponseInfo, p.HasRequestResponseInfo = byte(r.IntN(2)), true
	}
	if coin() {
		p.ResponseInfo, p.ServerReference, p.ReasonString = name(), name(), name()
	}
	if coin() {
		p.ReceiveMaximum, p.HasReceiveMaximum = uint16(1+r.IntN(65535)), true
	}
	if coin() {
		p.TopicAliasMaximum, p.HasTopicAliasMaximum = uint16(r.Uint32()), true
	}
	if coin() {
		p.TopicAlias, p.HasTopicAlias = uint16(1+r.IntN(65535)), true
	}
	if coin() {
		p.MaximumQoS, p.HasMaximumQoS = byte(r.IntN(2)), true
	}
	if coin() {
		p.RetainAvailable, p.HasRetainAvailable = byte(r.IntN(2)), true
	}
	for range r.IntN(3) {
		p.User = append(p.User, UserProperty{name(), name()[1:]})
	}
	if coin() {
		p.MaximumPacketSize, p.HasMaximumPacketSize = 1+r.Uint32N(1<<31), true
	}
	if coin() {
		p.WildcardSubAvailable, p.HasWildcardSubAvailable = byte(r.IntN(2)), true
	}
	if coin() {
		p.SubIDAvailable, p.HasSubIDAvailable = byte(r.IntN(2)), true
	}
	if coin() {
		p.SharedSubAvailable, p.HasSharedSubAvailable = byte(r.IntN(2)), true
	}
	return p
}
