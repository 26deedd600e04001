// Package loadgen drives MQTT load at a broker: raw connections built on
// the broker's own codec (broker/packets), one reader goroutine per
// connection, batched writes, and a latency histogram fed from a send
// timestamp carried in every payload. cmd/fleetmq-bench is its command
// line.
package loadgen

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/fleetmq/fleetmq/broker/packets"
)

// Scenario names.
const (
	ScenarioConn   = "conn"
	ScenarioPub    = "pub"
	ScenarioSub    = "sub"
	ScenarioPairs  = "pairs"
	ScenarioFanIn  = "fanin"
	ScenarioFanOut = "fanout"
)

// payloadHeader is the magic and send timestamp at the start of every
// payload the publishers send: "fmqb" then the Unix time in nanoseconds,
// big-endian.
const (
	payloadMagic  = "fmqb"
	PayloadHeader = len(payloadMagic) + 8
)

// Config describes one run. The scenario helpers in cmd/fleetmq-bench fill
// Publishers and Subscribers; Run only executes what is set.
type Config struct {
	// Scenario is the kind of run (ScenarioConn, ...).
	Scenario string
	// Name names this case in the summary (for reports), e.g. "qos1-pairs".
	Name string
	// Label names the broker under test in the summary (for reports).
	Label string

	// Addr is the broker's host:port.
	Addr string
	// SubAddr, when set, is where subscribing connections go instead of
	// Addr: another node of a cluster, to measure delivery between nodes.
	SubAddr string
	// Settle is how long to wait between subscribing and publishing, for
	// a cluster's subscription interest to reach the publishers' node.
	Settle time.Duration
	// Protocol is the MQTT version: packets.V311 (default) or packets.V5.
	Protocol packets.Version
	// Username and Password are sent when Username is set.
	Username, Password string
	// KeepAlive is announced in CONNECT; idle connections send PINGREQ at
	// half of it. 0 disables keepalive.
	KeepAlive time.Duration
	// Sources are local addresses to dial from, in turn (127.0.0.x), to
	// get past one address's ephemeral port range; empty lets the kernel
	// choose.
	Sources []net.IP
	// ClientPrefix starts every client identifier.
	ClientPrefix string

	// ConnectRate paces new connections (per second); 0 is as fast as
	// ConnectConcurrency allows.
	ConnectRate float64
	// ConnectConcurrency bounds handshakes in progress.
	ConnectConcurrency int
	// ConnectTimeout bounds one dial + CONNECT + CONNACK (+ SUBACK).
	ConnectTimeout time.Duration

	// Duration is how long publishing runs (or connections are held);
	// 0 with Count > 0 runs until every publisher is done, 0 otherwise
	// runs until the context ends.
	Duration time.Duration
	// Drain is how long to wait for in-flight deliveries after publishing
	// stops.
	Drain time.Duration

	// Conns is the number of connections of the conn scenario (or
	// concurrent workers with Storm).
	Conns int
	// ConnFilter, when set, is subscribed by every conn-scenario
	// connection at ConnQoS.
	ConnFilter Pattern
	ConnQoS    byte
	// Storm makes conn connect and disconnect in a loop for Duration,
	// measuring connections per second.
	Storm bool

	// Publishers publish to PubTopic at QoS.
	Publishers int
	PubTopic   Pattern
	QoS        byte
	// Size is the payload size in bytes (at least PayloadHeader).
	Size int
	// Rate is messages per second per publisher; 0 is as fast as the
	// broker accepts (QoS 0: TCP back-pressure; QoS 1/2: Inflight).
	Rate float64
	// Inflight bounds unacknowledged QoS 1/2 messages per publisher.
	Inflight int
	// Batch is the most messages written in one system call.
	Batch int
	// Count, if > 0, stops each publisher after that many messages.
	Count int
	// Retain sets the retain flag.
	Retain bool

	// Subscribers subscribe to SubFilter at SubQoS.
	Subscribers int
	SubFilter   Pattern
	SubQoS      byte
	// Fanout is how many deliveries one publish should cause (pairs and
	// fan-in 1, fan-out the subscriber count); 0 when unknown. It turns
	// counts into a loss figure.
	Fanout int

	// BrokerPID, when set, is sampled from /proc for RSS and CPU time.
	BrokerPID int
	// Progress is the interval of the progress line; 0 disables it.
	Progress time.Duration
}

// Defaults fills unset fields.
func (c *Config) Defaults() {
	if c.Protocol == 0 {
		c.Protocol = packets.V311
	}
	if c.ConnectConcurrency == 0 {
		c.ConnectConcurrency = 64
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.Size == 0 {
		c.Size = 64
	}
	if c.Inflight == 0 {
		c.Inflight = 64
	}
	if c.Batch == 0 {
		c.Batch = 16
	}
}

// Validate reports every setting that cannot work.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Addr == "" {
		add("addr: empty")
	}
	if c.Settle < 0 {
		add("settle %v: negative", c.Settle)
	}
	switch c.Protocol {
	case packets.V31, packets.V311, packets.V5:
	default:
		add("protocol %d: want 3, 4 (3.1.1) or 5", c.Protocol)
	}
	if c.Password != "" && c.Username == "" {
		add("password without username")
	}
	if c.KeepAlive < 0 || c.KeepAlive > 65535*time.Second {
		add("keepalive %v: want 0 to 65535s", c.KeepAlive)
	}
	if c.ConnectRate < 0 {
		add("connect-rate %v: must not be negative", c.ConnectRate)
	}
	if c.ConnectConcurrency < 1 {
		add("connect-concurrency %d: must be at least 1", c.ConnectConcurrency)
	}
	if c.Duration < 0 || c.Drain < 0 {
		add("duration and drain must not be negative")
	}
	for _, q := range []struct {
		name string
		v    byte
	}{{"qos", c.QoS}, {"sub-qos", c.SubQoS}, {"conn qos", c.ConnQoS}} {
		if q.v > 2 {
			add("%s %d: want 0, 1 or 2", q.name, q.v)
		}
	}
	if c.Conns < 0 || c.Publishers < 0 || c.Subscribers < 0 {
		add("client counts must not be negative")
	}
	if c.Conns == 0 && c.Publishers == 0 && c.Subscribers == 0 {
		add("nothing to run: no connections, publishers or subscribers")
	}
	if c.Storm && c.Duration == 0 {
		add("storm needs a duration")
	}
	if c.Publishers > 0 {
		if c.PubTopic.IsZero() {
			add("publishers need a topic")
		} else if err := c.PubTopic.CheckName(); err != nil {
			errs = append(errs, err)
		}
		if c.Size < PayloadHeader {
			add("size %d: must be at least %d bytes (magic and send timestamp)", c.Size, PayloadHeader)
		}
		if c.Size > 256<<20 {
			add("size %d: above the MQTT limit", c.Size)
		}
		if c.Rate < 0 {
			add("rate %v: must not be negative", c.Rate)
		}
		if c.Inflight < 1 || c.Inflight > 65535 {
			add("inflight %d: want 1 to 65535", c.Inflight)
		}
		if c.Batch < 1 {
			add("batch %d: must be at least 1", c.Batch)
		}
		if c.Count < 0 {
			add("count %d: must not be negative", c.Count)
		}
	}
	if c.Subscribers > 0 {
		if c.SubFilter.IsZero() {
			add("subscribers need a topic filter")
		} else if err := c.SubFilter.CheckFilter(); err != nil {
			errs = append(errs, err)
		}
	}
	if !c.ConnFilter.IsZero() {
		if err := c.ConnFilter.CheckFilter(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
