package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/fleetmq/fleetmq/broker/packets"
	"github.com/fleetmq/fleetmq/cmd/fleetmq-bench/internal/loadgen"
)

// loadOptions are the parsed flags of a load command.
type loadOptions struct {
	cfg       loadgen.Config
	json      bool
	quiet     bool
	maxErrors int64
}

// scenario defaults: client count, publish topic, subscription filter and
// how long to run.
type scenarioDefaults struct {
	count    int
	topic    string
	filter   string
	duration time.Duration
	about    string
}

var scenarios = map[string]scenarioDefaults{
	loadgen.ScenarioConn:   {count: 100, duration: 10 * time.Second, about: "-c connections (storm: concurrent workers)"},
	loadgen.ScenarioPub:    {count: 10, topic: "bench/%i", duration: 10 * time.Second, about: "-c publishers"},
	loadgen.ScenarioSub:    {count: 10, filter: "bench/%i", about: "-c subscribers; --duration 0 runs until interrupted"},
	loadgen.ScenarioPairs:  {count: 10, topic: "bench/pairs/%i", filter: "bench/pairs/%i", duration: 10 * time.Second, about: "-c publisher/subscriber pairs"},
	loadgen.ScenarioFanIn:  {count: 100, topic: "bench/fanin/%i", filter: "bench/fanin/+", duration: 10 * time.Second, about: "-c publishers, one subscriber"},
	loadgen.ScenarioFanOut: {count: 100, topic: "bench/fanout", filter: "bench/fanout", duration: 10 * time.Second, about: "-c subscribers, one publisher"},
}

