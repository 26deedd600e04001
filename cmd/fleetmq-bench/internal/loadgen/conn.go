package loadgen

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetmq/fleetmq/broker/packets"
)

const (
	// initialReadBuf is small so that ten thousand idle connections cost
	// little; the buffer doubles when a read fills it, up to maxReadBuf.
	initialReadBuf = 512
	maxReadBuf     = 256 << 10
)

// conn is one raw MQTT connection. The goroutine that created it writes
// CONNECT and reads CONNACK synchronously; from then on a reader goroutine
// owns the read side, and writes (publishes, acknowledgements, pings) are
// serialized by wmu.
type conn struct {
	r   *runner
	idx int
	id  string
	nc  net.Conn
	v   packets.Version
	lat *Hist // latency shard for deliveries

	// wmu guards wbuf and writes to nc.
	wmu  sync.Mutex
	wbuf []byte

	lastWrite atomic.Int64 // Unix ns of the last write, for keepalive
	closing   atomic.Bool  // set before a deliberate close: read errors are expected

	// Counters, summed by the progress reporter.
	sent     atomic.Uint64 // PUBLISH written
	acked    atomic.Uint64 // PUBACK or PUBCOMP received
	received atomic.Uint64 // PUBLISH received

	// window holds one token per unacknowledged QoS 1/2 PUBLISH.
	window chan struct{}
	// subacked gets the outcome of the one SUBSCRIBE a connection sends.
	subacked chan error
	// done is closed when the reader ends.
	done chan struct{}

	abuf []byte // acknowledgements built by the reader, flushed per read
}

// dial opens a connection to addr from the source address for index idx
// and completes CONNECT/CONNACK.
func (r *runner) dial(addr string, idx int, id string) (*conn, error) {
	cfg := r.cfg
	deadline := time.Now().Add(cfg.ConnectTimeout)
	d := net.Dialer{Deadline: deadline}
	if len(cfg.Sources) > 0 {
		d.LocalAddr = &net.TCPAddr{IP: cfg.Sources[idx%len(cfg.Sources)]}
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	c := &conn{r: r, idx: idx, id: id, nc: nc, v: cfg.Protocol, lat: r.lat.For(idx), done: make(chan struct{})}
	cp := packets.Connect{Version: cfg.Protocol, ClientID: id, CleanStart: true, KeepAlive: uint16(cfg.KeepAlive / time.Second)}
	if cfg.Protocol == packets.V31 {
		cp.ProtocolName = "MQIsdp"
	}
	if cfg.Username != "" {
		cp.Username, cp.HasUsername = cfg.Username, true
		if cfg.Password != "" {
			cp.Password, cp.HasPassword = []byte(cfg.Password), true
		}
	}
	nc.SetDeadline(deadline)
	if _, err := nc.Write(cp.Append(nil)); err != nil {
		nc.Close()
		return nil, fmt.Errorf("write CONNECT: %w", err)
	}
	var buf [64]byte
	first, body, err := packets.ReadPacket(nc, buf[:0], 0)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("read CONNACK: %w", err)
	}
	if t := packets.Type(first >> 4); t != packets.CONNACK {
		nc.Close()
		return nil, fmt.Errorf("got %v, want CONNACK", t)
	}
	var ack packets.Connack
	if err := ack.Decode(cfg.Protocol, first&0x0F, body); err != nil {
		nc.Close()
		return nil, fmt.Errorf("decode CONNACK: %w", err)
	}
	if ack.ReasonCode != packets.Success {
		nc.Close()
		return nil, fmt.Errorf("CONNACK refused: code 0x%02X", byte(ack.ReasonCode))
	}
	nc.SetDeadline(time.Time{})
	c.lastWrite.Store(time.Now().UnixNano())
	return c, nil
}

// start launches the reader goroutine.
func (c *conn) start() { go c.readLoop() }

// write sends b under wmu.
func (c *conn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(b)
}

func (c *conn) writeLocked(b []byte) error {
	_, err := c.nc.Write(b)
	c.lastWrite.Store(time.Now().UnixNano())
	return err
}

