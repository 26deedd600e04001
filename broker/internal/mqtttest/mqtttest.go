// Package mqtttest is a raw-packet MQTT client for the broker's tests: it
// writes exactly the bytes a test asks for (well-formed or not) and hands
// back every packet the broker sends, decoded with the packets package, so
// a test can check the broker byte by byte. It also starts a server on a
// loopback port for the length of a test.
//
// It does not import the broker, so that the broker's internal tests
// (package broker) may use it too.
package mqtttest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/fleetmq/fleetmq/broker/packets"
)

// Timeout bounds every wait of this package: long enough for a loaded
// two-core CI machine running the race detector, short enough that a
// broken feature fails the test rather than hanging it.
const Timeout = 5 * time.Second

// Server is what Serve needs of a broker (a *broker.Server).
type Server interface {
	Serve(ctx context.Context, ln net.Listener) error
	Shutdown(ctx context.Context) error
}

// Serve runs srv on a fresh 127.0.0.1:0 listener and returns its address.
// When the test ends the server is shut down and Serve's return awaited.
func Serve(tb testing.TB, srv Server) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	return ServeListener(tb, srv, ln)
}

// ServeListener is Serve on a listener of the caller's (one that wraps
// accepted connections, say).
func ServeListener(tb testing.TB, srv Server, ln net.Listener) string {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ctx, ln) // ends with ErrServerClosed at cleanup
	}()
	tb.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), Timeout)
		defer scancel()
		if err := srv.Shutdown(sctx); err != nil {
			tb.Errorf("shutdown: %v", err)
		}
		cancel()
		<-done
	})
	return ln.Addr().String()
}

// Packet is one packet received from the broker. Exactly one of the typed
// fields is set for the packet types a server sends; Err is set when the
// body did not decode.
type Packet struct {
	Type  packets.Type
	Flags byte
	Body  []byte

	Connack    *packets.Connack
	Publish    *packets.Publish
	Ack        *packets.Ack // PUBACK, PUBREC, PUBREL, PUBCOMP
	Suback     *packets.Suback
	Unsuback   *packets.Unsuback
	Disconnect *packets.Disconnect
	Auth       *packets.Auth
	Err        error
}

func (p Packet) String() string {
	switch {
	case p.Err != nil:
		return fmt.Sprintf("%v (undecodable: %v)", p.Type, p.Err)
	case p.Publish != nil:
		return fmt.Sprintf("PUBLISH{topic=%q qos=%d dup=%v retain=%v id=%d payload=%q}",
			p.Publish.Topic, p.Publish.QoS, p.Publish.Dup, p.Publish.Retain, p.Publish.PacketID, p.Publish.Payload)
	case p.Ack != nil:
		return fmt.Sprintf("%v{id=%d code=0x%02X}", p.Type, p.Ack.PacketID, byte(p.Ack.ReasonCode))
	case p.Disconnect != nil:
		return fmt.Sprintf("DISCONNECT{code=0x%02X reason=%q}", byte(p.Disconnect.ReasonCode), p.Disconnect.Props.ReasonString)
	case p.Connack != nil:
		return fmt.Sprintf("CONNACK{code=0x%02X present=%v}", byte(p.Connack.ReasonCode), p.Connack.SessionPresent)
	}
	return p.Type.String()
}

// Decode decodes one packet a server sends, as protocol version v.
func Decode(v packets.Version, first byte, body []byte) Packet {
	p := Packet{Type: packets.Type(first >> 4), Flags: first & 0x0F, Body: body}
	switch p.Type {
	case packets.CONNACK:
		p.Connack = new(packets.Connack)
		p.Err = p.Connack.Decode(v, p.Flags, body)
	case packets.PUBLISH:
		p.Publish = new(packets.Publish)
		p.Err = p.Publish.Decode(v, p.Flags, body)
	case packets.PUBACK, packets.PUBREC, packets.PUBREL, packets.PUBCOMP:
		p.Ack = new(packets.Ack)
		p.Err = p.Ack.Decode(v, p.Type, p.Flags, body)
	case packets.SUBACK:
		p.Suback = new(packets.Suback)
		p.Err = p.Suback.Decode(v, p.Flags, body)
	case packets.UNSUBACK:
		p.Unsuback = new(packets.Unsuback)
		p.Err = p.Unsuback.Decode(v, p.Flags, body)
	case packets.PINGRESP:
		p.Err = packets.DecodeEmpty(p.Type, p.Flags, body)
	case packets.DISCONNECT:
		p.Disconnect = new(packets.Disconnect)
		p.Err = p.Disconnect.Decode(v, p.Flags, body)
	case packets.AUTH:
		p.Auth = new(packets.Auth)
		p.Err = p.Auth.Decode(v, p.Flags, body)
	default:
		p.Err = fmt.Errorf("%v is not a packet a server sends", p.Type)
	}
	return p
}

