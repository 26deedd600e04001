package broker_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/fleetmq/fleetmq/broker"
	"github.com/fleetmq/fleetmq/broker/internal/mqtttest"
	"github.com/fleetmq/fleetmq/broker/outbox"
	"github.com/fleetmq/fleetmq/broker/packets"
	"github.com/fleetmq/fleetmq/broker/store"
	"github.com/fleetmq/fleetmq/broker/topic"
)

// TestPersistCrashQoS2InboundIDWithDeliveries kills the broker, in effect,
// at every point of a QoS 2 PUBLISH's writes where the Store contract lets
// a crash fall, and checks the message still reaches the subscriber once.
// The publisher's stored packet id (so a resend after the restart is not
// routed again) and the deliveries it stands for must be durable together:
// with the id stored and a delivery not, the resend was acknowledged but
// never routed, and the message was lost (TestKill9NoAckedMessageLost saw
// this once: one acknowledged QoS 2 message of 30,911 never delivered).
func TestPersistCrashQoS2InboundIDWithDeliveries(t *testing.T) {
	t.Parallel()
	for _, online := range []bool{false, true} {
		t.Run(fmt.Sprintf("subscriberOnline=%v", online), func(t *testing.T) {
			t.Parallel()
			log := newCrashLog()
			srv, err := broker.New(broker.Options{AllowAnonymous: true, SysInterval: -1, Store: log})
			if err != nil {
				t.Fatal(err)
			}
			addr := mqtttest.Serve(t, srv)
			s := mqtttest.MustConnect(t, addr, mqtttest.V311("sub", false))
			s.Sub("c/#", 2)
			if !online {
				s.Disconnect()
			}
			p := mqtttest.MustConnect(t, addr, mqtttest.V311("pub", false))
			p.Ping()
			from := log.len()

			msg := pub("c/x", "once", 2)
			msg.PacketID = 7
			p.WritePublish(msg)
			p.ExpectAck(packets.PUBREC, 7)
			var outID uint16
			if online {
				// Received and not released (no PUBREC): a restored broker
				// must resend it under this id, or not at all.
				got := s.ExpectPublish()
				checkPublish(t, got, "c/x", "once")
				outID = got.PacketID
			}
			ops, spans := log.snapshot()
			delivered := -1 // ops that were durable when the PUBLISH could go out
			for i, o := range ops[from:] {
				if o.what == "PutDelivery sub" {
					delivered = from + i + 1
					break
				}
			}
			if delivered < 0 {
				t.Fatalf("no delivery for the subscriber was written:\n%s", describe(ops[from:], -1))
			}

			for _, k := range crashPoints(ops, spans, from) {
				held := []bool{false}
				if online && k >= delivered {
					held = append(held, true)
				}
				for _, h := range held {
					n := deliveriesAfterCrash(t, ops[:k], msg, outID, h)
					if n != 1 {
						t.Errorf("crash after %d of the publish's writes (subscriber holding the PUBLISH: %v): delivered %d times, want once\n%s",
							k-from, h, n, describe(ops[from:], k-from))
					}
				}
			}
		})
	}
}

