package broker_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"

	"github.com/fleetmq/fleetmq/broker"
	"github.com/fleetmq/fleetmq/broker/authz"
	"github.com/fleetmq/fleetmq/broker/internal/mqtttest"
	"github.com/fleetmq/fleetmq/broker/outbox"
	"github.com/fleetmq/fleetmq/broker/packets"
	"github.com/fleetmq/fleetmq/broker/store"
	"github.com/fleetmq/fleetmq/broker/topic"
)

// durable is a broker with a store in dir that a test can stop gracefully
// and start again on the same address.
type durable struct {
	t    *testing.T
	dir  string
	opts broker.Options
	srv  *broker.Server
	addr string
}

func startDurable(t *testing.T, opts broker.Options) *durable {
	t.Helper()
	d := &durable{t: t, dir: t.TempDir(), opts: opts}
	d.start()
	return d
}

func (d *durable) start() {
	d.t.Helper()
	st, err := store.Open(d.dir, store.Options{})
	if err != nil {
		d.t.Fatalf("store.Open: %v", err)
	}
	opts := d.opts
	opts.Store = st
	opts.AllowAnonymous = true
	opts.SysInterval = -1
	srv, err := broker.New(opts)
	if err != nil {
		st.Close()
		d.t.Fatalf("broker.New: %v", err)
	}
	d.srv = srv
	if d.addr == "" {
		d.addr = mqtttest.Serve(d.t, srv)
		return
	}
	ln, err := net.Listen("tcp", d.addr)
	if err != nil {
		d.t.Fatalf("listen again on %s: %v", d.addr, err)
	}
	mqtttest.ServeListener(d.t, srv, ln)
}

// restart shuts the broker down gracefully and starts it again from the store.
func (d *durable) restart() {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), mqtttest.Timeout)
	defer cancel()
	if err := d.srv.Shutdown(ctx); err != nil {
		d.t.Fatalf("Shutdown: %v", err)
	}
	d.start()
}

// TestPersistOfflineQueueSurvivesRestart: QoS 1 and 2 messages queued for
// an offline persistent session, in 3.1.1 and 5.0, are delivered in order
// after a graceful restart, with subscription identifiers kept.
func TestPersistOfflineQueueSurvivesRestart(t *testing.T) {
	t.Parallel()
	b := startDurable(t, broker.Options{})
	s := mqtttest.MustConnect(t, b.addr, mqtttest.V311("sub311", false))
	s.Sub("q/#", 2)
	s.Disconnect()
	s5 := mqtttest.MustConnect(t, b.addr, withExpiry("sub5", true, 3600))
	props := packets.Properties{SubscriptionIDs: []uint32{42}}
	s5.Subscribe(props, sub("q/#", 2))
	s5.Disconnect()

	p := mqtttest.MustConnect(t, b.addr, mqtttest.V311("pub", true))
	for i := range 6 {
		p.Pub(fmt.Sprintf("q/%d", i), fmt.Sprint("m", i), byte(1+i%2))
	}
	p.Disconnect()
	b.restart()

	for _, id := range []string{"sub311", "sub5"} {
		cp := mqtttest.V311(id, false)
		if id == "sub5" {
			cp = withExpiry(id, false, 3600)
		}
		c, ack := mqtttest.Connect(t, b.addr, cp)
		if !ack.SessionPresent {
			t.Fatalf("%s: session not present after restart", id)
		}
		for i := range 6 {
			got := c.Receive()
			checkPublish(t, got, fmt.Sprintf("q/%d", i), fmt.Sprint("m", i))
			if got.QoS != byte(1+i%2) {
				t.Errorf("%s: message %d QoS %d, want %d", id, i, got.QoS, 1+i%2)
			}
			if id == "sub5" && (len(got.Props.SubscriptionIDs) != 1 || got.Props.SubscriptionIDs[0] != 42) {
				t.Errorf("%s: subscription ids %v, want [42]", id, got.Props.SubscriptionIDs)
			}
		}
		c.ExpectNone(quiet)
		c.Disconnect()
	}
}

