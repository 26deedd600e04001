package main

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fleetmq/fleetmq/broker/packets"
)

// TestKill9NoAckedMessageLost is the durability promise end to end: a
// fleetmq-broker process with --data-dir is killed with SIGKILL at random
// moments under load and restarted on the same port and directory, five
// times. Two publishers send numbered messages (QoS 1 and QoS 2) and record
// every number the broker acknowledged (PUBACK, PUBREC); a persistent
// subscriber (clean session off, subscribed once) reconnects after every
// restart and counts. At the end every acknowledged QoS 1 number arrived at
// least once, and every QoS 2 number exactly once (the subscriber
// de-duplicates by packet id until PUBREL, as a receiver must).
func TestKill9NoAckedMessageLost(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills broker processes")
	}
	bin := filepath.Join(t.TempDir(), "fleetmq-broker")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dataDir := t.TempDir()
	addr := freeAddr(t)
	b := &brokerProc{t: t, bin: bin, addr: addr, dir: dataDir}
	b.start()
	defer b.stop(syscall.SIGTERM)

	sub := newCounter(addr)
	if err := sub.subscribeOnce("k/#"); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	pubs := []*publisher{newPublisher(addr, "pub1", "k/1", 1), newPublisher(addr, "pub2", "k/2", 2)}
	wg.Add(1 + len(pubs))
	go func() { defer wg.Done(); sub.run(stop) }()
	for _, p := range pubs {
		go func() { defer wg.Done(); p.run(stop) }()
	}

	for range 5 {
		time.Sleep(time.Duration(800+rand.IntN(1200)) * time.Millisecond)
		b.stop(syscall.SIGKILL)
		b.start()
	}
	time.Sleep(time.Second)
	for _, p := range pubs {
		p.finish()
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, p := range pubs {
		for !p.drained() && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, p := range pubs {
		for !sub.covers(p.topic, p.ackedNumbers()) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	close(stop)
	wg.Wait()

	for _, p := range pubs {
		acked := p.ackedNumbers()
		if len(acked) < 100 {
			t.Errorf("%s: only %d messages acknowledged: not under load", p.topic, len(acked))
		}
		missing, dups := 0, 0
		for _, n := range acked {
			c := sub.count(p.topic, n)
			switch {
			case c == 0:
				if missing < 5 {
					t.Errorf("%s: acknowledged message %d never delivered", p.topic, n)
				}
				missing++
			case c > 1 && p.qos == 2:
				if dups < 5 {
					t.Errorf("%s: QoS 2 message %d delivered %d times", p.topic, n, c)
				}
				dups++
			}
		}
		t.Logf("%s (QoS %d): %d acknowledged, %d missing, %d duplicated; %d deliveries in all, %d connections",
			p.topic, p.qos, len(acked), missing, dups, sub.total(p.topic), p.connects)
	}
	if sub.lostSession > 0 {
		t.Errorf("subscriber's session was not present after %d reconnects", sub.lostSession)
	}
	if t.Failed() {
		t.Logf("broker output:\n%s", b.output())
	}
}

// brokerProc is the broker under test, one process at a time.
type brokerProc struct {
	t         *testing.T
	bin       string
	addr, dir string
	// args replace the default flags (an in-memory-less broker on addr).
	args []string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
}

func (b *brokerProc) start() {
	b.t.Helper()
	args := b.args
	if args == nil {
		args = []string{"--mqtt-addr", b.addr, "--admin-addr", "", "--allow-anonymous",
			"--data-dir", b.dir, "--log-level", "warn", "--log-format", "text"}
	}
	cmd := exec.Command(b.bin, args...)
	cmd.Stdout, cmd.Stderr = b, b
	if err := cmd.Start(); err != nil {
		b.t.Fatalf("start broker: %v", err)
	}
	b.cmd = cmd
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", b.addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("broker not listening on %s: %v\n%s", b.addr, err, b.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (b *brokerProc) stop(sig syscall.Signal) {
	if b.cmd == nil {
		return
	}
	b.cmd.Process.Signal(sig)
	err := b.cmd.Wait()
	var ee *exec.ExitError
	if sig == syscall.SIGTERM && err != nil && !errors.As(err, &ee) {
		b.t.Errorf("broker exit: %v", err)
	}
	b.cmd = nil
}

func (b *brokerProc) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.Write(p)
}

func (b *brokerProc) output() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.String()
}

