// Package broker is fleetmq's MQTT 3.1, 3.1.1 and 5.0 broker. It serves
// any net.Listener (TCP, TLS, WebSocket adapters live in listeners/), keeps
// sessions in memory, and takes its users and permissions from an
// Authorizer that can be swapped live.
//
// Lock order, outermost first: Server.mu → clientState.mu → client.outMu.
// The topic index and retained store have their own locks and are never
// held while taking one of the above.
package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fleetmq/fleetmq/broker/cluster"
	"github.com/fleetmq/fleetmq/broker/outbox"
	"github.com/fleetmq/fleetmq/broker/packets"
	"github.com/fleetmq/fleetmq/broker/store"
	"github.com/fleetmq/fleetmq/broker/topic"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("broker: server closed")

// Server is an MQTT broker.
type Server struct {
	opts    Options
	lim     Limits
	log     *slog.Logger
	started time.Time

	auth  atomic.Pointer[authBox]
	index *topic.Index[*clientState]
	// cluster is this broker's node in its cluster; nil when it runs alone
	// (Options.Cluster).
	cluster     *cluster.Node
	clusterOnce sync.Once
	retained    *topic.Retained[*outbox.Message]
	stats       Stats

	store     store.Store // nil: in memory only
	storeOnce sync.Once
	// restoredWills are sessions restored with a will; their delay timers
	// start with the first Serve or ServeConn, once the auth rules that
	// authorize publishing them are loaded (will.go).
	restoredWills []*clientState
	willsOnce     sync.Once
	retainMu      sync.Mutex // orders retained writes to the store (route.go)
	// retainedLedger accounts retained messages for the limits (quota.go);
	// retainMu guards it.
	retainedLedger retainedLedger
	// guard backs off sources and usernames that keep failing to log in
	// (authguard.go).
	guard authGuard

	// mu guards sessions, clients, listeners, closing, users and each
	// user's conns. It is taken on connect, disconnect and reload, never
	// on the publish path.
	mu        sync.Mutex
	sessions  map[string]*clientState
	clients   map[*client]struct{}
	listeners map[net.Listener]struct{}
	closing   bool
	users     map[string]*userUsage // per-user limits (userlimits.go)

	poller     *poller // nil: a reader goroutine per connection
	pollerOnce sync.Once

	wg      sync.WaitGroup // one per live client and Serve loop
	sysStop chan struct{}
	sysOnce sync.Once
}

type authBox struct{ a Authorizer }

// New returns a Server configured by opts.
func New(opts Options) (*Server, error) {
	if err := opts.Limits.Validate(); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	if err := opts.SessionTakeover.Validate(); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	s := &Server{
		opts:      opts,
		lim:       opts.Limits.withDefaults(),
		log:       opts.Logger,
		started:   time.Now(),
		retained:  topic.NewRetained[*outbox.Message](),
		sessions:  make(map[string]*clientState),
		clients:   make(map[*client]struct{}),
		listeners: make(map[net.Listener]struct{}),
		sysStop:   make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.opts.Version == "" {
		s.opts.Version = "dev"
	}
	if !opts.DisablePoller {
		s.poller = newPoller()
	}
	s.index = topic.NewIndex(func(st *clientState) bool { return st.connected.Load() }, (*clientState).mayRead)
	a := opts.Auth
	if a == nil {
		if opts.AllowAnonymous {
			a = openAuthorizer{}
		} else {
			a = closedAuthorizer{}
		}
	}
	s.auth.Store(&authBox{a})
	if opts.Cluster != nil {
		if err := s.startCluster(*opts.Cluster); err != nil {
			return nil, fmt.Errorf("broker: %w", err)
		}
	}
	if opts.Store != nil {
		// Keys are a client id plus a topic or filter; bbolt bounds keys.
		if n := s.lim.MaxClientIDLength + s.lim.MaxTopicLength + 16; n > store.MaxKeySize {
			return nil, fmt.Errorf("broker: maxClientIDLength + maxTopicLength must stay below %d bytes with a store", store.MaxKeySize-16)
		}
		s.store = opts.Store
		if err := s.restore(); err != nil {
			return nil, fmt.Errorf("broker: %w", err)
		}
	}
	if s.opts.SysInterval >= 0 {
		iv := s.opts.SysInterval
		if iv == 0 {
			iv = 10 * time.Second
		}
		s.wg.Add(1)
		go s.sysLoop(iv)
	}
	return s, nil
}

// Limits returns the limits in force (defaults filled in).
func (s *Server) Limits() Limits { return s.lim }

// Serve accepts connections on ln until Shutdown or ctx is done. It returns
// ErrServerClosed after Shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.willsOnce.Do(s.armRestoredWills)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()

	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			delete(s.listeners, ln)
			s.mu.Unlock()
			if closing {
				return ErrServerClosed
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) {
				// Out of file descriptors or a transient error: back off
				// rather than spin, as net/http does.
				backoff = min(max(backoff*2, 5*time.Millisecond), time.Second)
				s.log.Warn("Accept failed; retrying", "err", err, "backoff", backoff)
				time.Sleep(backoff)
				s.mu.Lock()
				s.listeners[ln] = struct{}{}
				s.mu.Unlock()
				continue
			}
			return fmt.Errorf("broker: accept: %w", err)
		}
		backoff = 0
		s.ServeConn(conn)
	}
}

