package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/fleetmq/fleetmq/broker/outbox"
)

// Config places one broker process in its cluster.
type Config struct {
	// Name is the cluster's name, the same on every node (the Broker's
	// name): a node of another cluster that reaches the route port is
	// refused by NATS.
	Name string
	// NodeName is this node's name, unique in the cluster (the pod name).
	NodeName string
	// Listen is host:port of this node's route listener.
	Listen string
	// Peers are host:port of the nodes' route listeners; this node's own
	// address may be among them (NATS skips a route to itself).
	Peers []string
	// Username and Password authenticate routes both ways, so that nothing
	// without them can join the cluster and read its messages.
	Username, Password string
	// MaxPayload bounds one message between nodes; 0 takes 8 MiB.
	MaxPayload int32
	Log        *slog.Logger
}

// Receiver takes the messages other nodes publish: route them to the
// local sessions (and keep retained ones) without sending them back out.
type Receiver func(m *outbox.Message)

// Node is this process's member of the cluster: an embedded NATS server
// routed to the other nodes, and an in-process connection to it.
//
// Non-retained messages go out on their topic's subject (subject.go), so
// NATS carries each only to the nodes whose sessions subscribe to a
// matching filter. Retained messages and deletions go to every node on
// one subject, so each node holds the whole retained set. The connection
// does not echo: a node never receives what it published itself, since it
// routed it locally already.
type Node struct {
	cfg  Config
	ns   *server.Server
	nc   *nats.Conn
	recv Receiver
	// id names this incarnation of the node in the messages it sends: a
	// restarted node starts its sequence at 1 again under a new id.
	id string
	// pubMu orders publishing: seq is taken and the message handed to the
	// connection under it.
	pubMu sync.Mutex
	seq   uint64 // guarded by pubMu
	// msgs receives every subscription's messages in the order the
	// connection read them; one goroutine (receive) drains it.
	msgs chan *nats.Msg
	stop chan struct{} // closed by Close: receive returns
	done chan struct{} // closed when receive returned

	// mu guards interest.
	mu       sync.Mutex
	interest map[string]*interest // by subject

	// Counters, read by Stats.
	sent, received, duplicates, dropped, malformed atomic.Int64
}

type interest struct {
	refs int
	sub  *nats.Subscription
}

// receiveBuffer is how many messages may wait between the connection and
// the receive goroutine; past it NATS reports a slow consumer and drops.
const receiveBuffer = 1 << 16

// Start starts the node's NATS server and joins the routes to Peers.
// It returns once the server accepts the in-process connection; peers
// join in the background as they come up.
func Start(cfg Config, recv Receiver) (*Node, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Name == "" || cfg.NodeName == "" {
		return nil, errors.New("cluster: name and node name are required")
	}
	if cfg.Username == "" || cfg.Password == "" {
		return nil, errors.New("cluster: route credentials are required")
	}
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("cluster: listen address %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("cluster: listen port %q: %w", portStr, err)
	}
	var routes []*url.URL
	for _, p := range cfg.Peers {
		if _, _, err := net.SplitHostPort(p); err != nil {
			return nil, fmt.Errorf("cluster: peer %q: %w", p, err)
		}
		routes = append(routes, &url.URL{Scheme: "nats-route", User: url.UserPassword(cfg.Username, cfg.Password), Host: p})
	}
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = 8 << 20
	}
	// Only this process talks to NATS as a client, in process. NATS still
	// needs a client listener (with DontListen its routes never start), so
	// it gets a random loopback port, closed to anyone without this
	// process's random password.
	clientPass := nuid.Next() + nuid.Next()
	opts := &server.Options{
		ServerName: cfg.NodeName,
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		Username:   "fleetmq-broker",
		Password:   clientPass,
		NoSigs:     true,
		MaxPayload: cfg.MaxPayload,
		Cluster: server.ClusterOpts{
			Name: cfg.Name, Host: host, Port: port,
			Username: cfg.Username, Password: cfg.Password,
			// Peers are listed in full; gossiped URLs would only repeat them.
			NoAdvertise:    true,
			ConnectRetries: -1, // keep trying a peer that is not up yet
		},
		Routes: routes,
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	ns.SetLoggerV2(natsLogger{cfg.Log}, false, false, false)
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("cluster: NATS server did not start")
	}
	n := &Node{
		cfg: cfg, ns: ns, recv: recv,
		id:       cfg.NodeName + "/" + nuid.Next(),
		msgs:     make(chan *nats.Msg, receiveBuffer),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		interest: make(map[string]*interest),
	}
	n.nc, err = nats.Connect("", nats.InProcessServer(ns), nats.UserInfo("fleetmq-broker", clientPass),
		nats.NoEcho(), nats.Name(cfg.NodeName),
		nats.MaxReconnects(-1),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrSlowConsumer) {
				n.dropped.Add(1)
			}
			cfg.Log.Warn("Cluster connection error", "err", err)
		}))
	if err != nil {
		ns.Shutdown()
		return nil, fmt.Errorf("cluster: connect in process: %w", err)
	}
	if _, err := n.nc.ChanSubscribe(retainedSubject, n.msgs); err != nil {
		n.nc.Close()
		ns.Shutdown()
		return nil, fmt.Errorf("cluster: subscribe to retained messages: %w", err)
	}
	go n.receive()
	cfg.Log.Info("Cluster node started", "cluster", cfg.Name, "node", cfg.NodeName, "routes", cfg.Listen, "peers", len(cfg.Peers))
	return n, nil
}