// Client is one raw connection to the broker. A goroutine reads and
// decodes everything the broker sends; the test takes packets in order
// with Next and the Expect methods. Methods that fail call tb.Fatalf, so
// they must run on the test's goroutine.
type Client struct {
	tb      testing.TB
	Conn    net.Conn
	Version packets.Version

	in     chan Packet
	mu     sync.Mutex // guards readEr
	readEr error
	nextID uint16
	// stash holds packets that arrived while a handshake waited for its
	// acknowledgement; Next returns them first, in order.
	stash []Packet
}

// Dial opens a connection that will speak version v; nothing is sent.
func Dial(tb testing.TB, addr string, v packets.Version) *Client {
	tb.Helper()
	conn, err := net.DialTimeout("tcp", addr, Timeout)
	if err != nil {
		tb.Fatalf("dial %s: %v", addr, err)
	}
	c := &Client{tb: tb, Conn: conn, Version: v, in: make(chan Packet, 4096)}
	go c.read()
	tb.Cleanup(func() { conn.Close() })
	return c
}

func (c *Client) read() {
	defer close(c.in)
	for {
		first, body, err := packets.ReadPacket(c.Conn, nil, 0)
		if err != nil {
			c.mu.Lock()
			c.readEr = err
			c.mu.Unlock()
			return
		}
		c.in <- Decode(c.Version, first, body)
	}
}

// Connect dials addr, sends cp and returns the client and the CONNACK,
// whatever its code.
func Connect(tb testing.TB, addr string, cp *packets.Connect) (*Client, *packets.Connack) {
	tb.Helper()
	c := Dial(tb, addr, cp.Version)
	c.Write(cp.Append(nil))
	p := c.Expect(packets.CONNACK)
	return c, p.Connack
}

// MustConnect is Connect that fails the test unless the CONNACK is a
// success.
func MustConnect(tb testing.TB, addr string, cp *packets.Connect) *Client {
	tb.Helper()
	c, ack := Connect(tb, addr, cp)
	if ack.ReasonCode != packets.Success {
		tb.Fatalf("CONNECT %q: CONNACK code 0x%02X, want 0", cp.ClientID, byte(ack.ReasonCode))
	}
	return c
}

// V5 returns a clean-start 5.0 CONNECT for id.
func V5(id string) *packets.Connect {
	return &packets.Connect{Version: packets.V5, ClientID: id, CleanStart: true, KeepAlive: 60}
}

// V311 returns a 3.1.1 CONNECT for id with the given clean session flag.
func V311(id string, clean bool) *packets.Connect {
	return &packets.Connect{Version: packets.V311, ClientID: id, CleanStart: clean, KeepAlive: 60}
}

// Write sends raw bytes. A write error fails the test; use WriteErr when
// the broker may already have closed the connection.
func (c *Client) Write(b []byte) {
	c.tb.Helper()
	if err := c.WriteErr(b); err != nil {
		c.tb.Fatalf("write: %v", err)
	}
}

// WriteErr sends raw bytes and returns the error.
func (c *Client) WriteErr(b []byte) error {
	c.Conn.SetWriteDeadline(time.Now().Add(Timeout))
	_, err := c.Conn.Write(b)
	return err
}

// ID returns the next packet identifier (1, 2, ...).
func (c *Client) ID() uint16 {
	c.nextID++
	if c.nextID == 0 {
		c.nextID = 1
	}
	return c.nextID
}

