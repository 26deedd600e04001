package packets

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"testing/iotest"
)

// Each decoder fuzz target is seeded with the golden vectors (and the
// invalid ones) of its packet type. The property: a decoder never panics,
// and what it accepts re-encodes (with Size matching) to bytes that decode
// to an equal struct.

// fuzzVersion maps any byte to a version; 3, 4 and 5 map to themselves.
func fuzzVersion(b byte) Version { return versions[int(b)%3] }

func seed(f *testing.F, types ...Type) {
	is := func(first byte) bool {
		for _, t := range types {
			if Type(first>>4) == t {
				return true
			}
		}
		return false
	}
	for _, vec := range vectors {
		if !is(vec.raw[0]) {
			continue
		}
		first, body := frameOne(f, vec.raw)
		for _, v := range vec.vs {
			f.Add(byte(v), first, body)
		}
	}
	for _, tc := range invalids {
		if is(tc.raw[0]) {
			first, body := frameOne(f, tc.raw)
			f.Add(byte(tc.v), first, body)
		}
	}
}

// fuzzDecode decodes body as packet type t and checks the round trip when
// the decoder accepts it.
func fuzzDecode(t *testing.T, vb, first byte, body []byte, typ Type) {
	v := fuzzVersion(vb)
	if typ == PUBACK { // one target for the four acknowledgements
		typ = PUBACK + Type(first>>4)%4
	}
	first = byte(typ)<<4 | first&0x0F
	p, err := decodeAny(v, first, body)
	if err != nil {
		if Code(err) == UnspecifiedError {
			t.Fatalf("decode error without a sentinel: %v", err)
		}
		return
	}
	if c, ok := p.(*Connect); ok {
		v = c.Version
	}
	raw, size := encodeAny(p, v)
	if size != len(raw) {
		t.Fatalf("Size = %d, Append wrote %d", size, len(raw))
	}
	f2, body2 := frameOne(t, raw)
	if typ == PUBLISH && f2 != first {
		t.Fatalf("PUBLISH first byte 0x%02X re-encoded as 0x%02X", first, f2)
	}
	p2, err := decodeAny(v, f2, body2)
	if err != nil {
		t.Fatalf("re-encoded packet does not decode: %v\n% X\n%#v", err, raw, p)
	}
	if !reflect.DeepEqual(p, p2) {
		t.Fatalf("round trip differs\nfirst  %#v\nsecond %#v\nbytes % X", p, p2, raw)
	}
}

func FuzzConnect(f *testing.F) {
	seed(f, CONNECT)
	f.Fuzz(func(t *testing.T, v, first byte, body []byte) { fuzzDecode(t, v, first, body, CONNECT) })
}

func FuzzConnack(f *testing.F) {
	seed(f, CONNACK)
	f.Fuzz(func(t *testing.T, v, first byte, body []byte) { fuzzDecode(t, v, first, body, CONNACK) })
}

func FuzzPublish(f *testing.F) {
	seed(f, PUBLISH)
	f.Fuzz(func(t *testing.T, v, first byte, body []byte) { fuzzDecode(t, v, first, body, PUBLISH) })
}

func FuzzAck(f *testing.F) {
	seed(f, PUBACK, PUBREC, PUBREL, PUBCOMP)
	f.Fuzz(func(t *testing.T, v, first byte, body []byte) { fuzzDecode(t, v, first, body, PUBACK) })
}

func FuzzSubscribe(f *testing.F) {
	seed(f, SUBSCRIBE)
	f.Fuzz(func(t *testing.T, v, first byte, body []byte) { fuzzDecode(t, v, first, body, SUBSCRIBE) })
}

func FuzzSuback(f *testing.F) {
	seed(f, SUBACK)
	f.Fuzz(func(t *testing.T, v, first byte, body []byte) { fuzzDecode(t, v, first, body, SUBACK) })
}

func FuzzUnsubscribe(f *testing.F) {
	seed(f, UNSUBSCRIBE)
	f.Fuzz(func(t *testing.T, v, first byte, body []byte) { fuzzDecode(t, v, first, body, UNSUBSCRIBE) })
}

func FuzzUnsuback(f *testing.F) {
	seed(f, UNSUBACK)
	f.Fuzz(func(t *testing.T, v, first byte, body []byte) { fuzzDecode(t, v, first, body, UNSUBACK) })
}

func FuzzDisconnect(f *testing.F) {
	seed(f, DISCONNECT)
	f.Fuzz(func(t *testing.T, v, first byte, body []byte) { fuzzDecode(t, v, first, body, DISCONNECT) })
}

