package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetmq/fleetmq/broker"
	"github.com/fleetmq/fleetmq/broker/admin"
	"github.com/fleetmq/fleetmq/broker/authz"
	"github.com/fleetmq/fleetmq/broker/cluster"
	"github.com/fleetmq/fleetmq/cmd/fleetmq-bench/internal/loadgen"
	"github.com/fleetmq/fleetmq/internal/testtools"
)

// serveBroker runs an in-process fleetmq broker on 127.0.0.1:0 for the
// length of the test.
func serveBroker(t *testing.T, opts broker.Options) string {
	t.Helper()
	opts.SysInterval = -1
	srv, err := broker.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		srv.Shutdown(sctx)
		cancel()
		<-done
	})
	return ln.Addr().String()
}

// bench runs the command line and decodes its --json summary.
func bench(t *testing.T, args ...string) (*loadgen.Summary, error) {
	t.Helper()
	s, _, err := benchStderr(t, args...)
	return s, err
}

// benchStderr is bench that also returns the progress output.
func benchStderr(t *testing.T, args ...string) (*loadgen.Summary, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args = append(args, "--json", "--progress", "100ms")
	err := run(context.Background(), args, &stdout, &stderr)
	var ue usageError
	if errors.As(err, &ue) {
		t.Fatalf("fleetmq-bench %v: %v", args, err)
	}
	var s loadgen.Summary
	if jerr := json.Unmarshal(stdout.Bytes(), &s); jerr != nil {
		t.Fatalf("fleetmq-bench %v: summary %q: %v (stderr %q)", args, stdout.String(), jerr, stderr.String())
	}
	return &s, stderr.String(), err
}

// mustBench is bench that fails the test on any error in the run.
func mustBench(t *testing.T, args ...string) *loadgen.Summary {
	t.Helper()
	s, err := bench(t, args...)
	if err != nil {
		t.Fatalf("fleetmq-bench %v: %v; errors %v", args, err, s.ErrorSample)
	}
	return s
}

func anonymous(t *testing.T) string { return serveBroker(t, broker.Options{AllowAnonymous: true}) }

func TestConn(t *testing.T) {
	addr := anonymous(t)
	s, progress, err := benchStderr(t, "conn", "--addr", addr, "-c", "20", "--connect-rate", "400", "--sub", "idle/%i", "--qos", "1",
		"--duration", "300ms", "--broker-pid", itoa(os.Getpid()), "--sources", "127.0.0.1-2")
	if err != nil {
		t.Fatalf("%v: %v", err, s.ErrorSample)
	}
	if !strings.Contains(progress, "hold") || !strings.Contains(progress, "conns 20") {
		t.Errorf("progress lines %q, want the hold phase with 20 connections", progress)
	}
	if s.Connections.OK != 20 || s.Connections.Held != 20 || s.Connections.Failed != 0 {
		t.Errorf("connections %+v, want 20 ok and held", s.Connections)
	}
	// 20 connections at 400/s take at least 47.5 ms.
	if s.Connections.RampSeconds < 0.045 {
		t.Errorf("ramp %.3fs: the connect rate was not applied", s.Connections.RampSeconds)
	}
	if s.Broker == nil || s.Broker.RSSAfterKB == 0 {
		t.Errorf("broker sample %+v, want RSS read from /proc", s.Broker)
	}
}

func TestConnStormWithAuth(t *testing.T) {
	hash, err := authz.HashPassword([]byte("secret"), 1000)
	if err != nil {
		t.Fatal(err)
	}
	policy, err := authz.Compile(&authz.Bundle{APIVersion: authz.APIVersion, Users: []authz.User{{Username: "bench", PasswordHash: hash}}})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveBroker(t, broker.Options{Auth: admin.PolicyAuthorizer(policy)})
	s := mustBench(t, "conn", "--addr", addr, "--storm", "-c", "4", "--duration", "300ms", "-u", "bench", "-P", "secret")
	if s.Connections.OK < 10 || s.Connections.PerSec <= 0 || !s.Storm {
		t.Errorf("connections %+v storm %v, want a few cycles and a rate", s.Connections, s.Storm)
	}
	// A wrong password is refused: errors, exit code 1.
	s, err = bench(t, "conn", "--addr", addr, "--storm", "-c", "1", "--duration", "100ms", "-u", "bench", "-P", "wrong")
	if !errors.Is(err, errTooManyErrors) || s.Errors == 0 || !strings.Contains(strings.Join(s.ErrorSample, " "), "CONNACK refused") {
		t.Errorf("wrong password: err %v, errors %d %v; want CONNACK refused and errTooManyErrors", err, s.Errors, s.ErrorSample)
	}
	// ... unless the threshold allows them.
	if _, err := bench(t, "conn", "--addr", addr, "--storm", "-c", "1", "--duration", "100ms", "-u", "bench", "-P", "wrong", "--max-errors", "1000000"); err != nil {
		t.Errorf("with --max-errors: %v", err)
	}
}