// ServeConn serves one already accepted connection (a listener adapter,
// e.g. WebSocket, hands its connections here). It returns at once.
func (s *Server) ServeConn(conn net.Conn) {
	s.willsOnce.Do(s.armRestoredWills)
	// Counted until CONNECT attaches a session (client.authenticated) or
	// the connection ends before that (client.finish).
	if s.stats.Unauthenticated.Add(1) > int64(s.lim.MaxUnauthenticated) {
		s.stats.Unauthenticated.Add(-1)
		s.stats.UnauthenticatedRefused.Add(1)
		s.log.Debug("Connection refused: too many connections without CONNECT", "remote", conn.RemoteAddr().String(), "max", s.lim.MaxUnauthenticated)
		conn.Close()
		return
	}
	c := newClient(s, conn)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		s.stats.Unauthenticated.Add(-1)
		conn.Close()
		return
	}
	s.clients[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go c.serve()
}

// Shutdown stops accepting, sends v5 clients DISCONNECT 0x8B (server
// shutting down), closes every connection after flushing what it owes, and
// waits for the client goroutines until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
	clients := make([]*client, 0, len(s.clients))
	for c := range s.clients {
		clients = append(clients, c)
	}
	s.mu.Unlock()
	s.sysOnce.Do(func() { close(s.sysStop) })

	for _, c := range clients {
		c.kick(packets.ServerShuttingDown, "")
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		if s.poller != nil {
			// Once: a second Shutdown writing to the closed eventfd could
			// hit a descriptor that number now belongs to (another
			// poller's, a client's socket).
			s.pollerOnce.Do(s.poller.close)
		}
		close(done)
	}()
	select {
	case <-done:
		s.leaveCluster()
		return s.closeStore()
	case <-ctx.Done():
		defer s.leaveCluster()
		for _, c := range clients {
			c.conn.Close()
		}
		// Give the connections a moment to let go of their sessions, so
		// their last state is stored, then flush whatever is queued.
		select {
		case <-done:
		case <-time.After(time.Second):
		}
		if err := s.closeStore(); err != nil {
			return errors.Join(ctx.Err(), err)
		}
		return ctx.Err()
	}
}

// closeStore flushes and closes the store, once.
func (s *Server) closeStore() (err error) {
	if s.store == nil {
		return nil
	}
	s.storeOnce.Do(func() {
		if err = s.store.Close(); err != nil {
			err = fmt.Errorf("broker: close store: %w", err)
		}
	})
	return err
}

// Stats returns a snapshot of the broker's counters.
func (s *Server) Stats() StatsSnapshot { return s.stats.snapshot(s) }

// removeClient forgets a finished connection.
func (s *Server) removeClient(c *client) {
	s.mu.Lock()
	delete(s.clients, c)
	s.mu.Unlock()
}

func (s *Server) protocolError(c *client, err error) {
	s.stats.ProtocolErrors.Add(1)
	if h := s.opts.Hooks.ProtocolError; h != nil {
		h(err.Error())
	}
	s.log.Info("Protocol error; closing connection", "client", c.id, "remote", c.remote, "err", err)
}
