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
// flusher goroutine drains, so an idle client costs no goroutine (parked
// in the poller) and no buffers. life documents its states.
type client struct {
	srv    *Server
	conn   net.Conn
	remote string
	done   chan struct{} // closed when serve has finished tearing down
	life   connState

	// Fields below are owned by the goroutine holding life.running (set
	// during CONNECT, read-only afterwards for other goroutines once st is
	// attached).
	one       [1]byte
	rb        *buffer
	version   packets.Version
	id        string
	st        *clientState
	keepAlive time.Duration // read deadline after CONNECT: 1.5 × keepalive, 0 none
	will      *packets.Will
	aliasesIn map[uint16]string
	// scratch holds the reused PUBLISH decode/route state while a burst is
	// being handled; nil while idle, so an idle client does not carry it.
	scratch *burstScratch
	// lastRead is when the last burst ended; the keepalive deadline counts
	// from it.
	lastRead time.Time
	// usage is what the client's user uses of the broker, counted at
	// attach (nil: no username); rateDebt is by how many its PUBLISHes
	// refused for the user's rate outnumber those accepted (userlimits.go).
	usage    *userUsage
	rateDebt int

	// Poller state (Linux, plain TCP): fd is the socket; kaTimer wakes a
	// parked connection when its keepalive runs out; deadline is the read
	// deadline last set on a pollable connection (before CONNECT, on any
	// connection: the connect deadline, fixed at accept); wokeAt is when
	// the current goroutine took the connection.
	fd       int32
	kaTimer  *time.Timer
	deadline time.Time
	wokeAt   time.Time

	// Limits the client announced in CONNECT (v5); read by deliverers after
	// attach, never changed afterwards.
	maxPacketOut uint32 // 0: no limit beyond the protocol's
	receiveMax   uint16
	aliasMaxOut  uint16
	problemInfo  bool // v5 Request Problem Information
	// aliasBytes is the length of the topics in aliasesOut (guarded by
	// outMu; here it fits in padding).
	aliasBytes uint16
	// held counts replies waiting for a store commit (afterDurable).
	held atomic.Int32

	// outMu guards out, aliasesOut, drained and life's output fields
	// (phase, flushing, inBurst).
	outMu      sync.Mutex
	out        *buffer
	aliasesOut map[string]uint16
	// drained exists while the reader is throttled; the flusher closes it
	// once the output is down to half of maxPendingBytes (or closed).
	drained chan struct{}
}

func newClient(s *Server, conn net.Conn) *client {
	now := time.Now()
	c := &client{
		srv:      s,
		conn:     conn,
		remote:   conn.RemoteAddr().String(),
		done:     make(chan struct{}),
		lastRead: now,
		deadline: now.Add(time.Duration(s.lim.ConnectTimeout) * time.Second),
	}
	if s.poller != nil {
		c.fd, c.life.pollable = fdOf(conn)
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
