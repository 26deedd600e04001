package broker

import "sync/atomic"

// connState is where a connection is in its life, and who may change what.
//
// Reading. At most one goroutine handles a connection at a time; it holds
// running. On Linux a plain-TCP connection idle for parkAfter gives its
// goroutine up (parked in the poller) and a wake-up takes it again:
//
//	running ──idle parkAfter, poller armed──► parked (running false)
//	parked ──readable │ keepalive timer │ wake──► running (take)
//	running ──read error, EOF, DISCONNECT, protocol error──► finished
//
// Ending. Any goroutine may end a connection:
//
//	open ──kick (goodbye queued, short read deadline)──► closing
//	open ──closeNow──► closing ──output written (flush)──► closed
//	open │ closing ──write failed──► closed
//
// Whoever ends a connection from outside its reader sets ending and wakes
// it: a closed socket leaves the epoll set silently, so a parked
// connection would otherwise never tear down. The parker re-checks ending
// after arming the poller (both sides use sequentially consistent atomics).
//
// Writing. Output goes to client.out. One writer drains it at a time
// (flushing): a flusher goroutine, or the reader itself at the end of a
// burst (inBurst defers flushing to then, so a burst is one write).
//
// Backpressure. Output past maxPendingBytes sets backlog; the reader,
// between two packets, then stops taking packets until it has drained:
//
//	running ──backlog (throttle: inBurst off, flusher started)──► throttled
//	throttled ──flusher drained output to half │ output closed──► running (inBurst on)
//
// A throttled reader still holds running and its read buffer, but no lock;
// it waits on client.drained, made only then.
type connState struct {
	// running is held by the goroutine handling the connection.
	running atomic.Bool
	// ending: the connection is being closed from outside its reader.
	ending atomic.Bool
	// kicked: the broker asked the connection to end (kick); its goodbye
	// has a short read deadline that must not be moved again.
	kicked atomic.Bool
	// normalClose: the client sent DISCONNECT without "with will", so its
	// will is discarded [MQTT-3.14.4-3].
	normalClose atomic.Bool
	// backlog: the output went past maxPendingBytes; the reader throttles
	// before its next packet. Set under client.outMu, read without it.
	backlog atomic.Bool

	// Owned by the goroutine holding running: pollable says the connection
	// may be parked (Linux, plain TCP, poller on), registered that its fd
	// is in the poller's set.
	pollable   bool
	registered bool

	// Guarded by client.outMu.
	phase    outPhase
	flushing bool // a writer owns the output
	inBurst  bool // the reader flushes at the end of its burst
}

// outPhase is how far a connection's output is in closing.
type outPhase uint8

const (
	outOpen    outPhase = iota // packets may be appended
	outClosing                 // nothing new is appended; what is pending is written, then the socket closes
	outClosed                  // the socket is closed; nothing more is written
)

// take makes the caller the connection's goroutine, unless one runs.
func (l *connState) take() bool { return l.running.CompareAndSwap(false, true) }

// release gives the connection up before it is parked.
func (l *connState) release() { l.running.Store(false) }