// conn is a minimal 3.1.1 client connection for the test: packets are
// read by a goroutine into a channel.
type conn struct {
	net.Conn
	in chan packet
}

type packet struct {
	first byte
	body  []byte
}

func dial(addr, id string) (*conn, bool, error) {
	nc, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, false, err
	}
	c := &conn{Conn: nc, in: make(chan packet, 1024)}
	cp := packets.Connect{Version: packets.V311, ClientID: id, CleanStart: false, KeepAlive: 30}
	if err := c.send(cp.Append(nil)); err != nil {
		nc.Close()
		return nil, false, err
	}
	nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	first, body, err := packets.ReadPacket(nc, nil, 0)
	if err != nil || packets.Type(first>>4) != packets.CONNACK {
		nc.Close()
		return nil, false, fmt.Errorf("CONNACK: type %d, %w", first>>4, err)
	}
	var ack packets.Connack
	if err := ack.Decode(packets.V311, first&0x0F, body); err != nil || ack.ReasonCode != 0 {
		nc.Close()
		return nil, false, fmt.Errorf("CONNACK %v: %w", ack.ReasonCode, err)
	}
	nc.SetReadDeadline(time.Time{})
	go func() {
		defer close(c.in)
		for {
			first, body, err := packets.ReadPacket(nc, nil, 0)
			if err != nil {
				return
			}
			c.in <- packet{first, body}
		}
	}()
	return c, ack.SessionPresent, nil
}

func (c *conn) send(b []byte) error {
	c.SetWriteDeadline(time.Now().Add(2 * time.Second))
	_, err := c.Write(b)
	return err
}

func (c *conn) ack(t packets.Type, id uint16) error {
	a := packets.Ack{Type: t, PacketID: id}
	return c.send(a.Append(nil, packets.V311))
}

// counter is the persistent subscriber.
type counter struct {
	addr string
	mu   sync.Mutex
	seen map[string]map[int]int // topic → number → deliveries
	// awaitingRel is the receiver's QoS 2 state: ids received, PUBREL not
	// yet. It outlives connections, as the session does.
	awaitingRel map[uint16]bool
	lostSession int
}

func newCounter(addr string) *counter {
	return &counter{addr: addr, seen: make(map[string]map[int]int), awaitingRel: make(map[uint16]bool)}
}

func (s *counter) subscribeOnce(filter string) error {
	c, _, err := dial(s.addr, "counter")
	if err != nil {
		return err
	}
	defer c.Close()
	sp := packets.Subscribe{PacketID: 1, Subscriptions: []packets.Subscription{{Filter: filter, SubOptions: packets.SubOptions{QoS: 2}}}}
	if err := c.send(sp.Append(nil, packets.V311)); err != nil {
		return err
	}
	select {
	case p := <-c.in:
		if packets.Type(p.first>>4) != packets.SUBACK {
			return fmt.Errorf("got packet type %d, want SUBACK", p.first>>4)
		}
	case <-time.After(5 * time.Second):
		return errors.New("no SUBACK")
	}
	return c.send(packets.AppendEmpty(nil, packets.DISCONNECT))
}

func (s *counter) run(stop chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		c, present, err := dial(s.addr, "counter")
		if err != nil {
			time.Sleep(30 * time.Millisecond)
			continue
		}
		if !present {
			s.mu.Lock()
			s.lostSession++
			s.mu.Unlock()
		}
		s.serve(c, stop)
		c.Close()
	}
}

func (s *counter) serve(c *conn, stop chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case p, ok := <-c.in:
			if !ok {
				return
			}
			switch packets.Type(p.first >> 4) {
			case packets.PUBLISH:
				var pub packets.Publish
				if pub.Decode(packets.V311, p.first&0x0F, p.body) != nil {
					return
				}
				n, _ := strconv.Atoi(string(pub.Payload))
				s.mu.Lock()
				fresh := pub.QoS < 2 || !s.awaitingRel[pub.PacketID]
				if fresh {
					if s.seen[string(pub.Topic)] == nil {
						s.seen[string(pub.Topic)] = make(map[int]int)
					}
					s.seen[string(pub.Topic)][n]++
				}
				if pub.QoS == 2 {
					s.awaitingRel[pub.PacketID] = true
				}
				s.mu.Unlock()
				t := packets.PUBACK
				if pub.QoS == 2 {
					t = packets.PUBREC
				}
				if c.ack(t, pub.PacketID) != nil {
					return
				}
			case packets.PUBREL:
				var a packets.Ack
				if a.Decode(packets.V311, packets.PUBREL, p.first&0x0F, p.body) != nil {
					return
				}
				s.mu.Lock()
				delete(s.awaitingRel, a.PacketID)
				s.mu.Unlock()
				if c.ack(packets.PUBCOMP, a.PacketID) != nil {
					return
				}
			}
		}
	}
}