// TestPersistSubscriptionsAndRetained: subscriptions and retained messages
// survive a restart; a clean session leaves nothing behind.
func TestPersistSubscriptionsAndRetained(t *testing.T) {
	t.Parallel()
	b := startDurable(t, broker.Options{})
	s := mqtttest.MustConnect(t, b.addr, mqtttest.V311("keeper", false))
	s.Sub("live/+", 1)
	s.Disconnect()
	clean := mqtttest.MustConnect(t, b.addr, mqtttest.V311("cleanone", true))
	clean.Sub("live/+", 1)
	p := mqtttest.MustConnect(t, b.addr, mqtttest.V311("pub", true))
	p.Publish(&packets.Publish{Topic: []byte("ret/a"), Payload: []byte("kept"), QoS: 1, Retain: true})
	p.Publish(&packets.Publish{Topic: []byte("ret/b"), Payload: []byte("deleted"), QoS: 1, Retain: true})
	p.Publish(&packets.Publish{Topic: []byte("ret/b"), QoS: 1, Retain: true}) // empty: delete
	p.Disconnect()
	clean.Disconnect()
	b.restart()

	if n := b.srv.Stats().Sessions; n != 1 {
		t.Errorf("%d sessions after restart, want 1 (the clean one is not stored)", n)
	}
	// The subscription is there while its client is still away.
	p = mqtttest.MustConnect(t, b.addr, mqtttest.V311("pub", true))
	p.Pub("live/1", "while away", 1)
	s, ack := mqtttest.Connect(t, b.addr, mqtttest.V311("keeper", false))
	if !ack.SessionPresent {
		t.Fatal("session not present after restart")
	}
	checkPublish(t, s.Receive(), "live/1", "while away")
	p.Pub("live/2", "online", 1)
	checkPublish(t, s.Receive(), "live/2", "online")

	r := mqtttest.MustConnect(t, b.addr, mqtttest.V311("reader", true))
	r.Sub("ret/#", 1)
	got := r.Receive()
	checkPublish(t, got, "ret/a", "kept")
	if !got.Retain {
		t.Error("retained replay without RETAIN")
	}
	r.ExpectNone(quiet)
}

// TestPersistInflightSurvivesRestart: deliveries sent but not acknowledged
// are resent with DUP and the same packet ids after a restart; a QoS 2
// delivery past PUBREC gets only its PUBREL again.
func TestPersistInflightSurvivesRestart(t *testing.T) {
	t.Parallel()
	b := startDurable(t, broker.Options{})
	s := mqtttest.MustConnect(t, b.addr, mqtttest.V311("s", false))
	s.Sub("f/#", 2)
	p := mqtttest.MustConnect(t, b.addr, mqtttest.V311("p", true))
	p.Pub("f/1", "q1", 1)
	p.Pub("f/2", "q2", 2)
	p.Pub("f/3", "q2-rec", 2)
	first := [3]*packets.Publish{s.ExpectPublish(), s.ExpectPublish(), s.ExpectPublish()}
	s.WriteAck(packets.PUBREC, first[2].PacketID)
	s.ExpectAck(packets.PUBREL, first[2].PacketID)
	s.Close()
	p.Disconnect()
	b.restart()

	s2, ack := mqtttest.Connect(t, b.addr, mqtttest.V311("s", false))
	if !ack.SessionPresent {
		t.Fatal("session not present")
	}
	for i, want := range []string{"q1", "q2"} {
		again := s2.ExpectPublish()
		if !again.Dup || again.PacketID != first[i].PacketID || string(again.Payload) != want {
			t.Fatalf("resend %d: dup=%v id=%d payload %q, want dup id %d %q", i, again.Dup, again.PacketID, again.Payload, first[i].PacketID, want)
		}
	}
	s2.ExpectAck(packets.PUBREL, first[2].PacketID)
	s2.WriteAck(packets.PUBACK, first[0].PacketID)
	s2.WriteAck(packets.PUBREC, first[1].PacketID)
	s2.ExpectAck(packets.PUBREL, first[1].PacketID)
	s2.WriteAck(packets.PUBCOMP, first[1].PacketID)
	s2.WriteAck(packets.PUBCOMP, first[2].PacketID)
	s2.ExpectNone(quiet)
	s2.Disconnect()

	// Everything acknowledged is gone from the store too.
	b.restart()
	s3, _ := mqtttest.Connect(t, b.addr, mqtttest.V311("s", false))
	s3.ExpectNone(quiet)
}

