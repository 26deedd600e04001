package loadgen

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetmq/fleetmq/broker/packets"
)

// maxErrorSamples is how many error messages a summary keeps verbatim.
const maxErrorSamples = 10

// runner holds the state of one Run.
type runner struct {
	cfg      *Config
	progress io.Writer
	lat      Shards // delivery latency
	connLat  Shards // dial to CONNACK

	// mu guards conns, errSamples.
	mu         sync.Mutex
	conns      []*conn
	errSamples []string
	errors     atomic.Int64

	connOK, connFailed atomic.Int64
	phase              atomic.Pointer[string]
	start              time.Time
}

// Run executes cfg against the broker and returns its summary. Progress
// lines go to progress (nil: none). Run returns an error only when it
// could not run at all; failures during the run are counted in
// Summary.Errors.
func Run(ctx context.Context, cfg Config, progress io.Writer) (*Summary, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	shards := 4 * runtime.GOMAXPROCS(0)
	r := &runner{cfg: &cfg, progress: progress, lat: NewShards(shards), connLat: NewShards(shards), start: time.Now()}
	r.setPhase("connect")
	sum := &Summary{
		Scenario: cfg.Scenario, Name: cfg.Name, Storm: cfg.Storm, Label: cfg.Label, Addr: cfg.Addr, SubAddr: cfg.SubAddr, Protocol: int(cfg.Protocol),
		QoS: cfg.QoS, Size: cfg.Size, Rate: cfg.Rate,
		Publishers: cfg.Publishers, Subscribers: cfg.Subscribers, Conns: cfg.Conns,
	}
	if cfg.Publishers == 0 && cfg.Subscribers > 0 {
		sum.QoS = cfg.SubQoS
	}
	selfBefore, selfAt := selfCPU(), time.Now()
	var before ProcSample
	var beforeAt time.Time
	if cfg.BrokerPID > 0 {
		var err error
		beforeAt = time.Now()
		if before, err = ReadProc(cfg.BrokerPID); err != nil {
			return nil, err
		}
	}

	stopProgress := r.startProgress(ctx)
	defer stopProgress()
	if cfg.KeepAlive > 0 {
		stopPing := r.startPinger(cfg.KeepAlive / 2)
		defer stopPing()
	}
	defer r.closeAll()

	var m measured
	switch {
	case cfg.Storm:
		m = r.storm(ctx)
	default:
		m = r.load(ctx)
	}

	if cfg.BrokerPID > 0 {
		after, err := ReadProc(cfg.BrokerPID)
		if err != nil {
			r.errorf("%v", err)
		} else {
			bp := &BrokerProc{PID: cfg.BrokerPID, RSSBeforeKB: before.RSSKB, RSSAfterKB: after.RSSKB,
				CPUSeconds: (after.CPU - before.CPU).Seconds()}
			bp.CPUPercent = 100 * bp.CPUSeconds / time.Since(beforeAt).Seconds()
			// Memory per connection makes sense only when connections are
			// all there is (conn, not storm).
			if n := r.connOK.Load(); n > 0 && cfg.Scenario == ScenarioConn && !cfg.Storm {
				bp.BytesPerConn = float64(after.RSSKB-before.RSSKB) * 1024 / float64(n)
			}
			sum.Broker = bp
		}
	}
	r.fill(sum, m)
	sum.ToolCPUPercent = 100 * (selfCPU() - selfBefore).Seconds() / time.Since(selfAt).Seconds()
	return sum, nil
}

// measured is what a phase hands to the summary.
type measured struct {
	window                time.Duration // publishing (or holding, or storming) time
	ramp                  time.Duration // connecting time
	sent, acked, received uint64        // counted within window
	sentAll, receivedAll  uint64        // including the drain
	ackedAll              uint64
	cycles                int64 // storm: connect/disconnect cycles
	heldConns             int   // conn: connections alive at the end of the hold
}

func (r *runner) setPhase(p string) { r.phase.Store(&p) }

// errorf counts an error and keeps the first few messages.
func (r *runner) errorf(format string, a ...any) {
	r.errors.Add(1)
	r.mu.Lock()
	if len(r.errSamples) < maxErrorSamples {
		r.errSamples = append(r.errSamples, fmt.Sprintf(format, a...))
	}
	r.mu.Unlock()
}

// clientID names client idx of a role (c, p or s).
func (r *runner) clientID(role string, idx int) string {
	return fmt.Sprintf("%s%s%d", r.cfg.ClientPrefix, role, idx)
}

