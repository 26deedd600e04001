package outbox

import (
	"slices"
	"testing"
)

// del is a delivery whose message topic names it, for readable failures.
func del(name string, qos byte) Delivery {
	return Delivery{Msg: &Message{Topic: name}, QoS: qos}
}

func topics(q *Queue) []string {
	var out []string
	q.Range(func(d Delivery) bool { out = append(out, d.Msg.Topic); return true })
	return out
}

// TestQueueBound: a full queue makes room by dropping its oldest QoS 0
// delivery; with none left, the new delivery is refused, and a new QoS 0
// delivery never pushes anything out.
func TestQueueBound(t *testing.T) {
	tests := []struct {
		name        string
		max         int
		push        []Delivery
		wantQueue   []string
		wantDropped []string // pushed out to make room
		wantRefused []string // not queued
	}{
		{"under the bound", 3, []Delivery{del("a", 1), del("b", 0)}, []string{"a", "b"}, nil, nil},
		{"oldest QoS 0 makes room", 3, []Delivery{del("a", 1), del("b", 0), del("c", 0), del("d", 1)},
			[]string{"a", "c", "d"}, []string{"b"}, nil},
		{"full of QoS 1 refuses", 2, []Delivery{del("a", 1), del("b", 2), del("c", 1)},
			[]string{"a", "b"}, nil, []string{"c"}},
		{"full refuses QoS 0", 2, []Delivery{del("a", 0), del("b", 0), del("c", 0)},
			[]string{"a", "b"}, nil, []string{"c"}},
		{"bound below one is one", 0, []Delivery{del("a", 1), del("b", 1)}, []string{"a"}, nil, []string{"b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := NewQueue(tc.max)
			var dropped, refused []string
			for _, d := range tc.push {
				out, ok := q.Push(d)
				if out != nil {
					dropped = append(dropped, out.Msg.Topic)
				}
				if !ok {
					refused = append(refused, d.Msg.Topic)
				}
			}
			if got := topics(q); !slices.Equal(got, tc.wantQueue) {
				t.Errorf("queue %v, want %v", got, tc.wantQueue)
			}
			if !slices.Equal(dropped, tc.wantDropped) {
				t.Errorf("dropped %v, want %v", dropped, tc.wantDropped)
			}
			if !slices.Equal(refused, tc.wantRefused) {
				t.Errorf("refused %v, want %v", refused, tc.wantRefused)
			}
			if q.Len() != len(tc.wantQueue) {
				t.Errorf("Len %d, want %d", q.Len(), len(tc.wantQueue))
			}
		})
	}
}

// TestQueueFIFOAcrossWrap: order holds while the ring wraps and grows.
func TestQueueFIFOAcrossWrap(t *testing.T) {
	q := NewQueue(1000)
	next, want := 0, 0
	for round := range 50 {
		for range round%7 + 1 {
			if _, ok := q.Push(Delivery{QoS: 1, Seq: uint64(next)}); !ok {
				t.Fatalf("push %d refused", next)
			}
			next++
		}
		for range round % 5 {
			d, ok := q.Pop()
			if !ok {
				break
			}
			if d.Seq != uint64(want) {
				t.Fatalf("popped %d, want %d", d.Seq, want)
			}
			want++
		}
	}
	for {
		d, ok := q.Pop()
		if !ok {
			break
		}
		if d.Seq != uint64(want) {
			t.Fatalf("popped %d, want %d", d.Seq, want)
		}
		want++
	}
	if want != next {
		t.Fatalf("popped %d deliveries, pushed %d", want, next)
	}
}

// TestInflightIDs: ids are never handed out twice while in use, skip 0,
// and run out only when all 65,535 are taken [MQTT-2.3.1-2].
func TestInflightIDs(t *testing.T) {
	var f Inflight
	inUse := make(map[uint16]bool)
	// Hold every 1000th id for a whole wrap of the id space.
	for i := range 70000 {
		id, ok := f.NextID()
		if !ok {
			t.Fatalf("allocation %d: out of ids with %d in flight", i, f.Len())
		}
		if id == 0 || inUse[id] {
			t.Fatalf("allocation %d: id %d (0 or in use)", i, id)
		}
		if i%1000 == 0 {
			inUse[id] = true
			f.Add(id, Delivery{QoS: 1})
		}
	}
	for id := range inUse {
		if _, ok := f.Remove(id); !ok {
			t.Fatalf("Remove(%d) found nothing", id)
		}
	}
	if f.Len() != 0 {
		t.Fatalf("Len %d after removing all", f.Len())
	}
	for range 65535 {
		id, ok := f.NextID()
		if !ok {
			t.Fatalf("out of ids with %d in flight", f.Len())
		}
		f.Add(id, Delivery{QoS: 1})
	}
	if _, ok := f.NextID(); ok {
		t.Fatal("NextID succeeded with all 65,535 ids in flight")
	}
}

// TestInflightOrder: Remove keeps the others in send order, whether the
// head (in-order acks) or the middle goes.
func TestInflightOrder(t *testing.T) {
	var f Inflight
	for id := uint16(1); id <= 5; id++ {
		f.Add(id, Delivery{QoS: 1})
	}
	f.Remove(1)
	f.Remove(3)
	var got []uint16
	f.Range(func(o *Outflight) bool { got = append(got, o.ID); return true })
	if want := []uint16{2, 4, 5}; !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	if o := f.Find(4); o == nil || o.State != AwaitAck {
		t.Fatalf("Find(4) = %+v, want an entry awaiting its ack", o)
	}
	if f.Find(3) != nil {
		t.Fatal("Find(3) after Remove(3) found an entry")
	}
}
