package store

import (
	"bytes"
	"testing"
)

// FuzzDecodeSegment: any bytes decode to an error or to well-formed
// operations without panicking; what decodes as a sealed segment decodes
// the same as the last one; and the operations re-encode to records that
// decode to them again.
func FuzzDecodeSegment(f *testing.F) {
	ops := []op{
		{kind: opPut, bucket: bSessions, key: []byte("c1"), val: []byte{1, 2, 3}},
		{kind: opDelete, bucket: bDeliveries, key: []byte("\x02c1\x00\x00\x00\x00\x00\x00\x00\x01")},
		{kind: opSync},
		{kind: opDeleteSession, bucket: bSessions, key: []byte("c2")},
	}
	seg := appendRecord([]byte(walMagic), ops)
	seg = appendRecord(seg, ops[:1])
	f.Add(seg, true)
	f.Add(seg[:len(seg)-3], true)
	f.Add(append(bytes.Clone(seg), make([]byte, 64)...), false)
	f.Add([]byte(walMagic[:5]), true)
	f.Fuzz(func(t *testing.T, data []byte, tail bool) {
		c, err := decodeSegment(data, tail)
		if err != nil {
			return
		}
		if !tail {
			c2, err := decodeSegment(data, true)
			if err != nil || len(c2.ops) != len(c.ops) || c2.torn != 0 {
				t.Fatalf("sealed decode %d ops, tail decode %d ops torn %d err %v", len(c.ops), len(c2.ops), c2.torn, err)
			}
		}
		for _, o := range c.ops {
			if int(o.bucket) >= len(allBuckets) || o.kind > opDeleteSession {
				t.Fatalf("decoded a malformed operation %+v", o)
			}
		}
		if len(c.ops) == 0 {
			return
		}
		again, err := decodeSegment(appendRecord([]byte(walMagic), c.ops), false)
		if err != nil || len(again.ops) != len(c.ops) {
			t.Fatalf("re-encoded %d ops: got %d, %v", len(c.ops), len(again.ops), err)
		}
		for i := range c.ops {
			a, b := c.ops[i], again.ops[i]
			if a.kind != b.kind || a.bucket != b.bucket || !bytes.Equal(a.key, b.key) || !bytes.Equal(a.val, b.val) {
				t.Fatalf("op %d: %+v re-decoded as %+v", i, a, b)
			}
		}
	})
}
