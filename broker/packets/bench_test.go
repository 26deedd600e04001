package packets

import "testing"

var (
	benchPublish311 = []byte{
		0x32, 0x1A, // PUBLISH QoS 1
		0, 11, 's', 'e', 'n', 's', 'o', 'r', '/', 't', 'e', 'm', 'p', // topic
		0, 1, // packet identifier
		'{', '"', 't', '"', ':', '2', '1', '.', '5', '}', '\n', // payload
	}
	benchPublish5 = []byte{
		0x32, 0x2A, // PUBLISH QoS 1
		0, 11, 's', 'e', 'n', 's', 'o', 'r', '/', 't', 'e', 'm', 'p', // topic
		0, 1, // packet identifier
		15,      // properties length
		0x01, 1, // payload format indicator
		0x02, 0, 0, 0, 60, // message expiry interval
		0x09, 0, 2, 'i', 'd', // correlation data
		0x23, 0, 4, // topic alias
		'{', '"', 't', '"', ':', '2', '1', '.', '5', '}', '\n', // payload
	}
)

// TestZeroAlloc: the hot path (frame, decode and encode a PUBLISH without
// strings or user properties) allocates nothing.
func TestZeroAlloc(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    Version
		raw  []byte
	}{{"3.1.1", V311, benchPublish311}, {"5.0", V5, benchPublish5}} {
		var p Publish
		first, body := frameOne(t, tc.raw)
		if err := p.Decode(tc.v, first&0x0F, body); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		dst := make([]byte, 0, 256)
		if n := testing.AllocsPerRun(100, func() {
			_, body, _, _ := Frame(tc.raw, 1024)
			_ = p.Decode(tc.v, first&0x0F, body)
		}); n != 0 {
			t.Errorf("%s: Frame+Decode allocates %v times", tc.name, n)
		}
		if n := testing.AllocsPerRun(100, func() {
			dst = p.Append(dst[:0], tc.v)
			_ = p.Size(tc.v)
		}); n != 0 {
			t.Errorf("%s: Append allocates %v times", tc.name, n)
		}
		ack := Ack{Type: PUBACK, PacketID: p.PacketID}
		if n := testing.AllocsPerRun(100, func() { dst = ack.Append(dst[:0], tc.v) }); n != 0 {
			t.Errorf("%s: Ack.Append allocates %v times", tc.name, n)
		}
		if got := p.Append(nil, tc.v); string(got) != string(tc.raw) {
			t.Errorf("%s: re-encoded % X, want % X", tc.name, got, tc.raw)
		}
	}
}

func BenchmarkDecodePublish(b *testing.B) {
	for _, bc := range []struct {
		name string
		v    Version
		raw  []byte
	}{{"3.1.1", V311, benchPublish311}, {"5.0", V5, benchPublish5}} {
		b.Run(bc.name, func(b *testing.B) {
			first, body := frameOne(b, bc.raw)
			var p Publish
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.raw)))
			for b.Loop() {
				if err := p.Decode(bc.v, first&0x0F, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendPublish(b *testing.B) {
	for _, bc := range []struct {
		name string
		v    Version
		raw  []byte
	}{{"3.1.1", V311, benchPublish311}, {"5.0", V5, benchPublish5}} {
		b.Run(bc.name, func(b *testing.B) {
			first, body := frameOne(b, bc.raw)
			var p Publish
			if err := p.Decode(bc.v, first&0x0F, body); err != nil {
				b.Fatal(err)
			}
			dst := make([]byte, 0, 256)
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.raw)))
			for b.Loop() {
				dst = p.Append(dst[:0], bc.v)
			}
		})
	}
}

// BenchmarkFrame splits a read buffer of 100 PUBLISH packets.
func BenchmarkFrame(b *testing.B) {
	var buf []byte
	for range 100 {
		buf = append(buf, benchPublish311...)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		rest := buf
		for len(rest) > 0 {
			_, _, n, err := Frame(rest, 1<<20)
			if err != nil || n == 0 {
				b.Fatal(n, err)
			}
			rest = rest[n:]
		}
	}
}