func FuzzAuth(f *testing.F) {
	seed(f, AUTH)
	f.Fuzz(func(t *testing.T, v, first byte, body []byte) { fuzzDecode(t, v, first, body, AUTH) })
}

// framed is what framing a stream yields: the packets, then either an error
// or the bytes of an incomplete packet left over.
type framed struct {
	packets [][]byte // whole packets, fixed header included
	err     error
	rest    []byte
}

func frameWhole(data []byte, max int) framed {
	var out framed
	for {
		_, _, n, err := Frame(data, max)
		if err != nil {
			out.err = err
			return out
		}
		if n == 0 {
			out.rest = data
			return out
		}
		out.packets = append(out.packets, data[:n])
		data = data[n:]
	}
}

// frameChunked feeds data to a read buffer in chunks whose sizes come from
// splits, as bytes arrive from a socket, and frames after each chunk.
func frameChunked(data, splits []byte, max int) framed {
	var out framed
	var buf []byte
	for i := 0; len(data) > 0; i++ {
		n := len(data)
		if len(splits) > 0 {
			n = min(n, 1+int(splits[i%len(splits)])%17)
		}
		buf, data = append(buf, data[:n]...), data[n:]
		for {
			first, body, n, err := Frame(buf, max)
			if err != nil {
				out.err = err
				return out
			}
			if n == 0 {
				break
			}
			if first != buf[0] || !bytes.Equal(body, buf[n-len(body):n]) {
				panic("Frame returned a body that is not the packet's tail")
			}
			out.packets = append(out.packets, append([]byte(nil), buf[:n]...))
			buf = buf[n:]
		}
	}
	out.rest = buf
	return out
}

// frameReader reads the stream with ReadPacket, a few bytes at a time.
func frameReader(data []byte, max int) framed {
	var out framed
	r := iotest.HalfReader(bytes.NewReader(data))
	for {
		first, body, err := ReadPacket(r, nil, max)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				out.err = err
			}
			return out
		}
		pkt := AppendRemainingLength([]byte{first}, len(body))
		out.packets = append(out.packets, append(pkt, body...))
	}
}

func FuzzFrame(f *testing.F) {
	var stream []byte
	for _, vec := range vectors {
		stream = append(stream, vec.raw...)
		f.Add(vec.raw, []byte{1}, uint16(0))
	}
	f.Add(stream, []byte{0, 3, 7, 16}, uint16(0))
	f.Add(stream, []byte{5}, uint16(64))
	f.Add([]byte{0x30, 0x80, 0x80, 0x80, 0x80, 0x01}, []byte{0}, uint16(0))
	f.Add([]byte{0x30, 0x83, 0x00, 0, 1, 't', 0xC0}, []byte{2}, uint16(6))
	f.Fuzz(func(t *testing.T, data, splits []byte, max uint16) {
		whole := frameWhole(data, int(max))
		chunked := frameChunked(data, splits, int(max))
		if len(whole.packets) != len(chunked.packets) {
			t.Fatalf("whole: %d packets, chunked: %d", len(whole.packets), len(chunked.packets))
		}
		for i := range whole.packets {
			if !bytes.Equal(whole.packets[i], chunked.packets[i]) {
				t.Fatalf("packet %d: whole % X, chunked % X", i, whole.packets[i], chunked.packets[i])
			}
		}
		if (whole.err == nil) != (chunked.err == nil) || !sameSentinel(whole.err, chunked.err) {
			t.Fatalf("whole err %v, chunked err %v", whole.err, chunked.err)
		}
		if !bytes.Equal(whole.rest, chunked.rest) {
			t.Fatalf("left over: whole % X, chunked % X", whole.rest, chunked.rest)
		}

		// ReadPacket agrees on the packets (it re-encodes the remaining
		// length minimally, so compare through Frame).
		read := frameReader(data, int(max))
		if len(read.packets) != len(whole.packets) {
			t.Fatalf("ReadPacket: %d packets, Frame: %d", len(read.packets), len(whole.packets))
		}
		for i, p := range read.packets {
			f1, b1, _, _ := Frame(p, 0)
			f2, b2, _, _ := Frame(whole.packets[i], 0)
			if f1 != f2 || !bytes.Equal(b1, b2) {
				t.Fatalf("packet %d: ReadPacket % X, Frame % X", i, p, whole.packets[i])
			}
		}
		if !sameSentinel(read.err, whole.err) {
			t.Fatalf("ReadPacket err %v, Frame err %v", read.err, whole.err)
		}
	})
}

func sameSentinel(a, b error) bool {
	for _, s := range []error{ErrPacketTooLarge, ErrIncompleteRemaining} {
		if errors.Is(a, s) != errors.Is(b, s) {
			return false
		}
	}
	return true
}
