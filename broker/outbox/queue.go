package outbox

// Delivery is one message owed to one session, with what its subscription
// made of it.
type Delivery struct {
	Msg    *Message
	QoS    byte     // granted QoS: min(published, subscribed)
	Retain bool     // retain flag to send (retain-as-published or a retained replay)
	SubIDs []uint32 // v5 subscription identifiers of every matching subscription
	// Seq orders a persistent session's deliveries in the store (its key
	// there); 0 when the delivery is not persisted.
	Seq uint64
}

// Queue is a bounded FIFO of deliveries waiting for a connection or for room
// in the inflight window. When full, QoS 0 deliveries go first: the oldest
// QoS 0 entry makes room for a new one; with no QoS 0 entry left, the new
// delivery is refused. The caller counts what is dropped.
//
// A Queue is not safe for concurrent use; its session's lock guards it.
type Queue struct {
	buf        []Delivery // ring; grows up to max
	head, size int
	max        int
}

// NewQueue returns a queue holding at most max deliveries (max >= 1).
func NewQueue(max int) *Queue {
	if max < 1 {
		max = 1
	}
	return &Queue{max: max}
}

// Len is the number of queued deliveries.
func (q *Queue) Len() int { return q.size }

// Push appends d. When the queue is full it makes room by dropping the
// oldest QoS 0 delivery; dropped reports that loss. ok is false when d
// itself could not be queued (full of QoS 1/2 deliveries, or full and d is
// QoS 0).
func (q *Queue) Push(d Delivery) (dropped *Delivery, ok bool) {
	if q.size >= q.max {
		if d.QoS == 0 {
			return nil, false
		}
		i := q.oldestQoS0()
		if i < 0 {
			return nil, false
		}
		old := q.removeAt(i)
		dropped = &old
	}
	if q.size == len(q.buf) {
		q.grow()
	}
	q.buf[(q.head+q.size)%len(q.buf)] = d
	q.size++
	return dropped, true
}

// Peek returns the oldest delivery without removing it.
func (q *Queue) Peek() (Delivery, bool) {
	if q.size == 0 {
		return Delivery{}, false
	}
	return q.buf[q.head], true
}

// Pop removes and returns the oldest delivery.
func (q *Queue) Pop() (Delivery, bool) {
	if q.size == 0 {
		return Delivery{}, false
	}
	d := q.buf[q.head]
	q.buf[q.head] = Delivery{}
	q.head = (q.head + 1) % len(q.buf)
	q.size--
	if q.size == 0 {
		q.head = 0
		if len(q.buf) > 64 {
			q.buf = nil // an emptied burst returns its memory
		}
	}
	return d, true
}

// Range calls fn for each queued delivery, oldest first, until fn returns false.
func (q *Queue) Range(fn func(Delivery) bool) {
	for i := 0; i < q.size; i++ {
		if !fn(q.buf[(q.head+i)%len(q.buf)]) {
			return
		}
	}
}

// Clear drops everything.
func (q *Queue) Clear() {
	q.buf, q.head, q.size = nil, 0, 0
}

func (q *Queue) grow() {
	n := len(q.buf) * 2
	if n == 0 {
		n = 4
	}
	if n > q.max {
		n = q.max
	}
	if n <= len(q.buf) {
		n = len(q.buf) + 1
	}
	nb := make([]Delivery, n)
	for i := 0; i < q.size; i++ {
		nb[i] = q.buf[(q.head+i)%len(q.buf)]
	}
	q.buf, q.head = nb, 0
}

func (q *Queue) oldestQoS0() int {
	for i := 0; i < q.size; i++ {
		if q.buf[(q.head+i)%len(q.buf)].QoS == 0 {
			return i
		}
	}
	return -1
}

// removeAt removes the i-th oldest entry, keeping order.
func (q *Queue) removeAt(i int) Delivery {
	n := len(q.buf)
	d := q.buf[(q.head+i)%n]
	for j := i; j < q.size-1; j++ {
		q.buf[(q.head+j)%n] = q.buf[(q.head+j+1)%n]
	}
	q.buf[(q.head+q.size-1)%n] = Delivery{}
	q.size--
	return d
}