// TestPersistInboundQoS2AcrossRestart [MQTT-4.3.3-10]: a QoS 2 PUBLISH
// resent with DUP after a restart, before PUBREL, is not routed again.
func TestPersistInboundQoS2AcrossRestart(t *testing.T) {
	t.Parallel()
	b := startDurable(t, broker.Options{})
	s := mqtttest.MustConnect(t, b.addr, mqtttest.V311("sub", false))
	s.Sub("eo/#", 2)
	p := mqtttest.MustConnect(t, b.addr, mqtttest.V311("pub", false))
	msg := pub("eo/x", "once", 2)
	msg.PacketID = 9
	p.WritePublish(msg)
	p.ExpectAck(packets.PUBREC, 9)
	p.Close() // before PUBREL
	checkPublish(t, s.Receive(), "eo/x", "once")
	s.Disconnect()
	b.restart()

	p2, ack := mqtttest.Connect(t, b.addr, mqtttest.V311("pub", false))
	if !ack.SessionPresent {
		t.Fatal("publisher's session not present after restart")
	}
	msg.Dup = true
	p2.WritePublish(msg)
	p2.ExpectAck(packets.PUBREC, 9)
	p2.WriteAck(packets.PUBREL, 9)
	p2.ExpectAck(packets.PUBCOMP, 9)
	s2 := mqtttest.MustConnect(t, b.addr, mqtttest.V311("sub", false))
	s2.ExpectNone(quiet)

	// Released: the id now carries a new message, also after a restart.
	s2.Disconnect()
	p2.Disconnect()
	b.restart()
	p3 := mqtttest.MustConnect(t, b.addr, mqtttest.V311("pub", false))
	msg2 := pub("eo/x", "second", 2)
	msg2.PacketID = 9
	p3.Publish(msg2)
	s3 := mqtttest.MustConnect(t, b.addr, mqtttest.V311("sub", false))
	checkPublish(t, s3.Receive(), "eo/x", "second")
	s3.ExpectNone(quiet)
}

// TestPersistQueueBound: the store holds no more than maxQueuedMessages
// per session; what the bound drops is not restored.
func TestPersistQueueBound(t *testing.T) {
	t.Parallel()
	b := startDurable(t, broker.Options{Limits: broker.Limits{MaxQueuedMessages: 3}})
	s := mqtttest.MustConnect(t, b.addr, mqtttest.V311("s", false))
	s.Sub("b/#", 1)
	s.Disconnect()
	p := mqtttest.MustConnect(t, b.addr, mqtttest.V311("p", true))
	for i := range 5 {
		p.Pub("b/x", fmt.Sprint(i), 1)
	}
	p.Disconnect()
	if n := b.srv.Stats().MessagesDropped; n != 2 {
		t.Errorf("dropped %d, want 2", n)
	}
	b.restart()
	s2 := mqtttest.MustConnect(t, b.addr, mqtttest.V311("s", false))
	for i := range 3 {
		checkPublish(t, s2.Receive(), "b/x", fmt.Sprint(i))
	}
	s2.ExpectNone(quiet)
}

// TestPersistSessionExpiry: a session whose expiry passes is purged from
// the store, so it is not restored; one ended by a clean start neither.
func TestPersistSessionExpiry(t *testing.T) {
	t.Parallel()
	b := startDurable(t, broker.Options{})
	for _, id := range []string{"short", "cleaned", "kept"} {
		expiry := uint32(3600)
		if id == "short" {
			expiry = 1
		}
		c := mqtttest.MustConnect(t, b.addr, withExpiry(id, true, expiry))
		c.Sub("x", 1)
		c.Disconnect()
	}
	c := mqtttest.MustConnect(t, b.addr, withExpiry("cleaned", true, 0))
	c.Disconnect()
	mqtttest.WaitFor(t, "short session to expire", func() bool { return b.srv.Stats().Sessions == 1 })
	b.restart()
	if n := b.srv.Stats().Sessions; n != 1 {
		t.Fatalf("%d sessions restored, want 1", n)
	}
	_, ack := mqtttest.Connect(t, b.addr, withExpiry("short", false, 60))
	if ack.SessionPresent {
		t.Error("expired session restored")
	}
}

// TestPersistRestoredSessionExpires: a restored offline session expires
// on schedule, counted from its stored disconnect time.
func TestPersistRestoredSessionExpires(t *testing.T) {
	t.Parallel()
	b := startDurable(t, broker.Options{})
	c := mqtttest.MustConnect(t, b.addr, withExpiry("brief", true, 2))
	c.Sub("x", 1)
	c.Disconnect()
	b.restart()
	if n := b.srv.Stats().Sessions; n != 1 {
		t.Fatalf("%d sessions restored, want 1", n)
	}
	mqtttest.WaitFor(t, "restored session to expire", func() bool { return b.srv.Stats().Sessions == 0 })
	b.restart()
	if n := b.srv.Stats().Sessions; n != 0 {
		t.Fatalf("%d sessions after expiry and restart, want 0", n)
	}
}

// TestPersistRestoredRecheck: a restored session's client comes back under
// rules that no longer allow what it kept: the subscription goes and the
// queued message is not delivered.
func TestPersistRestoredRecheck(t *testing.T) {
	t.Parallel()
	b := startDurable(t, broker.Options{})
	s := mqtttest.MustConnect(t, b.addr, mqtttest.V311("s", false))
	s.Sub("secret/#", 1)
	s.Disconnect()
	p := mqtttest.MustConnect(t, b.addr, mqtttest.V311("p", true))
	p.Pub("secret/1", "hidden", 1)
	p.Disconnect()

	b.opts.Auth = denySecret{}
	b.restart()
	s2, ack := mqtttest.Connect(t, b.addr, mqtttest.V311("s", false))
	if !ack.SessionPresent {
		t.Fatal("session not present")
	}
	s2.ExpectNone(quiet)
	if n := b.srv.Stats().Subscriptions; n != 0 {
		t.Errorf("%d subscriptions, want 0 (no longer allowed)", n)
	}
}

