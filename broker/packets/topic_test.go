package packets

import (
	"bytes"
	"testing"
)

func TestValidUTF8(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		want bool
	}{
		{"empty", nil, true},
		{"ascii", []byte("a/b"), true},
		{"two-byte", []byte("caf\u00e9"), true},
		{"four-byte", []byte("\U0001F600"), true},
		{"U+FEFF kept", []byte("\uFEFFa"), true}, // [MQTT-1.5.4-3]: not stripped
		{"control character allowed", []byte{0x01}, true},
		{"U+0000", []byte{'a', 0}, false},                   // [MQTT-1.5.4-2]
		{"surrogate D800", []byte{0xED, 0xA0, 0x80}, false}, // [MQTT-1.5.4-1]
		{"surrogate DFFF", []byte{0xED, 0xBF, 0xBF}, false},
		{"overlong", []byte{0xC0, 0x80}, false},
		{"truncated", []byte{0xE2, 0x82}, false},
		{"above U+10FFFF", []byte{0xF4, 0x90, 0x80, 0x80}, false},
	}
	for _, tc := range tests {
		if got := ValidUTF8(tc.b); got != tc.want {
			t.Errorf("%s: ValidUTF8(% X) = %v, want %v", tc.name, tc.b, got, tc.want)
		}
	}
}

func TestValidTopicName(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"a/b", true},
		{"/", true},
		{"$SYS/x", true},
		{"a b/ c", true},
		{"a/+", false}, // [MQTT-3.3.2-2]
		{"a/#", false},
		{"a+b", false},
		{"a\x00b", false},
	}
	for _, tc := range tests {
		if got := ValidTopicName([]byte(tc.name)); got != tc.want {
			t.Errorf("ValidTopicName(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestValidTopicFilter(t *testing.T) {
	tests := []struct {
		filter string
		want   bool
	}{
		{"#", true},
		{"+", true},
		{"/", true},
		{"a/#", true},
		{"a/+/b", true},
		{"+/+", true},
		{"/+", true},
		{"+/", true},
		{"a//b", true},
		{"$share/g/a", true},
		{"", false},      // [MQTT-4.7.3-1]
		{"a#", false},    // [MQTT-4.7.1-2]
		{"a/#/b", false}, // [MQTT-4.7.1-2]
		{"#/", false},
		{"##", false},
		{"a+", false},   // [MQTT-4.7.1-3]
		{"a/+b", false}, // [MQTT-4.7.1-3]
		{"+a", false},
		{"a/\xff", false},
		{"a\x00", false},
	}
	for _, tc := range tests {
		if got := ValidTopicFilter(tc.filter); got != tc.want {
			t.Errorf("ValidTopicFilter(%q) = %v, want %v", tc.filter, got, tc.want)
		}
	}
}

func TestValidSharedFilter(t *testing.T) {
	tests := []struct {
		filter     string
		shared, ok bool
	}{
		{"a/b", false, true},
		{"$share", false, true}, // a plain filter
		{"$share/g/a", true, true},
		{"$share/g/#", true, true},
		{"$share/g/+/x", true, true},
		{"$share/g", true, false},   // [MQTT-4.8.2-1]: a filter must follow
		{"$share/g/", true, false},  // empty filter
		{"$share//a", true, false},  // [MQTT-4.8.2-1]: share name at least one character
		{"$share/+/a", true, false}, // [MQTT-4.8.2-2]
		{"$share/#/a", true, false},
		{"$share/g/a#", true, false},
	}
	for _, tc := range tests {
		shared, ok := validSharedFilter(tc.filter)
		if shared != tc.shared || ok != tc.ok {
			t.Errorf("validSharedFilter(%q) = %v, %v; want %v, %v", tc.filter, shared, ok, tc.shared, tc.ok)
		}
	}
}

func TestPublishClone(t *testing.T) {
	raw := []byte{
		0x32, 14, // PUBLISH QoS 1
		0, 3, 'a', '/', 'b', // topic
		0, 9, // packet identifier
		4, 0x09, 0, 1, 'c', // correlation data
		'p', 'l', // payload
	}
	first, body := frameOne(t, raw)
	var p Publish
	if err := p.Decode(V5, first&0x0F, body); err != nil {
		t.Fatal(err)
	}
	c := p.Clone()
	want := &Publish{QoS: 1, Topic: []byte("a/b"), PacketID: 9, Payload: []byte("pl"),
		Props: Properties{CorrelationData: []byte("c")}}
	for i := range raw {
		raw[i] = 0xEE // the read buffer is reused
	}
	if !equalPublish(c, want) {
		t.Fatalf("clone changed with the buffer: %+v", c)
	}
	// Appending to one cloned slice must not write into the other.
	_ = append(c.Topic, 'X')
	if !bytes.Equal(c.Payload, []byte("pl")) {
		t.Errorf("Topic and Payload overlap: payload %q", c.Payload)
	}
	if empty := (&Publish{}).Clone(); empty.Topic != nil || empty.Payload != nil {
		t.Errorf("clone of empty publish: %+v", empty)
	}
}

func equalPublish(a, b *Publish) bool {
	return bytes.Equal(a.Topic, b.Topic) && bytes.Equal(a.Payload, b.Payload) && a.QoS == b.QoS &&
		a.PacketID == b.PacketID && bytes.Equal(a.Props.CorrelationData, b.Props.CorrelationData)
}

func TestPropertiesClone(t *testing.T) {
	p := Properties{CorrelationData: []byte{1}, AuthData: []byte{2}, SubscriptionIDs: []uint32{3},
		User: []UserProperty{{"k", "v"}}}
	c := p.Clone()
	p.CorrelationData[0], p.AuthData[0], p.SubscriptionIDs[0], p.User[0].Key = 9, 9, 9, "x"
	if c.CorrelationData[0] != 1 || c.AuthData[0] != 2 || c.SubscriptionIDs[0] != 3 || c.User[0].Key != "k" {
		t.Errorf("clone shares memory with the original: %+v", c)
	}
}

// TestEncodeFiltersProperties: Append writes only the properties the packet
// type may carry, so a PUBLISH's properties copied onto a PUBACK do not
// leak.
func TestEncodeFiltersProperties(t *testing.T) {
	props := Properties{TopicAlias: 1, HasTopicAlias: true, ReasonString: "r", SessionExpiry: 5,
		HasSessionExpiry: true, SubscriptionIDs: []uint32{1, 2}}
	ack := Ack{Type: PUBACK, PacketID: 1, Props: props}
	want := []byte{0x40, 8, 0, 1, 0, 4, 0x1F, 0, 1, 'r'}
	if got := ack.Append(nil, V5); !bytes.Equal(got, want) {
		t.Errorf("PUBACK: got % X, want % X", got, want)
	}
	sub := Subscribe{PacketID: 1, Props: props, Subscriptions: []Subscription{{Filter: "a"}}}
	want = []byte{0x82, 8, 0, 1, 2, 0x0B, 1, 0, 1, 'a', 0}
	want[1] = byte(len(want) - 2)
	if got := sub.Append(nil, V5); !bytes.Equal(got, want) {
		t.Errorf("SUBSCRIBE keeps one subscription identifier: got % X, want % X", got, want)
	}
}
