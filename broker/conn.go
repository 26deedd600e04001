package broker

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetmq/fleetmq/broker/packets"
)

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