// parseLoad parses the flags of load command name.
func parseLoad(name string, args []string, stderr io.Writer) (loadOptions, error) {
	def, ok := scenarios[name]
	if !ok {
		return loadOptions{}, usageError{fmt.Errorf("unknown command %q (see fleetmq-bench -h)", name)}
	}
	var o loadOptions
	fs := flag.NewFlagSet("fleetmq-bench "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)

	addr := fs.String("addr", "127.0.0.1:1883", "broker host:port")
	protocol := fs.Int("protocol", 4, "MQTT version: 3 (3.1), 4 (3.1.1) or 5")
	var user, pass string
	fs.StringVar(&user, "username", "", "username")
	fs.StringVar(&user, "u", "", "short for --username")
	fs.StringVar(&pass, "password", "", "password")
	fs.StringVar(&pass, "P", "", "short for --password")
	keepAlive := fs.Duration("keepalive", 300*time.Second, "keepalive announced in CONNECT (PINGREQ at half of it)")
	sources := fs.String("sources", "", "local addresses to dial from, e.g. 127.0.0.1-4 or 127.0.0.1,127.0.0.2")
	prefix := fs.String("prefix", fmt.Sprintf("fmqb%d-", os.Getpid()), "client identifier prefix")
	connectRate := fs.Float64("connect-rate", 0, "new connections per second (0: as fast as --connect-concurrency allows)")
	connectConc := fs.Int("connect-concurrency", 64, "handshakes in progress at once")
	connectTimeout := fs.Duration("connect-timeout", 10*time.Second, "bound on dial + CONNECT + CONNACK (+ SUBACK)")
	var count int
	fs.IntVar(&count, "count", def.count, def.about)
	fs.IntVar(&count, "c", def.count, "short for --count")
	duration := fs.Duration("duration", def.duration, "how long to publish, receive or hold")
	drain := fs.Duration("drain", 3*time.Second, "how long to wait for deliveries after publishing stops")
	fs.BoolVar(&o.json, "json", false, "print the summary as JSON")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress line")
	progress := fs.Duration("progress", time.Second, "progress line interval (0: none)")
	fs.Int64Var(&o.maxErrors, "max-errors", 0, "exit 1 when more errors than this happen")
	label := fs.String("label", "", "name of the broker under test, carried into the summary")
	caseName := fs.String("name", "", "name of this case, carried into the summary (for report)")
	brokerPID := fs.Int("broker-pid", 0, "broker process to sample (RSS, CPU) from /proc")

	var topic, filter, sub, subAddr *string
	var settle *time.Duration
	var qos, subQoS *int
	var size, inflight, batch, msgCount *int
	var rate *float64
	var retain, storm *bool
	publishes := def.topic != ""
	if publishes {
		topic = fs.String("topic", def.topic, "topic to publish to; %i is the client index, %c the client id")
		qos = fs.Int("qos", 0, "publish QoS")
		size = fs.Int("size", 64, "payload bytes (at least 12: magic and send timestamp)")
		rate = fs.Float64("rate", 0, "messages per second per publisher (0: full speed)")
		inflight = fs.Int("inflight", 64, "unacknowledged QoS 1/2 messages per publisher")
		batch = fs.Int("batch", 16, "most messages written per system call")
		msgCount = fs.Int("messages", 0, "stop each publisher after this many messages (0: no limit)")
		retain = fs.Bool("retain", false, "set the retain flag")
	}
	if def.filter != "" {
		if publishes {
			subAddr = fs.String("sub-addr", "", "where subscribers connect (default --addr): another cluster node")
			settle = fs.Duration("settle", 0, "wait between subscribing and publishing (default 1s with --sub-addr: interest spreads through a cluster asynchronously)")
			filter = fs.String("filter", def.filter, "subscribers' topic filter")
			subQoS = fs.Int("sub-qos", -1, "subscription QoS (default: --qos)")
		} else {
			filter = fs.String("topic", def.filter, "topic filter; %i is the client index, %c the client id")
			subQoS = fs.Int("qos", 0, "subscription QoS")
		}
	}
	if name == loadgen.ScenarioConn {
		sub = fs.String("sub", "", "topic filter each connection subscribes to (%i, %c expand)")
		subQoS = fs.Int("qos", 0, "QoS of --sub")
		storm = fs.Bool("storm", false, "connect and disconnect in a loop on -c workers for --duration")
	}

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "usage: fleetmq-bench %s [flags]\n", name)
			fs.SetOutput(stderr)
			fs.PrintDefaults()
		}
		return o, usageError{err}
	}
	setFlags := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { setFlags[f.Name] = true })
	if fs.NArg() > 0 {
		return o, usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}

	var errs []error
	ips, err := parseSources(*sources)
	if err != nil {
		errs = append(errs, err)
	}
	cfg := loadgen.Config{
		Scenario: name, Name: *caseName, Label: *label, Addr: *addr, Protocol: packets.Version(*protocol),
		Username: user, Password: pass, KeepAlive: *keepAlive, Sources: ips, ClientPrefix: *prefix,
		ConnectRate: *connectRate, ConnectConcurrency: *connectConc, ConnectTimeout: *connectTimeout,
		Duration: *duration, Drain: *drain, BrokerPID: *brokerPID,
	}
	if !o.quiet {
		cfg.Progress = *progress
	}
	pattern := func(flagName, s string) loadgen.Pattern {
		p, err := loadgen.ParsePattern(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("--%s: %w", flagName, err))
		}
		return p
	}
	qosOf := func(flagName string, v int) byte {
		if v < 0 || v > 2 {
			errs = append(errs, fmt.Errorf("--%s %d: want 0, 1 or 2", flagName, v))
			return 0
		}
		return byte(v)
	}
	if publishes {
		cfg.PubTopic = pattern("topic", *topic)
		cfg.QoS = qosOf("qos", *qos)
		cfg.Size, cfg.Rate, cfg.Inflight, cfg.Batch, cfg.Count, cfg.Retain = *size, *rate, *inflight, *batch, *msgCount, *retain
		if filter != nil {
			cfg.SubAddr, cfg.Settle = *subAddr, *settle
			if cfg.SubAddr != "" && !setFlags["settle"] {
				cfg.Settle = time.Second
			}
			cfg.SubFilter = pattern("filter", *filter)
			if *subQoS < 0 {
				cfg.SubQoS = cfg.QoS
			} else {
				cfg.SubQoS = qosOf("sub-qos", *subQoS)
			}
		}
	}
	switch name {
	case loadgen.ScenarioConn:
		cfg.Conns, cfg.Storm = count, *storm
		if *sub != "" {
			cfg.ConnFilter = pattern("sub", *sub)
		}
		cfg.ConnQoS = qosOf("qos", *subQoS)
	case loadgen.ScenarioPub:
		cfg.Publishers = count
	case loadgen.ScenarioSub:
		cfg.Subscribers = count
		cfg.SubFilter = pattern("topic", *filter)
		cfg.SubQoS = qosOf("qos", *subQoS)
	case loadgen.ScenarioPairs:
		cfg.Publishers, cfg.Subscribers, cfg.Fanout = count, count, 1
	case loadgen.ScenarioFanIn:
		cfg.Publishers, cfg.Subscribers, cfg.Fanout = count, 1, 1
	case loadgen.ScenarioFanOut:
		cfg.Publishers, cfg.Subscribers, cfg.Fanout = 1, count, count
	}
	if count < 1 {
		errs = append(errs, fmt.Errorf("-c %d: must be at least 1", count))
	}
	if len(errs) == 0 {
		cfg.Defaults()
		if err := cfg.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return o, usageError{errors.Join(errs...)}
	}
	o.cfg = cfg
	return o, nil
}

// parseSources reads a comma-separated list of IPv4 addresses and ranges:
// "127.0.0.1-4" or "127.0.0.1-127.0.0.4" (the last octet varies).
func parseSources(s string) ([]net.IP, error) {
	if s == "" {
		return nil, nil
	}
	var out []net.IP
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		from, to, isRange := strings.Cut(item, "-")
		ip := net.ParseIP(from).To4()
		if ip == nil {
			return nil, fmt.Errorf("--sources %q: %q is not an IPv4 address", s, from)
		}
		if !isRange {
			out = append(out, ip)
			continue
		}
		last, err := strconv.Atoi(to)
		if err != nil {
			end := net.ParseIP(to).To4()
			if end == nil || !end[:3].Equal(ip[:3]) {
				return nil, fmt.Errorf("--sources %q: range end %q: want a last octet or an address in the same /24", s, to)
			}
			last = int(end[3])
		}
		if last < int(ip[3]) || last > 255 {
			return nil, fmt.Errorf("--sources %q: range %s: end before start or above 255", s, item)
		}
		for o := int(ip[3]); o <= last; o++ {
			a := make(net.IP, 4)
			copy(a, ip)
			a[3] = byte(o)
			out = append(out, a)
		}
	}
	return out, nil
}
