package cluster

import (
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/fleetmq/fleetmq/broker/outbox"
	"github.com/fleetmq/fleetmq/broker/packets"
)

// encodeSeq is encode with the sequence number filled in, as Publish does.
func encodeSeq(sender string, seq uint64, m *outbox.Message) []byte {
	b, at := encode(sender, m)
	binary.BigEndian.PutUint64(b[at:], seq)
	return b
}

func TestCodecRoundTrip(t *testing.T) {
	m := &outbox.Message{
		Topic: "fleet/7/temp", Payload: []byte("21.5"), QoS: 2, Retain: true,
		Props: packets.Properties{
			ContentType: "text/plain", ResponseTopic: "replies/7", CorrelationData: []byte{1, 2},
			PayloadFormat: 1, HasPayloadFormat: true,
			User: []packets.UserProperty{{Key: "site", Value: "berlin"}},
		},
		ExpiresAt: 1_900_000_000_000_000_000, Created: 1_800_000_000_000_000_000, Origin: "sensor-7",
	}
	sender, seq, got, err := decode(encodeSeq("acme-0/X1", 42, m))
	if err != nil {
		t.Fatal(err)
	}
	if sender != "acme-0/X1" || seq != 42 {
		t.Errorf("sender, seq = %q, %d; want acme-0/X1, 42", sender, seq)
	}
	if !reflect.DeepEqual(got, m) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, m)
	}
}

// Whatever arrives on a subject (a truncated or foreign message) is an
// error, never a panic.
func TestDecodeMalformed(t *testing.T) {
	full := encodeSeq("n/1", 7, &outbox.Message{Topic: "a/b", Payload: []byte("x"), QoS: 1})
	for i := range len(full) {
		if _, _, _, err := decode(full[:i]); err == nil {
			t.Errorf("decode of the first %d of %d bytes: no error", i, len(full))
		}
	}
	for _, b := range [][]byte{nil, {2}, {wireV1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}} {
		if _, _, _, err := decode(b); err == nil {
			t.Errorf("decode(%x): no error", b)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(encodeSeq("n/1", 1, &outbox.Message{Topic: "a", Payload: []byte("p"), QoS: 1}))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, m, err := decode(b)
		if err == nil && m == nil {
			t.Fatal("no error and no message")
		}
	})
}