// Next returns the next packet within d; ok is false on timeout or when
// the connection ended.
func (c *Client) Next(d time.Duration) (p Packet, ok bool) {
	if len(c.stash) > 0 {
		p, c.stash = c.stash[0], c.stash[1:]
		return p, true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case p, ok = <-c.in:
		return p, ok
	case <-t.C:
		return Packet{}, false
	}
}

// Expect returns the next packet and fails the test unless it is of type t
// and decodes.
func (c *Client) Expect(t packets.Type) Packet {
	c.tb.Helper()
	p, ok := c.Next(Timeout)
	if !ok {
		c.tb.Fatalf("waiting for %v: %s", t, c.endReason())
	}
	if p.Type != t {
		c.tb.Fatalf("got %v, want %v", p, t)
	}
	if p.Err != nil {
		c.tb.Fatalf("got %v", p)
	}
	return p
}

// ExpectPublish returns the next packet, which must be a PUBLISH.
func (c *Client) ExpectPublish() *packets.Publish {
	c.tb.Helper()
	return c.Expect(packets.PUBLISH).Publish
}

// ExpectAck returns the next packet, which must be an acknowledgement of
// type t for packet id.
func (c *Client) ExpectAck(t packets.Type, id uint16) *packets.Ack {
	c.tb.Helper()
	a := c.Expect(t).Ack
	if a.PacketID != id {
		c.tb.Fatalf("got %v for packet id %d, want %d", t, a.PacketID, id)
	}
	return a
}

// awaitAck waits for acknowledgement t of packet id, keeping any other
// packet that comes first for Next: a broker may interleave deliveries with
// a handshake.
func (c *Client) awaitAck(t packets.Type, id uint16) *packets.Ack {
	c.tb.Helper()
	var other []Packet
	defer func() { c.stash = append(other, c.stash...) }()
	for {
		p, ok := c.Next(Timeout)
		if !ok {
			c.tb.Fatalf("waiting for %v %d: %s", t, id, c.endReason())
		}
		if p.Type == t && p.Ack != nil && p.Ack.PacketID == id {
			if p.Err != nil {
				c.tb.Fatalf("got %v", p)
			}
			return p.Ack
		}
		other = append(other, p)
	}
}

// ExpectDisconnect expects a v5 DISCONNECT with code, then the end of the
// connection.
func (c *Client) ExpectDisconnect(code packets.ReasonCode) *packets.Disconnect {
	c.tb.Helper()
	d := c.Expect(packets.DISCONNECT).Disconnect
	if d.ReasonCode != code {
		c.tb.Fatalf("DISCONNECT code 0x%02X (%q), want 0x%02X", byte(d.ReasonCode), d.Props.ReasonString, byte(code))
	}
	c.ExpectClosed()
	return d
}

// ExpectNone fails the test if a packet arrives within d.
func (c *Client) ExpectNone(d time.Duration) {
	c.tb.Helper()
	if p, ok := c.Next(d); ok {
		c.tb.Fatalf("got %v, want nothing", p)
	}
}

// ExpectClosed waits for the broker to close the connection and fails the
// test if a packet arrives first.
func (c *Client) ExpectClosed() {
	c.tb.Helper()
	c.ExpectClosedWithin(Timeout)
}

// ExpectClosedWithin is ExpectClosed with a deadline of its own.
func (c *Client) ExpectClosedWithin(d time.Duration) {
	c.tb.Helper()
	t := time.NewTimer(d)
	defer t.Stop()
	if len(c.stash) > 0 {
		c.tb.Fatalf("got %v, want the connection closed", c.stash[0])
	}
	select {
	case p, ok := <-c.in:
		if ok {
			c.tb.Fatalf("got %v, want the connection closed", p)
		}
	case <-t.C:
		c.tb.Fatalf("connection still open after %v", d)
	}
}

// endReason says why no packet came.
func (c *Client) endReason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.readEr == nil {
		return "timed out"
	}
	if errors.Is(c.readEr, io.EOF) {
		return "connection closed by the broker"
	}
	return "connection ended: " + c.readEr.Error()
}

// Ping sends PINGREQ and waits for PINGRESP. The broker handles a
// connection's packets in order, so after Ping everything sent before it
// has been processed (routed, subscribed).
func (c *Client) Ping() {
	c.tb.Helper()
	c.Write(packets.AppendEmpty(nil, packets.PINGREQ))
	c.Expect(packets.PINGRESP)
}

