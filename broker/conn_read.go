package broker

import (
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/fleetmq/fleetmq/broker/packets"
)

func (c *client) serve() {
	c.life.running.Store(true)
	c.run()
}

// run handles bursts until the connection can be parked in the poller (or
// ends). The caller holds busy.
func (c *client) run() {
	c.wokeAt = time.Now()
	for {
		err := c.waitReadable()
		if err == nil {
			c.beginBurst()
			err = c.readBurst()
			c.endBurst()
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, errIdle) {
			if c.life.registered {
				c.srv.poller.forget(c)
			}
			c.finish(err)
			return
		}
		// Idle for parkAfter: give the goroutine up until bytes arrive.
		if !c.life.registered && !c.srv.poller.register(c) {
			c.life.pollable = false
			continue
		}
		c.armKeepalive()
		c.life.release()
		if c.srv.poller.arm(c) {
			if c.life.ending.Load() {
				c.wake() // closed while we were parking
			}
			return
		}
		c.life.pollable = false
		if !c.life.take() {
			return // a wake-up took the connection over
		}
	}
}

// endAndWake marks the connection as ending and wakes it if parked.
func (c *client) endAndWake() {
	c.life.ending.Store(true)
	c.wake()
}

// wake starts a goroutine for a parked connection: it turned readable,
// its keepalive ran out, or the broker is closing it.
func (c *client) wake() {
	if c.life.take() {
		go c.run()
	}
}

// armKeepalive makes a parked connection wake when its keepalive deadline
// passes, so the timeout is noticed without a blocked read.
func (c *client) armKeepalive() {
	if c.keepAlive <= 0 {
		return
	}
	d := time.Until(c.lastRead.Add(c.keepAlive))
	if c.kaTimer == nil {
		c.kaTimer = time.AfterFunc(d, c.wake)
	} else {
		c.kaTimer.Reset(d)
	}
}

// parkAfter is how long a pollable connection stays idle in its goroutine
// before it is parked in the poller: a busy connection keeps its goroutine
// (and grown stack) instead of paying a new goroutine per burst.
const parkAfter = time.Second

// errIdle: a pollable connection was idle for parkAfter.
var errIdle = errors.New("idle")

// waitReadable waits until the client sends a byte. It holds no buffer,
// and it is called from run with the deep packet-handling frames already
// returned. A pollable connection returns errIdle after parkAfter of
// silence.
func (c *client) waitReadable() error {
	for {
		c.setReadDeadline(true)
		_, err := io.ReadFull(c.conn, c.one[:])
		if err == nil {
			c.lastRead = time.Now()
			return nil
		}
		if !c.earlyTimeout(err) {
			return err
		}
		if time.Since(c.idleSince()) >= parkAfter {
			return errIdle
		}
	}
}

// idleSince is when the connection last showed activity: its last burst,
// or the wake-up that started this goroutine (bytes are waiting then).
func (c *client) idleSince() time.Time {
	if c.wokeAt.After(c.lastRead) {
		return c.wokeAt
	}
	return c.lastRead
}

// earlyTimeout reports a read timeout of a pollable connection that is not
// a keepalive expiry. Such connections keep a read deadline that may be
// earlier than needed (it is moved only about once per parkAfter, not once
// per burst, because moving it takes the runtime's timer lock), so a
// timeout is checked against the real keepalive before it counts.
func (c *client) earlyTimeout(err error) bool {
	if !c.life.pollable || c.st == nil || c.life.kicked.Load() || !isTimeout(err) {
		return false
	}
	c.deadline = time.Time{}
	return c.keepAlive <= 0 || time.Now().Before(c.lastRead.Add(c.keepAlive))
}

// readBurst reads and handles packets with a pooled buffer until no
// partial packet is pending, then gives the buffer back.
func (c *client) readBurst() error {
	c.rb = getBuffer()
	c.rb.b = append(c.rb.b[:0], c.one[0])
	defer func() {
		putBuffer(c.rb)
		c.rb = nil
	}()
	c.scratch = scratchPool.Get().(*burstScratch)
	defer func() {
		*c.scratch = burstScratch{}
		scratchPool.Put(c.scratch)
		c.scratch = nil
		c.lastRead = time.Now()
	}()
	pos := 0
	for {
		for pos < len(c.rb.b) {
			unauthenticated := c.st == nil
			maxSize := int(c.srv.lim.MaxPacketSize)
			if unauthenticated {
				maxSize = int(min(c.srv.lim.MaxConnectPacketSize, c.srv.lim.MaxPacketSize))
			}
			first, body, n, err := packets.Frame(c.rb.b[pos:], maxSize)
			if err != nil {
				return c.frameError(err, c.rb.b[pos:])
			}
			if n == 0 {
				break
			}
			c.srv.stats.BytesReceived.Add(int64(n))
			err = c.handle(first, body)
			if unauthenticated && c.st != nil {
				c.authenticated()
			}
			if err != nil {
				return err
			}
			pos += n
			if c.life.backlog.Load() {
				c.throttle()
			}
		}
		if pos == len(c.rb.b) {
			return nil
		}
		// Keep the partial packet at the front and read more after it.
		rest := copy(c.rb.b, c.rb.b[pos:])
		c.rb.b = c.rb.b[:rest]
		pos = 0
		if len(c.rb.b) == cap(c.rb.b) {
			nb := make([]byte, len(c.rb.b), 2*cap(c.rb.b))
			copy(nb, c.rb.b)
			c.rb.b = nb
		}
		c.setReadDeadline(false)
		c.pauseBurst()
		n, err := c.conn.Read(c.rb.b[len(c.rb.b):cap(c.rb.b)])
		c.beginBurst()
		if n > 0 {
			c.lastRead = time.Now() // a packet in progress is activity too
		}
		c.rb.b = c.rb.b[:len(c.rb.b)+n]
		if err != nil && n == 0 && !c.earlyTimeout(err) {
			return err
		}
	}
}

