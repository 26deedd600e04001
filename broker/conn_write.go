package broker

import (
	"errors"
	"net"
	"time"

	"github.com/fleetmq/fleetmq/broker/packets"
)

// writeTimeout bounds one write to a client; a peer that takes longer is
// stalled and its connection is closed.
const writeTimeout = 30 * time.Second

// beginBurst defers this connection's own flushing to the end of the
// burst: replies and deliveries produced meanwhile go out in one write
// from this goroutine instead of starting a flusher goroutine each burst.
func (c *client) beginBurst() {
	c.outMu.Lock()
	c.life.inBurst = true
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
	c.life.inBurst = false
	if c.life.flushing || c.out == nil || len(c.out.b) == 0 || c.life.phase != outOpen {
		c.startFlushLocked()
		c.outMu.Unlock()
		return
	}
	buf := c.out
	c.out = nil
	c.life.flushing = true
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
	if (c.out != nil && len(c.out.b) > 0) || c.life.phase != outOpen {
		// The flusher writes the rest, or closes a connection kicked
		// meanwhile once its goodbye is out.
		go c.flush()
	} else {
		c.life.flushing = false
	}
	c.outMu.Unlock()
}

// pauseBurst lets a flusher run while the reader blocks mid-burst (the
// rest of a large packet is slow to come).
func (c *client) pauseBurst() {
	c.outMu.Lock()
	c.life.inBurst = false
	c.startFlushLocked()
	c.outMu.Unlock()
}

// writePacket appends one packet to the output and wakes the flusher.
// Control packets are never dropped for a slow consumer: they answer the
// client's own requests, which throttle bounds.
func (c *client) writePacket(enc func([]byte) []byte) {
	c.outMu.Lock()
	if c.life.phase == outOpen {
		if c.out == nil {
			c.out = getBuffer()
		}
		c.out.b = enc(c.out.b)
		c.appendedLocked()
	}
	c.outMu.Unlock()
}

// appendedLocked follows every append to the output: it starts the
// flusher, and past maxPendingBytes tells the reader to stop taking
// packets (throttle). Caller holds c.outMu.
func (c *client) appendedLocked() {
	if len(c.out.b) > c.srv.lim.MaxPendingBytes && !c.life.backlog.Load() {
		c.life.backlog.Store(true)
	}
	c.startFlushLocked()
}

// throttle is called by the reader between packets when the output went
// past maxPendingBytes (backlog): it takes no more packets until the
// flusher has drained the output to half of that, or the connection
// closed. So a client that sends without reading cannot make the broker
// buffer replies without bound; if it never reads, the write timeout
// closes it. The reader holds no lock while it waits, and the channel it
// waits on exists only then.
func (c *client) throttle() {
	c.outMu.Lock()
	counted := false
	for c.life.phase != outClosed && c.pendingLocked() > c.srv.lim.MaxPendingBytes/2 {
		if !counted {
			c.srv.stats.ReadsThrottled.Add(1)
			counted = true
		}
		c.life.inBurst = false // let the flusher write what the burst produced
		c.startFlushLocked()
		if c.drained == nil {
			c.drained = make(chan struct{})
		}
		ch := c.drained
		c.outMu.Unlock()
		<-ch
		c.outMu.Lock()
		c.life.inBurst = true
	}
	c.life.backlog.Store(false)
	c.outMu.Unlock()
}

// signalDrainedLocked wakes a throttled reader once the output is down to
// half of maxPendingBytes or will never be written. Caller holds c.outMu.
func (c *client) signalDrainedLocked() {
	if c.drained != nil && (c.life.phase == outClosed || c.pendingLocked() <= c.srv.lim.MaxPendingBytes/2) {
		close(c.drained)
		c.drained = nil
	}
}

// startFlushLocked starts the flusher when there is output and none runs.
func (c *client) startFlushLocked() {
	if !c.life.flushing && !c.life.inBurst && c.out != nil && len(c.out.b) > 0 {
		c.life.flushing = true
		go c.flush()
	}
}