// Subscribe makes this node receive the messages matching an MQTT filter.
// Calls are counted: the node keeps its interest until as many
// Unsubscribe calls came for the filter.
func (n *Node) Subscribe(filter string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, subj := range filterSubjects(filter) {
		in := n.interest[subj]
		if in == nil {
			sub, err := n.nc.ChanSubscribe(subj, n.msgs)
			if err != nil {
				n.cfg.Log.Error("Cluster subscribe failed; messages from other nodes will miss this filter", "filter", filter, "err", err)
				continue
			}
			in = &interest{sub: sub}
			n.interest[subj] = in
		}
		in.refs++
	}
}

// Unsubscribe ends one Subscribe of filter.
func (n *Node) Unsubscribe(filter string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, subj := range filterSubjects(filter) {
		in := n.interest[subj]
		if in == nil {
			continue
		}
		if in.refs--; in.refs == 0 {
			_ = in.sub.Unsubscribe()
			delete(n.interest, subj)
		}
	}
}

// Publish sends a message published on this node to the others.
func (n *Node) Publish(m *outbox.Message) error {
	subj := retainedSubject
	if !m.Retain {
		subj = topicSubject(m.Topic)
	}
	b, seqAt := encode(n.id, m)
	// Receivers take a sequence number not above the last one as a copy,
	// so numbering and handing over happen together: two publishing
	// goroutines must not pass each other between the two.
	n.pubMu.Lock()
	n.seq++
	binary.BigEndian.PutUint64(b[seqAt:], n.seq)
	err := n.nc.Publish(subj, b)
	n.pubMu.Unlock()
	if err != nil {
		n.dropped.Add(1)
		return fmt.Errorf("cluster publish: %w", err)
	}
	n.sent.Add(1)
	return nil
}

// receive hands the messages of other nodes to the Receiver, once each.
// NATS delivers a message once per matching subscription of this node
// ("a/+" and "a/b" both match "a/b"); the copies arrive one after the
// other, before the sender's next message, so a copy is recognised by a
// sequence number not above the last one seen from its sender.
func (n *Node) receive() {
	defer close(n.done)
	last := make(map[string]uint64) // by sender incarnation
	for {
		var msg *nats.Msg
		select {
		case msg = <-n.msgs:
		case <-n.stop:
			return
		}
		sender, seq, m, err := decode(msg.Data)
		if err != nil {
			n.malformed.Add(1)
			n.cfg.Log.Warn("Malformed cluster message dropped", "subject", msg.Subject, "err", err)
			continue
		}
		if seq <= last[sender] {
			n.duplicates.Add(1)
			continue
		}
		last[sender] = seq
		n.received.Add(1)
		n.recv(m)
	}
}

// Flush waits until the server has taken every message published so far.
func (n *Node) Flush() error { return n.nc.Flush() }

// Peers are the names of the nodes this one has a route to now.
func (n *Node) Peers() []string {
	rz, err := n.ns.Routez(nil)
	if err != nil {
		return nil
	}
	seen := make(map[string]bool)
	var out []string
	for _, r := range rz.Routes {
		if r.RemoteName != "" && !seen[r.RemoteName] {
			seen[r.RemoteName] = true
			out = append(out, r.RemoteName)
		}
	}
	sort.Strings(out)
	return out
}

// Meshed reports whether this node has routes to the other nodes (all
// but itself) and sees each one's subscription to retained messages: from
// then on a retained message published here reaches every node.
func (n *Node) Meshed(others int) bool {
	if len(n.Peers()) < others {
		return false
	}
	return n.ns.GlobalAccount().Interest(retainedSubject) >= others+1 // +1: this node's own
}

// Stats are the node's counters since it started.
type Stats struct {
	Sent, Received, Duplicates, Dropped, Malformed int64
}

func (n *Node) Stats() Stats {
	return Stats{Sent: n.sent.Load(), Received: n.received.Load(), Duplicates: n.duplicates.Load(),
		Dropped: n.dropped.Load(), Malformed: n.malformed.Load()}
}

// Close leaves the cluster: the connection drains what it holds and the
// server shuts down.
func (n *Node) Close() {
	_ = n.nc.Drain()
	for n.nc.IsDraining() {
		time.Sleep(5 * time.Millisecond)
	}
	n.nc.Close()
	close(n.stop)
	<-n.done
	n.ns.Shutdown()
	n.ns.WaitForShutdown()
}

// natsLogger sends the embedded server's log to slog. Two kinds of
// message are expected and only logged at debug level: a peer not
// accepting routes yet (nodes start in any order; Peers and Meshed say
// whether the mesh formed), and the warning about plain-text passwords
// (the route password is a generated Secret, the client one random).
type natsLogger struct{ log *slog.Logger }

func (l natsLogger) Noticef(f string, v ...any) { l.log.Debug("nats: " + fmt.Sprintf(f, v...)) }
func (l natsLogger) Warnf(f string, v ...any)   { l.at(slog.LevelWarn, fmt.Sprintf(f, v...)) }
func (l natsLogger) Fatalf(f string, v ...any)  { l.log.Error("nats: " + fmt.Sprintf(f, v...)) }
func (l natsLogger) Errorf(f string, v ...any)  { l.at(slog.LevelError, fmt.Sprintf(f, v...)) }
func (l natsLogger) Debugf(f string, v ...any)  { l.log.Debug("nats: " + fmt.Sprintf(f, v...)) }
func (l natsLogger) Tracef(string, ...any)      {}

func (l natsLogger) at(level slog.Level, msg string) {
	if strings.Contains(msg, "Error trying to connect to route") || strings.Contains(msg, "Plaintext passwords detected") {
		level = slog.LevelDebug
	}
	l.log.Log(context.Background(), level, "nats: "+msg)
}
