package packets

import (
	"encoding/binary"
	"fmt"
)

// Errors shared by every decoder. They are package-level values so that the
// happy path and the common failure paths build no error at run time.
var (
	errShort    = fmt.Errorf("%w: unexpected end of packet", ErrMalformed)
	errTrailing = fmt.Errorf("%w: bytes after the last field", ErrMalformed)
	errVarint   = fmt.Errorf("%w: variable byte integer longer than four bytes", ErrMalformed)
)

// reader walks a packet body. Its methods return errShort when the body ends
// inside a field; callers add the name of the field.
type reader struct {
	b []byte
	i int
}

func (r *reader) len() int { return len(r.b) - r.i }

func (r *reader) byte() (byte, error) {
	if r.i >= len(r.b) {
		return 0, errShort
	}
	c := r.b[r.i]
	r.i++
	return c, nil
}

func (r *reader) uint16() (uint16, error) {
	if r.len() < 2 {
		return 0, errShort
	}
	v := binary.BigEndian.Uint16(r.b[r.i:])
	r.i += 2
	return v, nil
}

func (r *reader) uint32() (uint32, error) {
	if r.len() < 4 {
		return 0, errShort
	}
	v := binary.BigEndian.Uint32(r.b[r.i:])
	r.i += 4
	return v, nil
}

// varint reads a Variable Byte Integer [MQTT-1.5.5]: at most four bytes.
// Non-minimal encodings are accepted.
func (r *reader) varint() (int, error) {
	v, n, err := decodeVarint(r.b[r.i:])
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, errShort
	}
	r.i += n
	return v, nil
}

// binary reads Binary Data [MQTT-1.5.6]: a two byte length then the bytes,
// aliasing the body. Empty data is returned as nil.
func (r *reader) binary() ([]byte, error) {
	n, err := r.uint16()
	if err != nil {
		return nil, err
	}
	if r.len() < int(n) {
		return nil, errShort
	}
	if n == 0 {
		return nil, nil
	}
	b := r.b[r.i : r.i+int(n) : r.i+int(n)]
	r.i += int(n)
	return b, nil
}

// binaryCopy is binary for decoders whose result must outlive the body.
func (r *reader) binaryCopy() ([]byte, error) {
	b, err := r.binary()
	if b == nil || err != nil {
		return nil, err
	}
	return append([]byte(nil), b...), nil
}

// utf8 reads a UTF-8 Encoded String [MQTT-1.5.4] and checks it, aliasing
// the body.
func (r *reader) utf8() ([]byte, error) {
	b, err := r.binary()
	if err != nil {
		return nil, err
	}
	if !ValidUTF8(b) {
		return nil, ErrInvalidUTF8
	}
	return b, nil
}

// string reads a UTF-8 Encoded String into a Go string (a copy).
func (r *reader) string() (string, error) {
	b, err := r.utf8()
	return string(b), err
}

// decodeVarint decodes a Variable Byte Integer from the start of b. n == 0
// with a nil error means b ends before the integer does.
func decodeVarint(b []byte) (v, n int, err error) {
	mul := 1
	for i := 0; i < 4; i++ {
		if i >= len(b) {
			return 0, 0, nil
		}
		c := b[i]
		v += int(c&0x7F) * mul
		if c&0x80 == 0 {
			return v, i + 1, nil
		}
		mul <<= 7
	}
	return 0, 0, errVarint
}

// AppendRemainingLength appends n as a Variable Byte Integer [MQTT-1.5.5].
// n must be in [0, MaxRemainingLength].
func AppendRemainingLength(dst []byte, n int) []byte {
	for {
		c := byte(n & 0x7F)
		n >>= 7
		if n == 0 {
			return append(dst, c)
		}
		dst = append(dst, c|0x80)
	}
}

// RemainingLengthSize is the number of bytes AppendRemainingLength writes
// for n.
func RemainingLengthSize(n int) int {
	switch {
	case n < 1<<7:
		return 1
	case n < 1<<14:
		return 2
	case n < 1<<21:
		return 3
	default:
		return 4
	}
}

func appendUint16(dst []byte, v uint16) []byte { return append(dst, byte(v>>8), byte(v)) }

func appendUint32(dst []byte, v uint32) []byte {
	return append(dst, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// appendString appends a UTF-8 Encoded String or Binary Data: two byte
// length then the bytes. Values over 65,535 bytes cannot be encoded; the
// caller validates lengths.
func appendString[T string | []byte](dst []byte, s T) []byte {
	dst = appendUint16(dst, uint16(len(s)))
	return append(dst, s...)
}

// packetSize is the size of a whole packet whose remaining length is rl.
func packetSize(rl int) int { return 1 + RemainingLengthSize(rl) + rl }

func boolBit(b bool, bit byte) byte {
	if b {
		return bit
	}
	return 0
}