// denySecret admits everyone and denies the secret/ tree.
type denySecret struct{}

func (denySecret) Authenticate(string, bool, []byte, string) (broker.Principal, authz.AuthResult) {
	return secretPrincipal{}, authz.AuthOK
}
func (denySecret) Rebind(broker.Principal, string) (broker.Principal, authz.AuthResult) {
	return secretPrincipal{}, authz.AuthOK
}
func (denySecret) AllowAnonymous() bool { return true }

type secretPrincipal struct{}

func (secretPrincipal) CanPublish([]byte) bool { return true }
func (secretPrincipal) CanSubscribe(f string) bool {
	return len(f) < 6 || f[:6] != "secret"
}
func (secretPrincipal) CanRead(t []byte) bool { return len(t) < 6 || string(t[:6]) != "secret" }
func (secretPrincipal) Username() string      { return "" }
func (secretPrincipal) Anonymous() bool       { return true }

// TestPersistAckWaitsForStore: with a store, PUBACK and SUBACK are sent
// only once the store has what they promise, in order; messages no durable
// session wants are acknowledged at once.
func TestPersistAckWaitsForStore(t *testing.T) {
	t.Parallel()
	st := &heldStore{}
	srv, err := broker.New(broker.Options{AllowAnonymous: true, SysInterval: -1, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	addr := mqtttest.Serve(t, srv)
	p := mqtttest.MustConnect(t, addr, mqtttest.V311("p", true))
	p.Pub("nobody/home", "x", 1) // no durable session: acknowledged at once

	s := mqtttest.MustConnect(t, addr, mqtttest.V311("s", false))
	sp := packets.Subscribe{PacketID: 1, Subscriptions: []packets.Subscription{sub("d/#", 1)}}
	s.Write(sp.Append(nil, s.Version))
	s.ExpectNone(quiet)
	st.release()
	s.Expect(packets.SUBACK)

	for id := uint16(1); id <= 3; id++ {
		m := pub("d/x", fmt.Sprint(id), 1)
		m.PacketID = id
		p.WritePublish(m)
	}
	p.ExpectNone(quiet)
	if st.writes() == 0 {
		t.Fatal("nothing written to the store")
	}
	st.release()
	for id := uint16(1); id <= 3; id++ {
		p.ExpectAck(packets.PUBACK, id)
	}
}

// heldStore is a Store whose commits happen only when the test says so.
type heldStore struct {
	mu      sync.Mutex
	held    []func(error)
	nwrites int
}

func (h *heldStore) write() { h.mu.Lock(); h.nwrites++; h.mu.Unlock() }
func (h *heldStore) writes() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.nwrites
}

// release commits: every held callback runs, in order.
func (h *heldStore) release() {
	h.mu.Lock()
	held := h.held
	h.held = nil
	h.mu.Unlock()
	for _, fn := range held {
		fn(nil)
	}
}

func (h *heldStore) Load() (*store.Snapshot, error)                      { return &store.Snapshot{}, nil }
func (h *heldStore) SaveSession(string, uint32, int64, store.Owner)      { h.write() }
func (h *heldStore) DeleteSession(string)                                { h.write() }
func (h *heldStore) SaveSubscription(string, string, topic.Subscription) { h.write() }
func (h *heldStore) DeleteSubscription(string, string)                   { h.write() }
func (h *heldStore) PutDelivery(string, store.Delivery)                  { h.write() }
func (h *heldStore) DeleteDelivery(string, uint64)                       { h.write() }
func (h *heldStore) SaveInboundQoS2(string, uint16)                      { h.write() }
func (h *heldStore) ReleaseInboundQoS2(string, uint16)                   { h.write() }
func (h *heldStore) SetRetained(*outbox.Message)                         { h.write() }
func (h *heldStore) DeleteRetained(string)                               { h.write() }
func (h *heldStore) SaveWill(string, store.Will)                         { h.write() }
func (h *heldStore) DeleteWill(string)                                   { h.write() }
func (h *heldStore) BeginGroup() store.Group                             { return 0 }
func (h *heldStore) EndGroup(store.Group)                                {}
func (h *heldStore) Sync(done func(error)) {
	h.mu.Lock()
	h.held = append(h.held, done)
	h.mu.Unlock()
}
func (h *heldStore) Close() error { h.release(); return nil }
