package packets

import (
	"fmt"
	"reflect"
	"testing"
)

// ping stands for PINGREQ and PINGRESP in the vector tables: they have no
// struct of their own.
type ping struct{ Type Type }

var versions = [...]Version{V31, V311, V5}

// decodeAny dispatches one framed packet to its decoder, as the broker does.
func decodeAny(v Version, first byte, body []byte) (any, error) {
	t, flags := Type(first>>4), first&0x0F
	switch t {
	case CONNECT:
		p := new(Connect)
		return p, p.Decode(flags, body)
	case CONNACK:
		p := new(Connack)
		return p, p.Decode(v, flags, body)
	case PUBLISH:
		p := new(Publish)
		return p, p.Decode(v, flags, body)
	case PUBACK, PUBREC, PUBREL, PUBCOMP:
		p := new(Ack)
		return p, p.Decode(v, t, flags, body)
	case SUBSCRIBE:
		p := new(Subscribe)
		return p, p.Decode(v, flags, body)
	case SUBACK:
		p := new(Suback)
		return p, p.Decode(v, flags, body)
	case UNSUBSCRIBE:
		p := new(Unsubscribe)
		return p, p.Decode(v, flags, body)
	case UNSUBACK:
		p := new(Unsuback)
		return p, p.Decode(v, flags, body)
	case PINGREQ, PINGRESP:
		return &ping{t}, DecodeEmpty(t, flags, body)
	case DISCONNECT:
		p := new(Disconnect)
		return p, p.Decode(v, flags, body)
	case AUTH:
		p := new(Auth)
		return p, p.Decode(v, flags, body)
	}
	return nil, fmt.Errorf("%w: %d", ErrUnknownPacketType, t)
}

// encodeAny appends p for version v and returns the bytes and the size the
// packet's Size method predicts (-1 when it has none).
func encodeAny(p any, v Version) (b []byte, size int) {
	switch p := p.(type) {
	case *Connect:
		return p.Append(nil), p.Size()
	case *Connack:
		return p.Append(nil, v), p.Size(v)
	case *Publish:
		return p.Append(nil, v), p.Size(v)
	case *Ack:
		return p.Append(nil, v), p.Size(v)
	case *Subscribe:
		return p.Append(nil, v), p.Size(v)
	case *Suback:
		return p.Append(nil, v), p.Size(v)
	case *Unsubscribe:
		return p.Append(nil, v), p.Size(v)
	case *Unsuback:
		return p.Append(nil, v), p.Size(v)
	case *ping:
		return AppendEmpty(nil, p.Type), 2
	case *Disconnect:
		return p.Append(nil, v), p.Size(v)
	case *Auth:
		return p.Append(nil, v), p.Size(v)
	}
	panic(fmt.Sprintf("encodeAny: %T", p))
}

// frameOne frames raw, which must hold exactly one packet.
func frameOne(t testing.TB, raw []byte) (first byte, body []byte) {
	t.Helper()
	first, body, n, err := Frame(raw, 0)
	if err != nil || n != len(raw) {
		t.Fatalf("Frame(% X) = n %d, err %v; want n %d, nil", raw, n, err, len(raw))
	}
	return first, body
}

// roundTrip encodes p, checks Size, frames and decodes it again, and
// reports a difference. It is the property both the random and the fuzz
// tests check.
func roundTrip(t testing.TB, p any, v Version) {
	t.Helper()
	raw, size := encodeAny(p, v)
	if size != len(raw) {
		t.Fatalf("Size = %d, Append wrote %d bytes: % X", size, len(raw), raw)
	}
	if c, ok := p.(*Connect); ok {
		v = c.Version
	}
	first, body := frameOne(t, raw)
	got, err := decodeAny(v, first, body)
	if err != nil {
		t.Fatalf("decode of re-encoded % X: %v\npacket: %+v", raw, err, p)
	}
	if !reflect.DeepEqual(got, p) {
		t.Fatalf("round trip differs\n got %#v\nwant %#v\nbytes % X", got, p, raw)
	}
}
