package packets

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// The boundaries of the Variable Byte Integer table in [MQTT-1.5.5].
var remainingLengths = []struct {
	n   int
	enc []byte
}{
	{0, []byte{0x00}},
	{127, []byte{0x7F}},
	{128, []byte{0x80, 0x01}},
	{16383, []byte{0xFF, 0x7F}},
	{16384, []byte{0x80, 0x80, 0x01}},
	{2097151, []byte{0xFF, 0xFF, 0x7F}},
	{2097152, []byte{0x80, 0x80, 0x80, 0x01}},
	{MaxRemainingLength, []byte{0xFF, 0xFF, 0xFF, 0x7F}},
}

func TestRemainingLength(t *testing.T) {
	for _, tc := range remainingLengths {
		if got := AppendRemainingLength(nil, tc.n); !bytes.Equal(got, tc.enc) {
			t.Errorf("AppendRemainingLength(%d) = % X, want % X", tc.n, got, tc.enc)
		}
		if got := RemainingLengthSize(tc.n); got != len(tc.enc) {
			t.Errorf("RemainingLengthSize(%d) = %d, want %d", tc.n, got, len(tc.enc))
		}
		v, n, err := decodeVarint(tc.enc)
		if v != tc.n || n != len(tc.enc) || err != nil {
			t.Errorf("decodeVarint(% X) = %d, %d, %v; want %d, %d, nil", tc.enc, v, n, err, tc.n, len(tc.enc))
		}
	}
}

func TestFrame(t *testing.T) {
	tests := []struct {
		name    string
		buf     []byte
		max     int
		n       int
		body    []byte
		wantErr error
	}{
		{"empty", nil, 0, 0, nil, nil},
		{"first byte only", []byte{0xC0}, 0, 0, nil, nil},
		{"PINGREQ", []byte{0xC0, 0x00}, 0, 2, []byte{}, nil},
		{"PINGREQ and more", []byte{0xC0, 0x00, 0xD0}, 0, 2, []byte{}, nil},
		{"header incomplete", []byte{0x30, 0x80}, 0, 0, nil, nil},
		{"header incomplete, 3 bytes", []byte{0x30, 0x80, 0x80, 0x80}, 0, 0, nil, nil},
		{"body incomplete", []byte{0x30, 0x03, 0, 1}, 0, 0, nil, nil},
		{"complete", []byte{0x30, 0x03, 0, 1, 't'}, 0, 5, []byte{0, 1, 't'}, nil},
		{"non-minimal length accepted", []byte{0x30, 0x83, 0x00, 0, 1, 't'}, 0, 6, []byte{0, 1, 't'}, nil},
		// [MQTT-1.5.5]: at most four bytes.
		{"five-byte length", []byte{0x30, 0x80, 0x80, 0x80, 0x80, 0x01}, 0, 0, nil, ErrIncompleteRemaining},
		{"five-byte length, malformed", []byte{0x30, 0xFF, 0xFF, 0xFF, 0xFF}, 0, 0, nil, ErrMalformed},
		{"exactly max", []byte{0x30, 0x03, 0, 1, 't'}, 5, 5, []byte{0, 1, 't'}, nil},
		{"one over max", []byte{0x30, 0x03, 0, 1, 't'}, 4, 0, nil, ErrPacketTooLarge},
		// Too large is known from the header alone.
		{"too large before the body", []byte{0x30, 0xFF, 0xFF, 0xFF, 0x7F}, 1 << 20, 0, nil, ErrPacketTooLarge},
		{"max length, no limit, incomplete", []byte{0x30, 0xFF, 0xFF, 0xFF, 0x7F}, 0, 0, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			first, body, n, err := Frame(tc.buf, tc.max)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if n != tc.n || !bytes.Equal(body, tc.body) || (tc.body != nil) != (body != nil) {
				t.Fatalf("n, body = %d, % X; want %d, % X", n, body, tc.n, tc.body)
			}
			if n > 0 && first != tc.buf[0] {
				t.Errorf("first = 0x%02X, want 0x%02X", first, tc.buf[0])
			}
		})
	}
}

func TestReadPacket(t *testing.T) {
	stream := []byte{
		0x30, 0x03, 0, 1, 't', // PUBLISH
		0xC0, 0x00, // PINGREQ
		0x30, 0x80, 0x01, // PUBLISH, remaining length 128, body cut short
	}
	r := iotest.OneByteReader(bytes.NewReader(stream))
	buf := make([]byte, 0, 64)
	first, body, err := ReadPacket(r, buf, 0)
	if err != nil || first != 0x30 || !bytes.Equal(body, []byte{0, 1, 't'}) {
		t.Fatalf("1st packet: 0x%02X % X %v", first, body, err)
	}
	if &body[0] != &buf[:1][0] {
		t.Errorf("body does not reuse buf")
	}
	if first, body, err = ReadPacket(r, buf, 0); err != nil || first != 0xC0 || len(body) != 0 {
		t.Fatalf("2nd packet: 0x%02X % X %v", first, body, err)
	}
	if _, _, err = ReadPacket(r, buf, 0); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut packet: err = %v, want io.ErrUnexpectedEOF", err)
	}
	if _, _, err = ReadPacket(r, buf, 0); !errors.Is(err, io.EOF) {
		t.Fatalf("at end: err = %v, want io.EOF", err)
	}

	// Too large is reported before the body is read.
	if _, _, err := ReadPacket(bytes.NewReader([]byte{0x30, 0xFF, 0x7F}), nil, 1000); !errors.Is(err, ErrPacketTooLarge) {
		t.Errorf("too large: err = %v", err)
	}
	if _, _, err := ReadPacket(bytes.NewReader([]byte{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}), nil, 0); !errors.Is(err, ErrIncompleteRemaining) {
		t.Errorf("five-byte length: err = %v", err)
	}
	if _, _, err := ReadPacket(bytes.NewReader([]byte{0x30}), nil, 0); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut header: err = %v", err)
	}
}

// TestReadPacketClaimedLength: a header claiming 256 MB must not make
// ReadPacket allocate 256 MB before the bytes arrive.
func TestReadPacketClaimedLength(t *testing.T) {
	hdr := []byte{0x30, 0xFF, 0xFF, 0xFF, 0x7F, 0, 1, 't'}
	allocs := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _, err := ReadPacket(bytes.NewReader(hdr), nil, 0)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				b.Fatal(err)
			}
		}
	})
	if per := allocs.AllocedBytesPerOp(); per > 1<<20 {
		t.Errorf("ReadPacket allocated %d bytes for a 3-byte body", per)
	}
}