func (s *counter) count(topic string, n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[topic][n]
}

func (s *counter) total(topic string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	sum := 0
	for _, c := range s.seen[topic] {
		sum += c
	}
	return sum
}

func (s *counter) covers(topic string, nums []int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range nums {
		if s.seen[topic][n] == 0 {
			return false
		}
	}
	return true
}

// publisher sends numbered messages with up to window unacknowledged,
// resending them (DUP) after reconnecting, and records what was acked.
type publisher struct {
	addr, id, topic string
	qos             byte

	mu       sync.Mutex
	next     int            // next number to send
	unacked  map[uint16]int // packet id → number, awaiting PUBACK/PUBREC
	released map[uint16]int // QoS 2: PUBREL sent, awaiting PUBCOMP
	acked    []int
	done     bool // finish: send nothing new
	connects int
}

const window = 16

func newPublisher(addr, id, topic string, qos byte) *publisher {
	return &publisher{addr: addr, id: id, topic: topic, qos: qos, unacked: make(map[uint16]int), released: make(map[uint16]int)}
}

func (p *publisher) finish() {
	p.mu.Lock()
	p.done = true
	p.mu.Unlock()
}

func (p *publisher) drained() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.unacked) == 0 && len(p.released) == 0
}

func (p *publisher) ackedNumbers() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int(nil), p.acked...)
}

func (p *publisher) publish(c *conn, n int, dup bool) error {
	m := packets.Publish{QoS: p.qos, Dup: dup, PacketID: uint16(n%60000) + 1, Topic: []byte(p.topic), Payload: []byte(strconv.Itoa(n))}
	return c.send(m.Append(nil, packets.V311))
}

func (p *publisher) run(stop chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		c, _, err := dial(p.addr, p.id)
		if err != nil {
			time.Sleep(30 * time.Millisecond)
			continue
		}
		p.mu.Lock()
		p.connects++
		p.mu.Unlock()
		p.serve(c, stop)
		c.Close()
	}
}

func (p *publisher) serve(c *conn, stop chan struct{}) {
	// Resume: unacknowledged PUBLISHes again with DUP, PUBRELs again.
	p.mu.Lock()
	var resend []int
	for _, n := range p.unacked {
		resend = append(resend, n)
	}
	var rel []uint16
	for id := range p.released {
		rel = append(rel, id)
	}
	p.mu.Unlock()
	for _, n := range resend {
		if p.publish(c, n, true) != nil {
			return
		}
	}
	for _, id := range rel {
		if c.ack(packets.PUBREL, id) != nil {
			return
		}
	}
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case pk, ok := <-c.in:
			if !ok {
				return
			}
			var a packets.Ack
			t := packets.Type(pk.first >> 4)
			if a.Decode(packets.V311, t, pk.first&0x0F, pk.body) != nil {
				return
			}
			p.mu.Lock()
			switch t {
			case packets.PUBACK, packets.PUBREC:
				if n, ok := p.unacked[a.PacketID]; ok {
					delete(p.unacked, a.PacketID)
					p.acked = append(p.acked, n)
					if t == packets.PUBREC {
						p.released[a.PacketID] = n
					}
				}
			case packets.PUBCOMP:
				delete(p.released, a.PacketID)
			}
			p.mu.Unlock()
			if t == packets.PUBREC && c.ack(packets.PUBREL, a.PacketID) != nil {
				return
			}
		case <-tick.C:
			for {
				p.mu.Lock()
				if p.done || len(p.unacked)+len(p.released) >= window {
					p.mu.Unlock()
					break
				}
				n := p.next
				p.next++
				p.unacked[uint16(n%60000)+1] = n
				p.mu.Unlock()
				if p.publish(c, n, false) != nil {
					return
				}
			}
		}
	}
}