// deliveriesAfterCrash starts a broker on a store holding ops, resends msg
// with DUP as a publisher that never saw the PUBREC, and counts how often
// the subscriber's application gets the message: it de-duplicates QoS 2
// by packet id until PUBREL, as a receiver must, and already got it once
// when held (under packet id outID).
func deliveriesAfterCrash(t *testing.T, ops []loggedOp, msg *packets.Publish, outID uint16, held bool) int {
	t.Helper()
	dir := t.TempDir()
	b, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	for _, o := range ops {
		o.apply(b)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("store.Close: %v", err)
	}
	b, err = store.Open(dir, store.Options{})
	if err != nil {
		t.Fatalf("store.Open again: %v", err)
	}
	srv, err := broker.New(broker.Options{AllowAnonymous: true, SysInterval: -1, Store: b})
	if err != nil {
		b.Close()
		t.Fatalf("broker.New: %v", err)
	}
	addr := mqtttest.Serve(t, srv)

	p := mqtttest.MustConnect(t, addr, mqtttest.V311("pub", false))
	again := *msg
	again.Dup = true
	p.WritePublish(&again)
	p.ExpectAck(packets.PUBREC, msg.PacketID)
	p.WriteAck(packets.PUBREL, msg.PacketID)
	p.ExpectAck(packets.PUBCOMP, msg.PacketID)

	s, ack := mqtttest.Connect(t, addr, mqtttest.V311("sub", false))
	if !ack.SessionPresent {
		t.Fatal("subscriber's session not restored")
	}
	n := 0
	awaitingRel := map[uint16]bool{}
	if held {
		n++
		awaitingRel[outID] = true
	}
	for {
		pk, ok := s.Next(quiet)
		if !ok {
			return n
		}
		switch {
		case pk.Publish != nil && pk.Publish.QoS == 2:
			if !awaitingRel[pk.Publish.PacketID] {
				checkPublish(t, pk.Publish, string(msg.Topic), string(msg.Payload))
				n++
			}
			awaitingRel[pk.Publish.PacketID] = true
			s.WriteAck(packets.PUBREC, pk.Publish.PacketID)
		case pk.Type == packets.PUBREL:
			delete(awaitingRel, pk.Ack.PacketID)
			s.WriteAck(packets.PUBCOMP, pk.Ack.PacketID)
		default:
			t.Fatalf("subscriber got %v", pk)
		}
	}
}

// crashLog is a Store that logs every write in the order the broker makes
// it, so a test can rebuild what a real store holds after a crash at any
// point. Its Sync callbacks run on its own goroutine, as the store's do.
//
// What the Store contract lets a crash split: any two writes, unless a
// group (BeginGroup) was open across both.
type crashLog struct {
	mu      sync.Mutex
	cond    *sync.Cond
	ops     []loggedOp
	syncs   []func(error)
	groups  map[store.Group]int // open groups: where each began in ops
	spans   [][2]int            // ended groups: [begin, end) in ops
	nextID  store.Group
	closed  bool
	stopped chan struct{}
}

type loggedOp struct {
	what  string // for failure messages, and to find a write
	apply func(store.Store)
}

func newCrashLog() *crashLog {
	l := &crashLog{stopped: make(chan struct{}), groups: map[store.Group]int{}}
	l.cond = sync.NewCond(&l.mu)
	go l.loop()
	return l
}

func (l *crashLog) loop() {
	defer close(l.stopped)
	for {
		l.mu.Lock()
		for len(l.syncs) == 0 && !l.closed {
			l.cond.Wait()
		}
		if len(l.syncs) == 0 {
			l.mu.Unlock()
			return
		}
		run := l.syncs
		l.syncs = nil
		l.mu.Unlock()
		for _, done := range run {
			done(nil)
		}
	}
}

func (l *crashLog) write(what string, apply func(store.Store)) {
	l.mu.Lock()
	l.ops = append(l.ops, loggedOp{what: what, apply: apply})
	l.mu.Unlock()
}

func (l *crashLog) BeginGroup() store.Group {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.nextID++
	l.groups[l.nextID] = len(l.ops)
	return l.nextID
}

func (l *crashLog) EndGroup(g store.Group) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.spans = append(l.spans, [2]int{l.groups[g], len(l.ops)})
	delete(l.groups, g)
}

func (l *crashLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ops)
}

func (l *crashLog) snapshot() ([]loggedOp, [][2]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.ops), slices.Clone(l.spans)
}

// crashPoints are the numbers of ops, from from on, that a crash may leave
// durable: any, but inside a group.
func crashPoints(ops []loggedOp, spans [][2]int, from int) []int {
	var ks []int
	for k := from; k <= len(ops); k++ {
		if !slices.ContainsFunc(spans, func(g [2]int) bool { return g[0] < k && k < g[1] }) {
			ks = append(ks, k)
		}
	}
	return ks
}

// describe lists ops, marking where the crash fell (at; -1 for none).
func describe(ops []loggedOp, at int) string {
	var b strings.Builder
	for i, o := range ops {
		if i == at {
			b.WriteString("  --- crash ---\n")
		}
		fmt.Fprintf(&b, "  %s\n", o.what)
	}
	if at == len(ops) {
		b.WriteString("  --- crash ---\n")
	}
	return b.String()
}

func (l *crashLog) Load() (*store.Snapshot, error) { return &store.Snapshot{}, nil }