// flush writes the output buffer until it is empty, then exits: one write
// per burst, and no goroutine at all while the client is idle.
func (c *client) flush() {
	for {
		c.outMu.Lock()
		if c.life.phase == outClosed || c.out == nil || len(c.out.b) == 0 {
			c.life.flushing = false
			if c.out != nil {
				putBuffer(c.out)
				c.out = nil
			}
			if c.life.phase == outClosing {
				c.life.phase = outClosed
				c.signalDrainedLocked()
				c.outMu.Unlock()
				c.conn.Close()
				c.endAndWake()
				return
			}
			c.signalDrainedLocked()
			c.outMu.Unlock()
			return
		}
		c.signalDrainedLocked()
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
	c.life.phase = outClosed
	c.life.flushing = false
	if c.out != nil {
		putBuffer(c.out)
		c.out = nil
	}
	c.signalDrainedLocked()
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
	c.life.kicked.Store(true)
	c.outMu.Lock()
	defer c.outMu.Unlock()
	if c.life.phase != outOpen {
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

// closeNow closes the connection once queued output is written (or at once
// when nothing is queued).
func (c *client) closeNow() {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	if c.life.phase != outOpen {
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
	c.life.phase = outClosing
	c.conn.SetWriteDeadline(time.Now().Add(goodbyeTimeout))
	switch {
	case c.life.flushing:
		// The running flusher closes it once the output is out.
	case c.out != nil && len(c.out.b) > 0:
		c.startFlushLocked()
	default:
		c.life.phase = outClosed
		c.signalDrainedLocked()
		c.conn.Close()
	}
}

// outgoing is one PUBLISH to encode for one client.
type outgoing struct {
	topic, payload []byte
	props          *packets.Properties
	expiresAt      int64
	qos            byte
	retain, dup    bool
	id             uint16
	subIDs         []uint32
}

// sendPublish writes a QoS 0 PUBLISH unless the client is too far behind,
// in which case it is dropped and counted (QoS 0 goes first). Without
// checkBacklog it is written however far behind the client is (a queued
// QoS 0 delivery that already waited its turn).
func (c *client) sendPublish(o *outgoing, now int64, checkBacklog bool) bool {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	if c.life.phase != outOpen {
		return false
	}
	if checkBacklog && c.pendingLocked() > c.srv.lim.MaxPendingBytes {
		c.srv.stats.MessagesDropped.Add(1)
		return false
	}
	if !c.encodePublishLocked(o, now) {
		c.srv.stats.MessagesDropped.Add(1)
		return false
	}
	return true
}

// aliasBytesOut bounds the topics a connection's outbound aliases keep a
// copy of: a client announcing Topic Alias Maximum 65535 would otherwise
// make the broker keep every topic it delivers to it.
const aliasBytesOut = 4 << 10

// encodePublishLocked appends the PUBLISH for o to the output: remaining
// expiry, subscription identifiers and an outbound topic alias are set per
// delivery; it reports false when the packet exceeds the client's Maximum
// Packet Size or the message expired. Caller holds c.outMu.
func (c *client) encodePublishLocked(o *outgoing, now int64) bool {
	if c.life.phase != outOpen {
		return false
	}
	p := packets.Publish{QoS: o.qos, Retain: o.retain, Dup: o.dup, PacketID: o.id, Topic: o.topic, Payload: o.payload}
	if c.version == packets.V5 {
		p.Props = *o.props
		p.Props.TopicAlias, p.Props.HasTopicAlias = 0, false
		p.Props.MessageExpiry, p.Props.HasMessageExpiry = 0, false
		if o.expiresAt != 0 {
			left := (o.expiresAt - now + int64(time.Second) - 1) / int64(time.Second)
			if left <= 0 {
				return false
			}
			p.Props.MessageExpiry, p.Props.HasMessageExpiry = uint32(left), true
		}
		p.Props.SubscriptionIDs = o.subIDs
	}
	var newAlias bool
	if c.aliasMaxOut > 0 {
		if a, ok := c.aliasesOut[string(o.topic)]; ok {
			p.Props.TopicAlias, p.Props.HasTopicAlias = a, true
			p.Topic = nil
		} else if len(c.aliasesOut) < int(min(c.aliasMaxOut, c.srv.lim.TopicAliasMaximumOut)) &&
			int(c.aliasBytes)+len(o.topic) <= aliasBytesOut {
			p.Props.TopicAlias, p.Props.HasTopicAlias = uint16(len(c.aliasesOut)+1), true
			newAlias = true
		}
	}
	size := p.Size(c.version)
	if c.maxPacketOut > 0 && uint32(size) > c.maxPacketOut {
		return false
	}
	if newAlias {
		if c.aliasesOut == nil {
			c.aliasesOut = make(map[string]uint16)
		}
		c.aliasesOut[string(o.topic)] = p.Props.TopicAlias
		c.aliasBytes += uint16(len(o.topic))
	}
	if c.out == nil {
		c.out = getBuffer()
	}
	c.out.b = p.Append(c.out.b, c.version)
	c.srv.stats.MessagesSent[o.qos].Add(1)
	c.appendedLocked()
	return true
}
