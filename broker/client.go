package broker

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetmq/fleetmq/broker/packets"
)

// writeTimeout bounds one write to a client; a peer that takes longer is
// stalled and its connection is closed.
const writeTimeout = 30 * time.Second

// client is one network connection. Its goroutine reads and handles
// packets in order; writes go to an output buffer that a short-lived
// flusher goroutine drains, so an idle client costs one parked goroutine and
// no buffers.
type client struct {
	srv    *Server
	conn   net.Conn
	remote string
	done   chan struct{} // closed when serve has finished tearing down

	// Fields below are owned by the serve goroutine (set during CONNECT,
	// read-only afterwards for other goroutines once st is attached).
	one       [1]byte
	rb        *buffer
	version   packets.Version
	id        string
	st        *clientState
	keepAlive time.Duration // read deadline after CONNECT: 1.5 × keepalive, 0 none
	will      *packets.Will
	// willDelay and the will's lifetime follow the session (v5).
	aliasesIn map[uint16]string
	// scratch holds the reused PUBLISH decode/route state while a burst is
	// being handled; nil while idle, so an idle client does not carry it.
	scratch *burstScratch
	// lastRead is when the last burst ended; the keepalive deadline counts
	// from it.
	lastRead time.Time

	// Poller state (Linux, plain TCP): fd is the socket, polled reports it
	// is registered, busy is held by whichever goroutine is handling the
	// connection (at most one), kaTimer wakes a parked connection when its
	// keepalive runs out.
	fd      int32
	canPoll bool
	polled  bool
	busy    atomic.Bool
	kaTimer *time.Timer
	// deadline is the read deadline last set on a pollable connection;
	// wokeAt is when the current goroutine took the connection.
	deadline time.Time
	wokeAt   time.Time
	// ending is set before the connection is closed from outside its
	// reader (kick, a failed write): a parked connection must then be woken
	// to tear down, since a closed socket leaves the epoll set silently.
	ending atomic.Bool

	// Limits the client announced in CONNECT (v5); read by deliverers after
	// attach, never changed afterwards.
	maxPacketOut uint32 // 0: no limit beyond the protocol's
	receiveMax   uint16
	aliasMaxOut  uint16
	problemInfo  bool // v5 Request Problem Information
	normalClose  atomic.Bool
	closeReason  atomic.Uint32 // v5 reason code a kick asked for; 0 none
	// held counts replies waiting for a store commit (afterDurable).
	held atomic.Int32

	// outMu guards out, spare, flushing, closing, closed and aliasesOut.
	outMu      sync.Mutex
	out        *buffer
	flushing   bool
	inBurst    bool // the connection's own goroutine flushes at burst end
	closing    bool // close the connection once out is written
	closed     bool
	aliasesOut map[string]uint16
}

func newClient(s *Server, conn net.Conn) *client {
	c := &client{
		srv:      s,
		conn:     conn,
		remote:   conn.RemoteAddr().String(),
		done:     make(chan struct{}),
		lastRead: time.Now(),
	}
	if s.poller != nil {
		c.fd, c.canPoll = fdOf(conn)
	}
	return c
}

// burstScratch is the per-burst state of the PUBLISH hot path, pooled so
// decoding and routing allocate nothing.
type burstScratch struct {
	pub packets.Publish
	rt  routed
}

var scratchPool = sync.Pool{New: func() any { return new(burstScratch) }}

// errProtocol carries the v5 reason code to send before closing.
type errProtocol struct {
	code packets.ReasonCode
	err  error
}

func (e *errProtocol) Error() string { return e.err.Error() }
func (e *errProtocol) Unwrap() error { return e.err }

func protocolErr(code packets.ReasonCode, format string, args ...any) error {
	return &errProtocol{code: code, err: fmt.Errorf(format, args...)}
}

// errClientClosed ends the read loop after a normal DISCONNECT.
var errClientClosed = errors.New("client disconnected")

// errRefused ends the read loop after a CONNACK that refused the client
// (credentials, limits, shutdown): logged where decided, not a protocol error.
var errRefused = errors.New("connection refused")