func (l *crashLog) SaveSession(id string, expiry uint32, at int64, owner store.Owner) {
	l.write("SaveSession "+id, func(s store.Store) { s.SaveSession(id, expiry, at, owner) })
}

func (l *crashLog) DeleteSession(id string) {
	l.write("DeleteSession "+id, func(s store.Store) { s.DeleteSession(id) })
}

func (l *crashLog) SaveSubscription(id, key string, sub topic.Subscription) {
	l.write("SaveSubscription "+id, func(s store.Store) { s.SaveSubscription(id, key, sub) })
}

func (l *crashLog) DeleteSubscription(id, key string) {
	l.write("DeleteSubscription "+id, func(s store.Store) { s.DeleteSubscription(id, key) })
}

func (l *crashLog) PutDelivery(id string, d store.Delivery) {
	l.write("PutDelivery "+id, func(s store.Store) { s.PutDelivery(id, d) })
}

func (l *crashLog) DeleteDelivery(id string, seq uint64) {
	l.write("DeleteDelivery "+id, func(s store.Store) { s.DeleteDelivery(id, seq) })
}

func (l *crashLog) SaveInboundQoS2(id string, pid uint16) {
	l.write(fmt.Sprintf("SaveInboundQoS2 %s %d", id, pid), func(s store.Store) { s.SaveInboundQoS2(id, pid) })
}

func (l *crashLog) ReleaseInboundQoS2(id string, pid uint16) {
	l.write(fmt.Sprintf("ReleaseInboundQoS2 %s %d", id, pid), func(s store.Store) { s.ReleaseInboundQoS2(id, pid) })
}

func (l *crashLog) SaveWill(id string, w store.Will) {
	l.write("SaveWill "+id, func(s store.Store) { s.SaveWill(id, w) })
}

func (l *crashLog) DeleteWill(id string) {
	l.write("DeleteWill "+id, func(s store.Store) { s.DeleteWill(id) })
}

func (l *crashLog) SetRetained(m *outbox.Message) {
	l.write("SetRetained "+m.Topic, func(s store.Store) { s.SetRetained(m) })
}

func (l *crashLog) DeleteRetained(topic string) {
	l.write("DeleteRetained "+topic, func(s store.Store) { s.DeleteRetained(topic) })
}

func (l *crashLog) Sync(done func(error)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		go done(store.ErrClosed)
		return
	}
	l.syncs = append(l.syncs, done)
	l.cond.Signal()
}

func (l *crashLog) Close() error {
	l.mu.Lock()
	l.closed = true
	l.cond.Signal()
	l.mu.Unlock()
	<-l.stopped
	return nil
}

// TestPersistResentPUBRELWaitsForStore: a client that sent PUBREC and
// reconnects before the broker stored the AwaitComp state gets the PUBREL
// only once it is stored. Were it sent at once, the client would release
// the id, and a crash before the commit would bring the delivery back as
// awaiting PUBREC: resent, and taken by the client for a new message.
func TestPersistResentPUBRELWaitsForStore(t *testing.T) {
	t.Parallel()
	st := &heldStore{}
	srv, err := broker.New(broker.Options{AllowAnonymous: true, SysInterval: -1, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	addr := mqtttest.Serve(t, srv)
	s := mqtttest.MustConnect(t, addr, mqtttest.V311("s", false))
	sp := packets.Subscribe{PacketID: 1, Subscriptions: []packets.Subscription{sub("r/#", 2)}}
	s.Write(sp.Append(nil, s.Version))
	s.Ping() // PINGRESP does not wait for the store: the SUBSCRIBE was handled
	st.release()
	s.Expect(packets.SUBACK)

	p := mqtttest.MustConnect(t, addr, mqtttest.V311("p", true))
	m := pub("r/x", "x", 2)
	m.PacketID = 1
	p.WritePublish(m)
	p.Ping()
	st.release() // the delivery is stored: its PUBLISH goes out
	got := s.ExpectPublish()
	s.WriteAck(packets.PUBREC, got.PacketID)
	s.Ping()
	s.Close()

	s2, ack := mqtttest.Connect(t, addr, mqtttest.V311("s", false))
	if !ack.SessionPresent {
		t.Fatal("session not present")
	}
	s2.ExpectNone(quiet)
	st.release()
	s2.ExpectAck(packets.PUBREL, got.PacketID)
}
