package packets

import (
	"errors"
	"fmt"
	"io"
	"slices"
)

var errRemaining = fmt.Errorf("%w: %w", ErrMalformed, ErrIncompleteRemaining)

// Frame finds the first complete packet in buf. It returns the first byte
// of the fixed header, the body (aliasing buf) and the number of bytes the
// packet occupies in buf. n == 0 with a nil error means buf holds only part
// of a packet and more bytes are needed.
//
// A remaining length longer than four bytes wraps ErrMalformed and
// ErrIncompleteRemaining; non-minimal encodings are accepted. When maxSize
// > 0 and the whole packet would be larger, Frame returns ErrPacketTooLarge
// as soon as the fixed header is complete, before the body arrives.
//
// Frame does not look at the packet type or flags: the decoders do.
func Frame(buf []byte, maxSize int) (first byte, body []byte, n int, err error) {
	if len(buf) < 2 {
		return 0, nil, 0, nil
	}
	rl, vn, err := decodeVarint(buf[1:])
	if err != nil {
		return 0, nil, 0, errRemaining
	}
	if vn == 0 {
		return 0, nil, 0, nil
	}
	total := 1 + vn + rl
	if maxSize > 0 && total > maxSize {
		return 0, nil, 0, fmt.Errorf("%w: %d bytes, limit %d", ErrPacketTooLarge, total, maxSize)
	}
	if len(buf) < total {
		return 0, nil, 0, nil
	}
	return buf[0], buf[1+vn : total : total], total, nil
}

// ReadPacket reads one packet from r. The body is read into buf when it is
// large enough, else into a new slice that grows as the bytes arrive. It is meant for simple clients and
// tests; the broker frames packets out of its own read buffer with Frame.
//
// io.EOF means r ended before the first byte; an end inside the packet is
// io.ErrUnexpectedEOF.
func ReadPacket(r io.Reader, buf []byte, maxSize int) (first byte, body []byte, err error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:1]); err != nil {
		return 0, nil, err
	}
	var rl, vn int
	for i := 1; ; i++ {
		if i == 5 {
			return 0, nil, errRemaining
		}
		if _, err := io.ReadFull(r, hdr[i:i+1]); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, nil, err
		}
		if hdr[i]&0x80 == 0 {
			rl, vn, _ = decodeVarint(hdr[1 : i+1])
			break
		}
	}
	if total := 1 + vn + rl; maxSize > 0 && total > maxSize {
		return 0, nil, fmt.Errorf("%w: %d bytes, limit %d", ErrPacketTooLarge, total, maxSize)
	}
	body, err = readBody(r, buf[:0], rl)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return hdr[0], body, nil
}

// readBody reads n bytes into buf. Beyond buf's capacity it grows the
// buffer as bytes arrive, so a peer cannot make it allocate the 256 MB a
// remaining length may claim by sending five bytes.
func readBody(r io.Reader, buf []byte, n int) ([]byte, error) {
	const step = 64 << 10
	if cap(buf) >= n {
		buf = buf[:n]
		_, err := io.ReadFull(r, buf)
		return buf, err
	}
	for len(buf) < n {
		chunk := min(n-len(buf), max(len(buf), step))
		buf = slices.Grow(buf, chunk)
		if _, err := io.ReadFull(r, buf[len(buf):len(buf)+chunk]); err != nil {
			return nil, err
		}
		buf = buf[:len(buf)+chunk]
	}
	return buf, nil
}