func (c *client) serve() {
	c.busy.Store(true)
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
			if c.polled {
				c.srv.poller.forget(c)
			}
			c.finish(err)
			return
		}
		// Idle for parkAfter: give the goroutine up until bytes arrive.
		if !c.polled && !c.srv.poller.register(c) {
			c.canPoll = false
			continue
		}
		c.armKeepalive()
		c.busy.Store(false)
		if c.srv.poller.arm(c) {
			if c.ending.Load() {
				c.wake() // closed while we were parking
			}
			return
		}
		c.canPoll = false
		if !c.busy.CompareAndSwap(false, true) {
			return // a wake-up took the connection over
		}
	}
}

// endAndWake marks the connection as ending and wakes it if parked.
func (c *client) endAndWake() {
	c.ending.Store(true)
	c.wake()
}

// wake starts a goroutine for a parked connection: it turned readable,
// its keepalive ran out, or the broker is closing it.
func (c *client) wake() {
	if c.busy.CompareAndSwap(false, true) {
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
	if !c.canPoll || c.st == nil || c.closeReason.Load() != 0 || !isTimeout(err) {
		return false
	}
	c.deadline = time.Time{}
	return c.keepAlive <= 0 || time.Now().Before(c.lastRead.Add(c.keepAlive))
}

// beginBurst defers this connection's own flushing to the end of the
// burst: replies and deliveries produced meanwhile go out in one write
// from this goroutine instead of starting a flusher goroutine each burst.
func (c *client) beginBurst() {
	c.outMu.Lock()
	c.inBurst = true
	c.outMu.Unlock()
}

// inlineWriteTimeout bounds the write endBurst makes itself; what the
// socket does not take in that time goes to a flusher goroutine, so the
// reader never blocks on a peer that does not read.
const inlineWriteTimeout = 2 * time.Millisecond

// endBurst writes what the burst produced, inline when the socket takes it
// at once.
func (c *client) endBurst() {
	c.outMu.Lock()
	c.inBurst = false
	if c.flushing || c.out == nil || len(c.out.b) == 0 || c.closed || c.closing {
		c.startFlushLocked()
		c.outMu.Unlock()
		return
	}
	buf := c.out
	c.out = nil
	c.flushing = true
	c.outMu.Unlock()

	c.conn.SetWriteDeadline(time.Now().Add(inlineWriteTimeout))
	n, err := c.conn.Write(buf.b)
	c.srv.stats.BytesSent.Add(int64(n))
	if err != nil && !isTimeout(err) {
		putBuffer(buf)
		c.writeFailed(err) // the reader sees the close on its next read
		return
	}
	c.outMu.Lock()
	if n < len(buf.b) {
		// Put the rest back in front of whatever arrived meanwhile.
		rest := copy(buf.b, buf.b[n:])
		buf.b = buf.b[:rest]
		if c.out != nil {
			buf.b = append(buf.b, c.out.b...)
			putBuffer(c.out)
		}
		c.out = buf
	} else {
		putBuffer(buf)
	}
	if (c.out != nil && len(c.out.b) > 0) || c.closing {
		// The flusher writes the rest, or closes a connection kicked
		// meanwhile once its goodbye is out.
		go c.flush()
	} else {
		c.flushing = false
	}
	c.outMu.Unlock()
}

// pauseBurst lets a flusher run while the reader blocks mid-burst (the
// rest of a large packet is slow to come).
func (c *client) pauseBurst() {
	c.outMu.Lock()
	c.inBurst = false
	c.startFlushLocked()
	c.outMu.Unlock()
}

// readBurst reads and handles packets with a pooled buffer until no
// partial packet is pending, then gives the buffer back.
func (c *client) readBurst() error {
	maxSize := int(c.srv.lim.MaxPacketSize)
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
			first, body, n, err := packets.Frame(c.rb.b[pos:], maxSize)
			if err != nil {
				code := packets.Code(err)
				if errors.Is(err, packets.ErrPacketTooLarge) {
					code = packets.PacketTooLarge
				}
				return &errProtocol{code: code, err: fmt.Errorf("read packet: %w", err)}
			}
			if n == 0 {
				break
			}
			c.srv.stats.BytesReceived.Add(int64(n))
			if err := c.handle(first, body); err != nil {
				return err
			}
			pos += n
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

// setReadDeadline sets the deadline of the next read: the keepalive
// expiry, and for a pollable connection waiting between packets
// (parkable) the moment it has been idle long enough to park.
func (c *client) setReadDeadline(parkable bool) {
	switch {
	case c.closeReason.Load() != 0:
		// kick set a short deadline for the goodbye; keep it.
	case c.st == nil:
		c.conn.SetReadDeadline(time.Now().Add(connectTimeout))
	case c.canPoll:
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

// handle dispatches one packet. body aliases the read buffer.
func (c *client) handle(first byte, body []byte) error {
	t, flags := packets.Type(first>>4), first&0x0F
	if c.st == nil {
		if t != packets.CONNECT {
			// [MQTT-3.1.0-1] the first packet must be CONNECT.
			return protocolErr(packets.ProtocolError, "first packet is %s, not CONNECT", t)
		}
		return c.handleConnect(flags, body)
	}
	switch t {
	case packets.PUBLISH:
		return c.handlePublish(flags, body)
	case packets.PUBACK, packets.PUBREC, packets.PUBREL, packets.PUBCOMP:
		return c.handleAck(t, flags, body)
	case packets.SUBSCRIBE:
		return c.handleSubscribe(flags, body)
	case packets.UNSUBSCRIBE:
		return c.handleUnsubscribe(flags, body)
	case packets.PINGREQ:
		if err := packets.DecodeEmpty(t, flags, body); err != nil {
			return &errProtocol{code: packets.Code(err), err: err}
		}
		c.writePacket(func(b []byte) []byte { return packets.AppendEmpty(b, packets.PINGRESP) })
		return nil
	case packets.DISCONNECT:
		return c.handleDisconnect(flags, body)
	case packets.AUTH:
		if c.version != packets.V5 {
			return protocolErr(packets.ProtocolError, "AUTH is a v5 packet")
		}
		// No enhanced authentication method is configured, so no AUTH
		// exchange was started; any AUTH is a protocol error [MQTT-4.12.0-1].
		return protocolErr(packets.ProtocolError, "AUTH received but no authentication method is in use")
	case packets.CONNECT:
		// [MQTT-3.1.0-2] a second CONNECT is a protocol violation.
		return protocolErr(packets.ProtocolError, "second CONNECT")
	default:
		return protocolErr(packets.ProtocolError, "%s is not a packet a client sends", t)
	}
}

func (c *client) handleDisconnect(flags byte, body []byte) error {
	if c.version != packets.V5 {
		if err := packets.DecodeEmpty(packets.DISCONNECT, flags, body); err != nil {
			return &errProtocol{code: packets.Code(err), err: err}
		}
		c.normalClose.Store(true)
		return errClientClosed
	}
	var d packets.Disconnect
	if err := d.Decode(c.version, flags, body); err != nil {
		return &errProtocol{code: packets.Code(err), err: err}
	}
	if d.Props.HasSessionExpiry {
		st := c.st
		st.mu.Lock()
		// [MQTT-3.14.2-2] a session that expired at disconnect cannot be revived.
		zeroAtConnect := st.expiryAtConnect == 0
		if zeroAtConnect && d.Props.SessionExpiry != 0 {
			st.mu.Unlock()
			return protocolErr(packets.ProtocolError, "DISCONNECT sets a session expiry after CONNECT set 0")
		}
		st.expiry = min(d.Props.SessionExpiry, c.srv.lim.MaxSessionExpiry)
		st.mu.Unlock()
	}
	// 0x04 Disconnect with Will Message: the will is published as if the
	// connection had dropped [MQTT-3.14.4-3 does not apply].
	if d.ReasonCode != packets.DisconnectWithWill {
		c.normalClose.Store(true)
	}
	return errClientClosed
}

// writePacket appends one packet to the output and wakes the flusher.
// Control packets are never dropped for a slow consumer: they are small
// and bounded by the client's own requests.
func (c *client) writePacket(enc func([]byte) []byte) {
	c.outMu.Lock()
	if !c.closed && !c.closing {
		if c.out == nil {
			c.out = getBuffer()
		}
		c.out.b = enc(c.out.b)
		c.startFlushLocked()
	}
	c.outMu.Unlock()
}

// startFlushLocked starts the flusher when there is output and none runs.
func (c *client) startFlushLocked() {
	if !c.flushing && !c.inBurst && c.out != nil && len(c.out.b) > 0 {
		c.flushing = true
		go c.flush()
	}
}

// flush writes the output buffer until it is empty, then exits: one write
// per burst, and no goroutine at all while the client is idle.
func (c *client) flush() {
	for {
		c.outMu.Lock()
		if c.closed || c.out == nil || len(c.out.b) == 0 {
			c.flushing = false
			if c.out != nil {
				putBuffer(c.out)
				c.out = nil
			}
			if c.closing && !c.closed {
				c.closed = true
				c.outMu.Unlock()
				c.conn.Close()
				c.endAndWake()
				return
			}
			c.outMu.Unlock()
			return
		}
		buf := c.out
		c.out = nil
		c.outMu.Unlock()

		c.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		n, err := c.conn.Write(buf.b)
		c.srv.stats.BytesSent.Add(int64(n))
		putBuffer(buf)
		if err != nil {
			c.writeFailed(err)
			return
		}
	}
}

// writeFailed closes a connection whose write failed: what it is still
// owed is dropped, and a parked reader is woken to tear down.
func (c *client) writeFailed(err error) {
	c.outMu.Lock()
	c.closed = true
	c.flushing = false
	if c.out != nil {
		putBuffer(c.out)
		c.out = nil
	}
	c.outMu.Unlock()
	if !errors.Is(err, net.ErrClosed) {
		c.srv.log.Debug("Write failed; closing connection", "client", c.id, "err", err)
	}
	c.conn.Close()
	c.endAndWake()
}

// pendingLocked is how many encoded bytes wait for the flusher.
func (c *client) pendingLocked() int {
	if c.out == nil {
		return 0
	}
	return len(c.out.b)
}

// kick ends the connection from the broker's side: a v5 client gets a
// DISCONNECT with code (and reason, when it allows reason strings) after
// what it is already owed.
func (c *client) kick(code packets.ReasonCode, reason string) {
	c.closeReason.CompareAndSwap(0, uint32(code)|0x100)
	c.outMu.Lock()
	defer c.outMu.Unlock()
	if c.closed || c.closing {
		return
	}
	if c.version == packets.V5 && c.st != nil {
		d := packets.Disconnect{ReasonCode: code}
		if c.problemInfo {
			d.Props.ReasonString = reason
		}
		if c.out == nil {
			c.out = getBuffer()
		}
		c.out.b = d.Append(c.out.b, c.version)
	}
	// Bound how long the goodbye may take, then the read loop ends too.
	c.conn.SetReadDeadline(time.Now().Add(goodbyeTimeout))
	c.closeAfterFlushLocked()
	// A parked connection has no reader to notice the close: start one.
	c.endAndWake()
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
	case isTimeout(err) && c.st != nil && c.closeReason.Load() == 0:
		// [MQTT-3.1.2-24] no packet within 1.5 × keepalive.
		s.log.Info("Keepalive timeout; closing connection", "client", c.id, "remote", c.remote)
		c.kick(packets.KeepAliveTimeout, "keepalive timeout")
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
		s.stats.ClientsConnected.Add(-1)
	}
	s.removeClient(c)
	close(c.done)
	s.wg.Done()
}

// closeNow closes the connection once queued output is written (or at once
// when nothing is queued).
func (c *client) closeNow() {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	if c.closed || c.closing {
		return
	}
	c.closeAfterFlushLocked()
}

// goodbyeTimeout bounds how long a closing connection may take to get what
// it is still owed.
const goodbyeTimeout = 5 * time.Second

// closeAfterFlushLocked marks the connection closing: what it is owed is
// written (within goodbyeTimeout), then it closes. Caller holds c.outMu.
func (c *client) closeAfterFlushLocked() {
	c.closing = true
	c.conn.SetWriteDeadline(time.Now().Add(goodbyeTimeout))
	switch {
	case c.flushing:
		// The running flusher closes it once the output is out.
	case c.out != nil && len(c.out.b) > 0:
		c.startFlushLocked()
	default:
		c.closed = true
		c.conn.Close()
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)
}

// buffer is a pooled byte slice; the pointer keeps Put/Get allocation-free.
type buffer struct{ b []byte }

const bufferSize = 4096

var bufferPool = sync.Pool{New: func() any { return &buffer{b: make([]byte, 0, bufferSize)} }}

func getBuffer() *buffer { return bufferPool.Get().(*buffer) }

func putBuffer(b *buffer) {
	if cap(b.b) > 64*bufferSize {
		return // let an outsized buffer go rather than pin it
	}
	b.b = b.b[:0]
	bufferPool.Put(b)
}