// subscribe sends one SUBSCRIBE and waits for its SUBACK. The reader must
// be running.
func (c *conn) subscribe(filter string, qos byte, timeout time.Duration) error {
	c.subacked = make(chan error, 1)
	s := packets.Subscribe{PacketID: 1, Subscriptions: []packets.Subscription{{Filter: filter, SubOptions: packets.SubOptions{QoS: qos}}}}
	if err := c.write(s.Append(nil, c.v)); err != nil {
		return fmt.Errorf("write SUBSCRIBE: %w", err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-c.subacked:
		return err
	case <-c.done:
		return errors.New("connection closed before SUBACK")
	case <-t.C:
		return fmt.Errorf("no SUBACK within %v", timeout)
	}
}

// disconnect sends DISCONNECT and closes the connection.
func (c *conn) disconnect() {
	c.closing.Store(true)
	d := packets.Disconnect{}
	c.wmu.Lock()
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	_ = c.writeLocked(d.Append(nil, c.v)) // best effort: the close follows anyway
	c.wmu.Unlock()
	c.nc.Close()
}

// readLoop frames and handles everything the broker sends until the
// connection ends.
func (c *conn) readLoop() {
	defer close(c.done)
	buf := make([]byte, 0, initialReadBuf)
	for {
		if len(buf) == cap(buf) {
			if cap(buf) >= maxReadBuf {
				c.fail(fmt.Errorf("packet larger than %d bytes", maxReadBuf))
				return
			}
			nb := make([]byte, len(buf), 2*cap(buf))
			copy(nb, buf)
			buf = nb
		}
		n, rerr := c.nc.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		off := 0
		for {
			first, body, m, err := packets.Frame(buf[off:], 0)
			if err != nil {
				c.fail(fmt.Errorf("frame: %w", err))
				return
			}
			if m == 0 {
				break
			}
			if err := c.handle(first, body); err != nil {
				c.fail(err)
				return
			}
			off += m
		}
		buf = buf[:copy(buf, buf[off:])]
		if len(c.abuf) > 0 {
			if err := c.write(c.abuf); err != nil && !c.closing.Load() {
				c.fail(fmt.Errorf("write acknowledgements: %w", err))
				return
			}
			c.abuf = c.abuf[:0]
		}
		if rerr != nil {
			if !c.closing.Load() {
				if errors.Is(rerr, io.EOF) {
					rerr = errors.New("connection closed by the broker")
				}
				c.fail(rerr)
			}
			return
		}
	}
}

// fail records an error for this connection unless it is being closed.
func (c *conn) fail(err error) {
	if c.closing.Load() {
		return
	}
	c.r.errorf("%s: %v", c.id, err)
	c.nc.Close()
}

// handle processes one packet from the broker.
func (c *conn) handle(first byte, body []byte) error {
	t := packets.Type(first >> 4)
	switch t {
	case packets.PUBLISH:
		var p packets.Publish
		if err := p.Decode(c.v, first&0x0F, body); err != nil {
			return err
		}
		c.received.Add(1)
		if len(p.Payload) >= PayloadHeader && string(p.Payload[:len(payloadMagic)]) == payloadMagic {
			ts := int64(binary.BigEndian.Uint64(p.Payload[len(payloadMagic):]))
			c.lat.Record(time.Duration(time.Now().UnixNano() - ts))
		}
		switch p.QoS {
		case 1:
			a := packets.Ack{Type: packets.PUBACK, PacketID: p.PacketID}
			c.abuf = a.Append(c.abuf, c.v)
		case 2:
			a := packets.Ack{Type: packets.PUBREC, PacketID: p.PacketID}
			c.abuf = a.Append(c.abuf, c.v)
		}
	case packets.PUBACK, packets.PUBREC, packets.PUBREL, packets.PUBCOMP:
		var a packets.Ack
		if err := a.Decode(c.v, t, first&0x0F, body); err != nil {
			return err
		}
		if a.ReasonCode.IsError() {
			c.r.errorf("%s: %v for packet %d: code 0x%02X", c.id, t, a.PacketID, byte(a.ReasonCode))
		}
		switch t {
		case packets.PUBACK, packets.PUBCOMP:
			c.acked.Add(1)
			select {
			case <-c.window:
			default:
			}
		case packets.PUBREC:
			if a.ReasonCode.IsError() {
				c.acked.Add(1)
				select {
				case <-c.window:
				default:
				}
				break
			}
			rel := packets.Ack{Type: packets.PUBREL, PacketID: a.PacketID}
			c.abuf = rel.Append(c.abuf, c.v)
		case packets.PUBREL:
			comp := packets.Ack{Type: packets.PUBCOMP, PacketID: a.PacketID}
			c.abuf = comp.Append(c.abuf, c.v)
		}
	case packets.SUBACK:
		var s packets.Suback
		err := s.Decode(c.v, first&0x0F, body)
		if err == nil && (len(s.ReasonCodes) != 1 || s.ReasonCodes[0] >= 0x80) {
			err = fmt.Errorf("SUBACK refused: codes %v", s.ReasonCodes)
		}
		if c.subacked != nil {
			c.subacked <- err
		}
	case packets.PINGRESP:
	case packets.DISCONNECT:
		var d packets.Disconnect
		_ = d.Decode(c.v, first&0x0F, body)
		return fmt.Errorf("DISCONNECT from the broker: code 0x%02X %s", byte(d.ReasonCode), d.Props.ReasonString)
	default:
		return fmt.Errorf("unexpected %v from the broker", t)
	}
	return nil
}

// ping sends PINGREQ when nothing was written for at least idle.
func (c *conn) ping(now time.Time, idle time.Duration) {
	if now.UnixNano()-c.lastWrite.Load() < int64(idle) || c.closing.Load() {
		return
	}
	if err := c.write(packets.AppendEmpty(nil, packets.PINGREQ)); err != nil && !c.closing.Load() {
		c.r.errorf("%s: write PINGREQ: %v", c.id, err)
	}
}

// publisher is the sending side of one publishing connection.
type publisher struct {
	c       *conn
	pub     packets.Publish
	payload []byte
	nextID  uint16
}

func newPublisher(c *conn, topic string, cfg *Config) *publisher {
	payload := make([]byte, cfg.Size)
	copy(payload, payloadMagic)
	for i := PayloadHeader; i < len(payload); i++ {
		payload[i] = 'x'
	}
	if cfg.QoS > 0 {
		c.window = make(chan struct{}, cfg.Inflight)
	}
	return &publisher{
		c:       c,
		payload: payload,
		pub:     packets.Publish{Topic: []byte(topic), QoS: cfg.QoS, Retain: cfg.Retain, Payload: payload},
	}
}

// acquire takes up to n window slots, blocking for the first; it returns
// 0 when stop closes first. QoS 0 has no window.
func (p *publisher) acquire(n int, stop <-chan struct{}) int {
	w := p.c.window
	if w == nil {
		return n
	}
	select {
	case w <- struct{}{}:
	case <-stop:
		return 0
	case <-p.c.done:
		return 0
	}
	got := 1
	for got < n {
		select {
		case w <- struct{}{}:
			got++
		default:
			return got
		}
	}
	return got
}

// send writes n PUBLISH packets in one system call, stamped with the
// current time.
func (p *publisher) send(n int) error {
	c := p.c
	binary.BigEndian.PutUint64(p.payload[len(payloadMagic):], uint64(time.Now().UnixNano()))
	c.wmu.Lock()
	b := c.wbuf[:0]
	for range n {
		if p.pub.QoS > 0 {
			p.nextID++
			if p.nextID == 0 {
				p.nextID = 1
			}
			p.pub.PacketID = p.nextID
		}
		b = p.pub.Append(b, c.v)
	}
	c.wbuf = b
	err := c.writeLocked(b)
	c.wmu.Unlock()
	if err != nil {
		return fmt.Errorf("write PUBLISH: %w", err)
	}
	c.sent.Add(uint64(n))
	return nil
}

// run publishes until stop closes, count messages are sent (count > 0) or
// the connection fails. rate is messages per second (0: full speed);
// phase in [0, 1) delays the first paced tick by that part of the interval.
func (p *publisher) run(stop <-chan struct{}, rate float64, batch, count int, phase float64) {
	sent := 0
	left := func() int {
		if count > 0 {
			return count - sent
		}
		return batch
	}
	// publish sends up to want messages, as the window allows; 0 means
	// stop (stopped, or the connection failed).
	publish := func(want int) int {
		n := p.acquire(want, stop)
		if n == 0 {
			return 0
		}
		if err := p.send(n); err != nil {
			p.fail(err)
			return 0
		}
		sent += n
		return n
	}
	if rate <= 0 {
		for left() > 0 {
			select {
			case <-stop:
				return
			default:
			}
			if publish(min(batch, left())) == 0 {
				return
			}
		}
		return
	}
	// Paced: every tick, send what is due since the start (a token bucket
	// that refills continuously and never loses credit).
	interval := time.Duration(float64(time.Second) / rate)
	interval = min(max(interval, time.Millisecond), 100*time.Millisecond)
	// Spread the publishers' ticks over the interval: tickers started
	// together would send in synchronized bursts, which measures burst
	// queueing rather than the broker at a steady rate.
	if phase > 0 {
		select {
		case <-time.After(time.Duration(phase * float64(interval))):
		case <-stop:
			return
		}
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	start := time.Now()
	for left() > 0 {
		select {
		case <-stop:
			return
		case <-p.c.done:
			return
		case now := <-tick.C:
			due := int(rate*now.Sub(start).Seconds()) + 1 - sent
			if count > 0 {
				due = min(due, count-sent)
			}
			for due > 0 {
				n := publish(min(due, batch))
				if n == 0 {
					return
				}
				due -= n
			}
		}
	}
}

func (p *publisher) fail(err error) {
	if !p.c.closing.Load() {
		p.c.r.errorf("%s: %v", p.c.id, err)
	}
}