// Subscribe sends one SUBSCRIBE and returns its SUBACK, checking the
// packet id.
func (c *Client) Subscribe(props packets.Properties, subs ...packets.Subscription) *packets.Suback {
	c.tb.Helper()
	s := packets.Subscribe{PacketID: c.ID(), Props: props, Subscriptions: subs}
	c.Write(s.Append(nil, c.Version))
	ack := c.Expect(packets.SUBACK).Suback
	if ack.PacketID != s.PacketID {
		c.tb.Fatalf("SUBACK for packet id %d, want %d", ack.PacketID, s.PacketID)
	}
	if len(ack.ReasonCodes) != len(subs) {
		c.tb.Fatalf("SUBACK has %d codes, want %d", len(ack.ReasonCodes), len(subs))
	}
	return ack
}

// Sub subscribes to one filter at qos and fails the test unless qos is
// granted.
func (c *Client) Sub(filter string, qos byte) {
	c.tb.Helper()
	ack := c.Subscribe(packets.Properties{}, packets.Subscription{Filter: filter, SubOptions: packets.SubOptions{QoS: qos}})
	if ack.ReasonCodes[0] != packets.ReasonCode(qos) {
		c.tb.Fatalf("SUBSCRIBE %q: code 0x%02X, want QoS %d", filter, byte(ack.ReasonCodes[0]), qos)
	}
}

// WritePublish sends p as is (a QoS > 0 p needs a PacketID).
func (c *Client) WritePublish(p *packets.Publish) {
	c.tb.Helper()
	c.Write(p.Append(nil, c.Version))
}

// Publish sends a PUBLISH and completes its QoS handshake as the sender;
// it returns the reason code of PUBACK or PUBREC (Success for QoS 0).
// Other packets arriving meanwhile are kept for Next.
func (c *Client) Publish(p *packets.Publish) packets.ReasonCode {
	c.tb.Helper()
	if p.QoS > 0 && p.PacketID == 0 {
		p.PacketID = c.ID()
	}
	c.WritePublish(p)
	switch p.QoS {
	case 1:
		return c.awaitAck(packets.PUBACK, p.PacketID).ReasonCode
	case 2:
		code := c.awaitAck(packets.PUBREC, p.PacketID).ReasonCode
		if code.IsError() {
			return code
		}
		c.WriteAck(packets.PUBREL, p.PacketID)
		c.awaitAck(packets.PUBCOMP, p.PacketID)
		return code
	}
	return packets.Success
}

// Pub publishes payload to topic at qos with no properties.
func (c *Client) Pub(topic, payload string, qos byte) {
	c.tb.Helper()
	c.Publish(&packets.Publish{Topic: []byte(topic), Payload: []byte(payload), QoS: qos})
}

// WriteAck sends PUBACK, PUBREC, PUBREL or PUBCOMP with reason Success.
func (c *Client) WriteAck(t packets.Type, id uint16) {
	c.tb.Helper()
	a := packets.Ack{Type: t, PacketID: id}
	c.Write(a.Append(nil, c.Version))
}

// Receive takes the next PUBLISH and acknowledges it as a receiver
// (PUBACK, or PUBREC, PUBREL, PUBCOMP). Deliveries arriving during a QoS 2
// handshake are kept for the next call.
func (c *Client) Receive() *packets.Publish {
	c.tb.Helper()
	p := c.ExpectPublish()
	switch p.QoS {
	case 1:
		c.WriteAck(packets.PUBACK, p.PacketID)
	case 2:
		c.WriteAck(packets.PUBREC, p.PacketID)
		c.awaitAck(packets.PUBREL, p.PacketID)
		c.WriteAck(packets.PUBCOMP, p.PacketID)
	}
	return p
}

// Disconnect sends a normal DISCONNECT and waits for the broker to close.
func (c *Client) Disconnect() {
	c.tb.Helper()
	d := packets.Disconnect{}
	c.Write(d.Append(nil, c.Version))
	c.ExpectClosed()
}

// Close drops the connection without DISCONNECT, as a crashed client
// would.
func (c *Client) Close() { c.Conn.Close() }

// WaitFor polls cond until it holds or Timeout passes; what names the
// condition in the failure.
func WaitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