// frameError is the error that ends the connection when a packet cannot
// be framed. A first packet over MaxConnectPacketSize is counted, and a v5
// CONNECT gets CONNACK 0x95 when enough of it arrived to tell its version.
func (c *client) frameError(err error, buf []byte) error {
	code := packets.Code(err)
	if errors.Is(err, packets.ErrPacketTooLarge) {
		code = packets.PacketTooLarge
		if c.st == nil {
			c.srv.stats.ConnectTooLarge.Add(1)
			if connectVersion(buf) == packets.V5 {
				c.refuse(packets.V5, packets.PacketTooLarge)
			}
		}
	}
	return &errProtocol{code: code, err: fmt.Errorf("read packet: %w", err)}
}

// connectVersion is the protocol level of the CONNECT that buf starts
// with, or 0 when buf holds no CONNECT or too little of it.
func connectVersion(buf []byte) packets.Version {
	if len(buf) < 2 || packets.Type(buf[0]>>4) != packets.CONNECT {
		return 0
	}
	i := 1 // skip the remaining length (1 to 4 bytes)
	for i < len(buf) && i < 4 && buf[i]&0x80 != 0 {
		i++
	}
	i++
	const name = "\x00\x04MQTT" // protocol name, then the level byte
	if len(buf) <= i+len(name) || string(buf[i:i+len(name)]) != name {
		return 0
	}
	return packets.Version(buf[i+len(name)])
}

// authenticated ends the connection's unauthenticated phase: CONNECT
// attached a session. The connect deadline no longer applies.
func (c *client) authenticated() {
	c.srv.stats.Unauthenticated.Add(-1)
	c.deadline = time.Time{}
}

// setReadDeadline sets the deadline of the next read: the keepalive
// expiry, and for a pollable connection waiting between packets
// (parkable) the moment it has been idle long enough to park.
func (c *client) setReadDeadline(parkable bool) {
	switch {
	case c.life.kicked.Load():
		// kick set a short deadline for the goodbye; keep it.
	case c.st == nil:
		// Fixed at accept: a CONNECT trickling in does not move it.
		c.conn.SetReadDeadline(c.deadline)
	case c.life.pollable:
		var want time.Time
		if parkable {
			want = c.idleSince().Add(parkAfter)
		}
		if ka := c.lastRead.Add(c.keepAlive); c.keepAlive > 0 && (want.IsZero() || ka.Before(want)) {
			want = ka
		}
		// An earlier deadline still ahead is kept: earlyTimeout sorts it out.
		if now := time.Now(); c.deadline.After(now) && !c.deadline.After(want) {
			return
		}
		c.deadline = want
		c.conn.SetReadDeadline(want)
	case c.keepAlive > 0:
		c.conn.SetReadDeadline(c.lastRead.Add(c.keepAlive))
	default:
		c.conn.SetReadDeadline(time.Time{})
	}
}

// finish tears the connection down after the read loop ended with err.
func (c *client) finish(err error) {
	s := c.srv
	var pe *errProtocol
	switch {
	case errors.Is(err, errClientClosed), errors.Is(err, errRefused):
	case errors.As(err, &pe):
		s.protocolError(c, err)
		if c.st == nil {
			c.closeNow()
		} else {
			c.kick(pe.code, pe.err.Error())
		}
	case isTimeout(err) && c.st != nil && !c.life.kicked.Load():
		// [MQTT-3.1.2-24] no packet within 1.5 × keepalive.
		s.log.Info("Keepalive timeout; closing connection", "client", c.id, "remote", c.remote)
		c.kick(packets.KeepAliveTimeout, "keepalive timeout")
	case isTimeout(err) && c.st == nil && !c.life.kicked.Load():
		s.stats.ConnectTimeouts.Add(1)
		s.log.Debug("No CONNECT within the connect timeout; closing connection", "remote", c.remote)
	default:
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isTimeout(err) {
			s.log.Debug("Connection ended", "client", c.id, "remote", c.remote, "err", err)
		}
	}
	c.closeNow() // no-op when a kick above already closes it
	if c.kaTimer != nil {
		c.kaTimer.Stop()
	}
	if c.st != nil {
		s.detach(c)
		s.releaseUser(c)
		s.stats.ClientsConnected.Add(-1)
	} else {
		s.stats.Unauthenticated.Add(-1)
	}
	s.removeClient(c)
	close(c.done)
	s.wg.Done()
}