// connectAll opens n connections of a role, paced by ConnectRate, with at
// most ConnectConcurrency handshakes at a time; each subscribes to filter
// when it is set. Failed connections are counted and left out (nil).
func (r *runner) connectAll(ctx context.Context, role string, n int, filter Pattern, qos byte) []*conn {
	cfg := r.cfg
	out := make([]*conn, n)
	sem := make(chan struct{}, cfg.ConnectConcurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		if cfg.ConnectRate > 0 {
			due := start.Add(time.Duration(float64(i) / cfg.ConnectRate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
				}
			}
		}
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			c, err := r.open(i, r.clientID(role, i), filter, qos)
			if err != nil {
				r.connFailed.Add(1)
				r.errorf("%s: %v", r.clientID(role, i), err)
				return
			}
			out[i] = c
		}()
	}
	wg.Wait()
	return out
}

// open dials, starts the reader, subscribes when filter is set, and
// registers the connection.
func (r *runner) open(idx int, id string, filter Pattern, qos byte) (*conn, error) {
	addr := r.cfg.Addr
	if !filter.IsZero() && r.cfg.SubAddr != "" {
		addr = r.cfg.SubAddr
	}
	t0 := time.Now()
	c, err := r.dial(addr, idx, id)
	if err != nil {
		return nil, err
	}
	r.connLat.For(idx).Record(time.Since(t0))
	c.start()
	r.mu.Lock()
	r.conns = append(r.conns, c)
	r.mu.Unlock()
	if !filter.IsZero() {
		if err := c.subscribe(filter.Expand(idx, id), qos, r.cfg.ConnectTimeout); err != nil {
			c.closing.Store(true)
			c.nc.Close()
			return nil, fmt.Errorf("subscribe: %w", err)
		}
	}
	r.connOK.Add(1)
	return c, nil
}

// load runs the conn (hold), pub, sub and combined scenarios.
func (r *runner) load(ctx context.Context) measured {
	cfg := r.cfg
	var m measured
	t0 := time.Now()
	var subs, pubs []*conn
	if cfg.Conns > 0 {
		r.connectAll(ctx, "c", cfg.Conns, cfg.ConnFilter, cfg.ConnQoS)
	}
	if cfg.Subscribers > 0 {
		subs = r.connectAll(ctx, "s", cfg.Subscribers, cfg.SubFilter, cfg.SubQoS)
	}
	if cfg.Publishers > 0 {
		pubs = r.connectAll(ctx, "p", cfg.Publishers, Pattern{}, 0)
	}
	m.ramp = time.Since(t0)
	if ctx.Err() != nil {
		return m
	}

	if cfg.Publishers == 0 {
		// conn and sub: hold (and receive) for the duration.
		r.setPhase("hold")
		if cfg.Subscribers > 0 {
			r.setPhase("receive")
		}
		w0 := time.Now()
		r.wait(ctx, cfg.Duration, nil)
		m.window = time.Since(w0)
		m.received = r.sum(func(c *conn) uint64 { return c.received.Load() })
		m.receivedAll = m.received
		m.heldConns = r.alive()
		_ = subs
		return m
	}

	if cfg.Settle > 0 {
		// A cluster tells the publishers' node of the subscriptions
		// asynchronously; publishing before that would count as loss.
		r.setPhase("settle")
		select {
		case <-time.After(cfg.Settle):
		case <-ctx.Done():
			return m
		}
	}
	r.setPhase("publish")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, c := range pubs {
		if c == nil {
			continue
		}
		p := newPublisher(c, cfg.PubTopic.Expand(c.idx, c.id), cfg)
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.run(stop, cfg.Rate, cfg.Batch, cfg.Count, float64(c.idx)/float64(cfg.Publishers))
		}()
	}
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()
	w0 := time.Now()
	r.wait(ctx, cfg.Duration, allDone)
	m.window = time.Since(w0)
	m.sent = r.sum(func(c *conn) uint64 { return c.sent.Load() })
	m.acked = r.sum(func(c *conn) uint64 { return c.acked.Load() })
	m.received = r.sum(func(c *conn) uint64 { return c.received.Load() })
	close(stop)
	select {
	case <-allDone:
	case <-time.After(2 * time.Second):
		// A publisher stuck in a write to a broker that stopped reading;
		// closeAll unblocks it.
	}

	// Drain: wait until deliveries and acknowledgements stop growing, or
	// all that are expected are in.
	r.setPhase("drain")
	m.sentAll = r.sum(func(c *conn) uint64 { return c.sent.Load() })
	progress := func() (recv, acked uint64) {
		return r.sum(func(c *conn) uint64 { return c.received.Load() }), r.sum(func(c *conn) uint64 { return c.acked.Load() })
	}
	complete := func(recv, acked uint64) bool {
		subsDone := cfg.Subscribers == 0 || (cfg.Fanout > 0 && recv >= m.sentAll*uint64(cfg.Fanout))
		acksDone := cfg.QoS == 0 || acked >= m.sentAll
		return subsDone && acksDone
	}
	deadline := time.Now().Add(cfg.Drain)
	lastR, lastA := progress()
	for stable := 0; stable < 10 && !complete(lastR, lastA) && time.Now().Before(deadline) && ctx.Err() == nil; {
		time.Sleep(50 * time.Millisecond)
		curR, curA := progress()
		if curR == lastR && curA == lastA {
			stable++
		} else {
			stable = 0
		}
		lastR, lastA = curR, curA
	}
	m.ackedAll = r.sum(func(c *conn) uint64 { return c.acked.Load() })
	m.receivedAll = r.sum(func(c *conn) uint64 { return c.received.Load() })
	return m
}

