package outbox

// Outbound QoS handshake states of an inflight delivery.
const (
	AwaitAck  byte = iota // PUBLISH sent; waiting for PUBACK (QoS 1) or PUBREC (QoS 2)
	AwaitComp             // PUBREL sent; waiting for PUBCOMP (QoS 2)
)

// Outflight is a QoS 1 or 2 delivery sent to the client and not yet
// completed.
type Outflight struct {
	ID    uint16
	State byte
	// Unsent marks a QoS 2 delivery of a persistent session whose PUBLISH
	// is held until the store has its packet id durably, so that a restart
	// cannot resend it under another id (and the receiver see it twice).
	Unsent bool
	// seq is when the id was allocated (Inflight.seq), to skip the
	// in-use scan while no entry can be 65,535 allocations old.
	seq uint64
	Delivery
}

// Inflight is the ordered window of outbound QoS 1/2 deliveries and the
// packet identifiers they hold. Acks usually arrive in order, so lookups
// start at the front.
//
// Not safe for concurrent use; its session's lock guards it.
type Inflight struct {
	items  []Outflight
	nextID uint16
	seq    uint64 // ids allocated so far
}

// Len is the number of deliveries in flight.
func (f *Inflight) Len() int { return len(f.items) }

// Add records a delivery sent with packet id id and returns it.
func (f *Inflight) Add(id uint16, d Delivery) {
	f.items = append(f.items, Outflight{ID: id, State: AwaitAck, seq: f.seq, Delivery: d})
}

// Find returns the inflight entry with id, or nil.
func (f *Inflight) Find(id uint16) *Outflight {
	for i := range f.items {
		if f.items[i].ID == id {
			return &f.items[i]
		}
	}
	return nil
}

// Remove deletes the entry with id, keeping the others in order.
func (f *Inflight) Remove(id uint16) (Outflight, bool) {
	for i := range f.items {
		if f.items[i].ID == id {
			o := f.items[i]
			if i == 0 {
				// In-order acks, the usual case: drop the head, copy nothing.
				f.items[0] = Outflight{}
				f.items = f.items[1:]
				if len(f.items) == 0 {
					f.items = nil
				}
				return o, true
			}
			copy(f.items[i:], f.items[i+1:])
			f.items[len(f.items)-1] = Outflight{}
			f.items = f.items[:len(f.items)-1]
			if len(f.items) == 0 && cap(f.items) > 64 {
				f.items = nil
			}
			return o, true
		}
	}
	return Outflight{}, false
}

// LastUnsent reports whether the newest entry is still held unsent.
func (f *Inflight) LastUnsent() bool {
	return len(f.items) > 0 && f.items[len(f.items)-1].Unsent
}

// Range calls fn on each entry in send order until fn returns false.
func (f *Inflight) Range(fn func(*Outflight) bool) {
	for i := range f.items {
		if !fn(&f.items[i]) {
			return
		}
	}
}

// Clear forgets every entry.
func (f *Inflight) Clear() { f.items = nil }

// NextID allocates a packet identifier not in use by the window [MQTT-2.3.1-2].
// ok is false when all 65,535 are taken.
func (f *Inflight) NextID() (id uint16, ok bool) {
	if len(f.items) >= 65535 {
		return 0, false
	}
	for {
		f.nextID++
		f.seq++
		if f.nextID == 0 {
			f.nextID = 1
		}
		// Ids are handed out in order, so the candidate can only be taken
		// by an entry allocated 65,535 or more ids ago; the oldest entry is
		// at the front. Entries restored from a store have seq 0 and so
		// always take the scan, which is correct, only slower.
		if len(f.items) == 0 || f.seq-f.items[0].seq < 65535 && f.items[0].seq != 0 {
			return f.nextID, true
		}
		if f.Find(f.nextID) == nil {
			return f.nextID, true
		}
	}
}