func TestPubAndSub(t *testing.T) {
	addr := anonymous(t)
	var sub *loadgen.Summary
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sub = mustBench(t, "sub", "--addr", addr, "-c", "2", "--topic", "t/%i", "--qos", "1", "--duration", "1500ms", "--prefix", "s-")
	}()
	time.Sleep(300 * time.Millisecond) // let the subscribers in
	pub := mustBench(t, "pub", "--addr", addr, "-c", "2", "--topic", "t/%i", "--qos", "1", "--messages", "50", "--rate", "500", "--prefix", "p-")
	wg.Wait()
	if pub.Messages.SentTotal != 100 || pub.Messages.AckedTotal != 100 {
		t.Errorf("pub messages %+v, want 100 sent and acked", pub.Messages)
	}
	if sub.Messages.Received != 100 || sub.Latency == nil || sub.Latency.Count != 100 {
		t.Errorf("sub messages %+v latency %+v, want 100 received with latency", sub.Messages, sub.Latency)
	}
}

func TestPairs(t *testing.T) {
	for _, qos := range []string{"0", "1", "2"} {
		t.Run("qos "+qos, func(t *testing.T) {
			addr := anonymous(t)
			s := mustBench(t, "pairs", "--addr", addr, "-c", "3", "--qos", qos, "--messages", "200", "--duration", "5s")
			m := s.Messages
			if m.SentTotal != 600 || m.ReceivedTotal != 600 || *m.LostRatio != 0 {
				t.Errorf("messages %+v, want 600 sent and received", m)
			}
			if s.Latency == nil || s.Latency.Count != 600 || s.Latency.P99 <= 0 || s.Latency.Max < s.Latency.P50 {
				t.Errorf("latency %+v, want 600 samples", s.Latency)
			}
		})
	}
}

// Publishers on one node of a cluster, subscribers on another: every
// message crosses the route, and none is lost at QoS 1.
func TestPairsAcrossClusterNodes(t *testing.T) {
	routes := []string{testtools.FreeAddr(t), testtools.FreeAddr(t)}
	addrs := make([]string, 2)
	for i := range addrs {
		addrs[i] = serveBroker(t, broker.Options{AllowAnonymous: true, Cluster: &cluster.Config{
			Name: "bench", NodeName: "bench-" + itoa(i), Listen: routes[i], Peers: routes,
			Username: "route", Password: "s3cret",
		}})
	}
	s := mustBench(t, "pairs", "--addr", addrs[0], "--sub-addr", addrs[1], "--settle", "2s",
		"-c", "3", "--qos", "1", "--messages", "200", "--duration", "10s")
	if m := s.Messages; m.SentTotal != 600 || m.ReceivedTotal != 600 || s.SubAddr != addrs[1] {
		t.Errorf("messages %+v (subscribers on %q), want 600 sent and received on %s", m, s.SubAddr, addrs[1])
	}
}

func TestFanIn(t *testing.T) {
	addr := anonymous(t)
	s := mustBench(t, "fanin", "--addr", addr, "-c", "5", "--qos", "1", "--rate", "200", "--messages", "20")
	if s.Messages.ReceivedTotal != 100 || s.Subscribers != 1 || s.Publishers != 5 {
		t.Errorf("messages %+v, %d publishers, %d subscribers; want 100 received by 1 from 5", s.Messages, s.Publishers, s.Subscribers)
	}
}

func TestFanOut(t *testing.T) {
	addr := anonymous(t)
	s := mustBench(t, "fanout", "--addr", addr, "-c", "5", "--messages", "20", "--rate", "100")
	if s.Messages.SentTotal != 20 || s.Messages.ReceivedTotal != 100 {
		t.Errorf("messages %+v, want 20 sent and 100 received", s.Messages)
	}
}

func TestReport(t *testing.T) {
	lost := 0.0
	var lines []string
	for _, s := range []loadgen.Summary{
		{Scenario: "pairs", Name: "qos1", Label: "fleetmq", Messages: &loadgen.Messages{OutPerSec: 300, InPerSec: 300, LostRatio: &lost}, Latency: &loadgen.Latency{P50: 1, P99: 4}},
		{Scenario: "pairs", Name: "qos1", Label: "mosquitto", Messages: &loadgen.Messages{OutPerSec: 100, InPerSec: 100, LostRatio: &lost}, Latency: &loadgen.Latency{P50: 2, P99: 8}},
		{Scenario: "pairs", Name: "qos1", Label: "fleetmq", Messages: &loadgen.Messages{OutPerSec: 200, InPerSec: 200, LostRatio: &lost}, Latency: &loadgen.Latency{P50: 1, P99: 4}},
		{Scenario: "pairs", Name: "qos1", Label: "fleetmq", Messages: &loadgen.Messages{OutPerSec: 250, InPerSec: 250, LostRatio: &lost}, Latency: &loadgen.Latency{P50: 1, P99: 4}},
		{Scenario: "conn", Name: "idle", Label: "mosquitto", Connections: loadgen.Connections{Held: 10}, Broker: &loadgen.BrokerProc{BytesPerConn: 1000, RSSAfterKB: 2048}},
		{Scenario: "conn", Name: "idle", Label: "fleetmq", Connections: loadgen.Connections{Held: 10}, Broker: &loadgen.BrokerProc{BytesPerConn: 1500, RSSAfterKB: 4096}},
	} {
		b, _ := json.Marshal(s)
		lines = append(lines, string(b))
	}
	file := filepath.Join(t.TempDir(), "r.jsonl")
	os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\nnot json, skipped\n"), 0o644)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"report", file}, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| case | metric | mosquitto | fleetmq | fleetmq / mosquitto |",
		"| qos1 | msgs/s out | 100 | 250 | 2.50× |", // median of 300, 200, 250
		"| qos1 | p99 ms | 8.00 | 4.00 | 0.50× |",
		"| idle | RSS bytes/conn | 1000 | 1500 | 1.50× |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