// wait returns after d (0: never), when ctx ends or when done closes.
func (r *runner) wait(ctx context.Context, d time.Duration, done <-chan struct{}) {
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-timeout:
	case <-ctx.Done():
	case <-done:
	}
}

// storm connects and disconnects in a loop on Conns workers for Duration.
func (r *runner) storm(ctx context.Context) measured {
	cfg := r.cfg
	r.setPhase("storm")
	var cycles atomic.Int64
	var next atomic.Int64
	deadline := time.Now().Add(cfg.Duration)
	var wg sync.WaitGroup
	w0 := time.Now()
	for range cfg.Conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				id := r.clientID("c", i)
				t0 := time.Now()
				c, err := r.dial(cfg.Addr, i, id)
				if err != nil {
					r.connFailed.Add(1)
					r.errorf("%s: %v", id, err)
					continue
				}
				r.connLat.For(i).Record(time.Since(t0))
				r.connOK.Add(1)
				// DISCONNECT, then wait for the broker to close so that
				// TIME_WAIT lands on its side, not on our ports.
				c.nc.SetDeadline(time.Now().Add(2 * time.Second))
				d := packets.Disconnect{}
				_, _ = c.nc.Write(d.Append(nil, c.v)) // a failure shows as the read below ending
				var b [16]byte
				for {
					if _, err := c.nc.Read(b[:]); err != nil {
						break
					}
				}
				c.nc.Close()
				cycles.Add(1)
			}
		}()
	}
	wg.Wait()
	return measured{window: time.Since(w0), cycles: cycles.Load()}
}

// sum adds a counter over every connection.
func (r *runner) sum(f func(*conn) uint64) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n uint64
	for _, c := range r.conns {
		n += f(c)
	}
	return n
}

// alive counts connections whose reader is still running.
func (r *runner) alive() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.conns {
		select {
		case <-c.done:
		default:
			n++
		}
	}
	return n
}

// closeAll disconnects every connection and waits for the readers.
func (r *runner) closeAll() {
	r.mu.Lock()
	conns := r.conns
	r.mu.Unlock()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for _, c := range conns {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			c.disconnect()
			<-c.done
		}()
	}
	wg.Wait()
}

// startPinger sends PINGREQ on connections idle for interval.
func (r *runner) startPinger(interval time.Duration) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval / 2)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				r.mu.Lock()
				conns := r.conns
				r.mu.Unlock()
				for _, c := range conns {
					c.ping(now, interval)
				}
			}
		}
	}()
	return func() { close(stop); <-done }
}

// startProgress prints one line per Progress interval.
func (r *runner) startProgress(ctx context.Context) func() {
	if r.progress == nil || r.cfg.Progress <= 0 {
		return func() {}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(r.cfg.Progress)
		defer t.Stop()
		prevLat := r.lat.Snapshot()
		var prevSent, prevRecv uint64
		var prevConn int64
		prevT := time.Now()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case now := <-t.C:
				secs := now.Sub(prevT).Seconds()
				prevT = now
				sent := r.sum(func(c *conn) uint64 { return c.sent.Load() })
				recv := r.sum(func(c *conn) uint64 { return c.received.Load() })
				conns := r.connOK.Load()
				lat := r.lat.Snapshot()
				iv := lat.Sub(prevLat)
				prevLat = lat
				var b strings.Builder
				fmt.Fprintf(&b, "%5.0fs %-8s conns %d (+%.0f/s, %d alive) failed %d",
					now.Sub(r.start).Seconds(), *r.phase.Load(), conns, float64(conns-prevConn)/secs, r.alive(), r.connFailed.Load())
				if sent > 0 || recv > 0 {
					fmt.Fprintf(&b, " | in %s/s out %s/s", si(float64(sent-prevSent)/secs), si(float64(recv-prevRecv)/secs))
				}
				if iv.Total > 0 {
					fmt.Fprintf(&b, " | p50 %s p99 %s", ms(iv.Quantile(0.5)), ms(iv.Quantile(0.99)))
				}
				fmt.Fprintf(&b, " | errors %d\n", r.errors.Load())
				io.WriteString(r.progress, b.String())
				prevSent, prevRecv, prevConn = sent, recv, conns
			}
		}
	}()
	return func() { close(stop); <-done }
}

// si formats a rate with a k or M suffix.
func si(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// ms formats a duration in milliseconds.
func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/1e6) }
