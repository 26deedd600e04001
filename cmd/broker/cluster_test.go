package main

import (
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fleetmq/fleetmq/broker/packets"
)

// addrOn reserves a port on one loopback address (127.0.0.N per node, as
// the stand-in kubelet gives each pod its own).
func addrOn(t *testing.T, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestClusterOfProcesses runs three fleetmq-broker processes clustered
// over their route ports: a QoS 1 load published on one node reaches a
// persistent subscriber on another, and killing the third (kill -9)
// under the load loses no acknowledged message; a retained message
// published on one node is served by another.
func TestClusterOfProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs broker processes")
	}
	bin := filepath.Join(t.TempDir(), "fleetmq-broker")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	creds := writeFile(t, "routes", "route:s3cret-route-password\n")
	const n = 3
	mqtt, routes := make([]string, n), make([]string, n)
	for i := range n {
		ip := fmt.Sprintf("127.0.0.%d", i+1)
		mqtt[i], routes[i] = addrOn(t, ip), addrOn(t, ip)
	}
	procs := make([]*brokerProc, n)
	for i := range n {
		cfg := fmt.Sprintf(`listeners:
  mqtt: %q
  admin: ""
allowAnonymous: true
log:
  level: warn
cluster:
  name: acme
  nodeName: acme-%d
  listen: %q
  peers: [%s]
  credentialsFile: %q
`, mqtt[i], i, routes[i], `"`+strings.Join(routes, `", "`)+`"`, creds)
		conf := writeFile(t, fmt.Sprintf("node-%d.yaml", i), cfg)
		procs[i] = &brokerProc{t: t, bin: bin, addr: mqtt[i], args: []string{"--config", conf, "--log-format", "text"}}
		procs[i].start()
		defer procs[i].stop(syscall.SIGTERM)
	}
	defer func() {
		if t.Failed() {
			for i, p := range procs {
				t.Logf("node %d output:\n%s", i, p.output())
			}
		}
	}()

	// The persistent subscriber's session lives on node 1; its filter's
	// interest reaches node 0 before that of the probe it subscribes after.
	sub := newCounter(mqtt[1])
	if err := sub.subscribeOnce("k/#"); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	awaitRoute(t, mqtt[0], mqtt[1])

	stop := make(chan struct{})
	var wg sync.WaitGroup
	pub := newPublisher(mqtt[0], "pub", "k/1", 1)
	wg.Add(2)
	go func() { defer wg.Done(); sub.run(stop) }()
	go func() { defer wg.Done(); pub.run(stop) }()

	time.Sleep(time.Second)
	procs[2].stop(syscall.SIGKILL) // a node the load does not touch
	time.Sleep(time.Second)
	pub.finish()
	deadline := time.Now().Add(20 * time.Second)
	for !pub.drained() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for !sub.covers(pub.topic, pub.ackedNumbers()) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	acked := pub.ackedNumbers()
	if len(acked) < 100 {
		t.Errorf("only %d messages acknowledged: not under load", len(acked))
	}
	missing := 0
	for _, m := range acked {
		if sub.count(pub.topic, m) == 0 {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged messages published on node 0 never reached the subscriber on node 1", missing, len(acked))
	}
	t.Logf("%d acknowledged, %d missing, %d deliveries", len(acked), missing, sub.total(pub.topic))

	// Retained: published on node 0, served to a new subscriber on node 1.
	c0, _, err := dial(mqtt[0], "retainer")
	if err != nil {
		t.Fatal(err)
	}
	defer c0.Close()
	rp := packets.Publish{Retain: true, Topic: []byte("status/gw1"), Payload: []byte("online")}
	if err := c0.send(rp.Append(nil, packets.V311)); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		// A subscriber that came before the message got it live, without
		// the retain flag; ask again until node 1 serves it as retained.
		if got, ok := firstPublish(t, mqtt[1], "status/#"); ok && got.Retain {
			if string(got.Payload) != "online" {
				t.Errorf("retained on node 1: %q, want \"online\"", got.Payload)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the retained message published on node 0 never reached node 1")
		}
	}
}

// awaitRoute publishes probes on node from until a subscriber on node to
// receives one: from then on node from knows node to's interest.
func awaitRoute(t *testing.T, from, to string) {
	t.Helper()
	s, _, err := dial(to, "probe-sub")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sp := packets.Subscribe{PacketID: 1, Subscriptions: []packets.Subscription{{Filter: "probe"}}}
	s.send(sp.Append(nil, packets.V311))
	p, _, err := dial(from, "probe-pub")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		m := packets.Publish{Topic: []byte("probe"), Payload: []byte("?")}
		p.send(m.Append(nil, packets.V311))
		select {
		case pk := <-s.in:
			if packets.Type(pk.first>>4) == packets.PUBLISH {
				return
			}
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("no probe published on %s reached %s", from, to)
}

// firstPublish subscribes to filter on addr with a fresh session and
// returns the first message, if one comes within a moment.
func firstPublish(t *testing.T, addr, filter string) (packets.Publish, bool) {
	t.Helper()
	c, _, err := dial(addr, "reader")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sp := packets.Subscribe{PacketID: 1, Subscriptions: []packets.Subscription{{Filter: filter}}}
	c.send(sp.Append(nil, packets.V311))
	timer := time.After(500 * time.Millisecond)
	for {
		select {
		case pk := <-c.in:
			if packets.Type(pk.first>>4) != packets.PUBLISH {
				continue
			}
			var got packets.Publish
			if err := got.Decode(packets.V311, pk.first&0x0F, pk.body); err != nil {
				t.Fatal(err)
			}
			return got, true
		case <-timer:
			return packets.Publish{}, false
		}
	}
}
