package broker_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fleetmq/fleetmq/broker"
	"github.com/fleetmq/fleetmq/broker/cluster"
	"github.com/fleetmq/fleetmq/broker/internal/mqtttest"
	"github.com/fleetmq/fleetmq/broker/packets"
	"github.com/fleetmq/fleetmq/internal/testtools"
)

type clusterNode struct {
	srv  *broker.Server
	addr string // MQTT
}

// startCluster runs n brokers clustered over loopback routes and waits
// until each has a route to every other.
func startCluster(t *testing.T, n int) []clusterNode {
	return startClusterWith(t, n, broker.Options{})
}

func startClusterWith(t *testing.T, n int, opts broker.Options) []clusterNode {
	t.Helper()
	routes := make([]string, n)
	for i := range routes {
		routes[i] = testtools.FreeAddr(t)
	}
	nodes := make([]clusterNode, n)
	for i := range nodes {
		opts.Cluster = &cluster.Config{
			Name: "acme", NodeName: fmt.Sprintf("acme-%d", i), Listen: routes[i], Peers: routes,
			Username: "route", Password: "s3cret",
		}
		srv, addr := start(t, opts)
		nodes[i] = clusterNode{srv, addr}
	}
	for i, nd := range nodes {
		mqtttest.WaitFor(t, fmt.Sprintf("node %d routed to the %d others", i, n-1), func() bool {
			return nd.srv.ClusterMeshed(n - 1)
		})
	}
	return nodes
}

// awaitInterest publishes probes on probeTopic from pub until sub receives
// one: NATS propagates a new subscription's interest to the other nodes
// asynchronously, as any pub/sub cluster does.
func awaitInterest(t *testing.T, pub, sub *mqtttest.Client, probeTopic string) {
	t.Helper()
	deadline := time.Now().Add(mqtttest.Timeout)
	for time.Now().Before(deadline) {
		pub.Pub(probeTopic, "probe", 0)
		if p, ok := sub.Next(50 * time.Millisecond); ok && p.Type == packets.PUBLISH {
			for { // drain further probes
				if _, ok := sub.Next(100 * time.Millisecond); !ok {
					return
				}
			}
		}
	}
	t.Fatalf("no probe on %s reached the subscriber on another node", probeTopic)
}

// TestClusterCrossNodeDelivery: a message published on one node reaches
// subscribers on the others at their QoS, with its properties, once per
// session however many of its filters match, and in order.
func TestClusterCrossNodeDelivery(t *testing.T) {
	nodes := startCluster(t, 3)
	pubr := mqtttest.MustConnect(t, nodes[0].addr, mqtttest.V5("pub"))
	subr := mqtttest.MustConnect(t, nodes[1].addr, mqtttest.V5("sub"))
	subr.Subscribe(packets.Properties{}, sub("fleet/+/temp", 1), sub("fleet/7/temp", 1), sub("#", 0))
	awaitInterest(t, pubr, subr, "fleet/probe/temp")

	const n = 200
	for i := range n {
		p := pub("fleet/7/temp", fmt.Sprint(i), 1)
		p.Props.ContentType = "text/plain"
		p.Props.User = []packets.UserProperty{{Key: "site", Value: "berlin"}}
		if rc := pubr.Publish(p); rc != packets.Success {
			t.Fatalf("publish %d: reason %v", i, rc)
		}
	}
	for i := range n {
		got := subr.Receive()
		checkPublish(t, got, "fleet/7/temp", fmt.Sprint(i))
		if got.QoS != 1 {
			t.Fatalf("message %d: QoS %d, want 1 (the higher of the matching subscriptions)", i, got.QoS)
		}
		if got.Props.ContentType != "text/plain" || len(got.Props.User) != 1 || got.Props.User[0].Value != "berlin" {
			t.Fatalf("message %d: properties %+v, want content type and user property kept", i, got.Props)
		}
	}
	subr.ExpectNone(200 * time.Millisecond) // one copy each, not one per matching filter

	// The third node has no session that wants these: NATS sent it nothing.
	if got := nodes[2].srv.ClusterStats().Received; got != 0 {
		t.Errorf("node without subscribers received %d messages, want 0", got)
	}
	if got := nodes[1].srv.ClusterStats(); got.Duplicates == 0 {
		t.Errorf("subscriber's node counted no duplicate copies (%+v); the overlapping filters should have made NATS send some", got)
	}
}

// TestClusterConcurrentPublishers: publishers on several connections of
// one node publish at once; a subscriber on another node gets every
// message. (The sequence numbers that recognise copies were once taken
// before publishing, so two goroutines could send them out of order and
// the receiver dropped the later-numbered one that arrived first.)
func TestClusterConcurrentPublishers(t *testing.T) {
	nodes := startCluster(t, 2)
	subr := mqtttest.MustConnect(t, nodes[1].addr, mqtttest.V5("sub"))
	subr.Subscribe(packets.Properties{}, sub("load/#", 1))
	probe := mqtttest.MustConnect(t, nodes[0].addr, mqtttest.V5("probe"))
	awaitInterest(t, probe, subr, "load/probe")

	const publishers, each = 8, 100 // within the subscriber's queue limit (1,000)
	var wg sync.WaitGroup
	for p := range publishers {
		c := mqtttest.MustConnect(t, nodes[0].addr, mqtttest.V5(fmt.Sprint("pub-", p)))
		wg.Go(func() {
			for i := range each {
				if rc := c.Publish(pub(fmt.Sprintf("load/%d", p), fmt.Sprint(i), 1)); rc != packets.Success {
					t.Errorf("publisher %d message %d: reason %v", p, i, rc)
					return
				}
			}
		})
	}
	wg.Wait()
	next := make([]int, publishers) // per publisher, the next message expected
	for range publishers * each {
		got := subr.Receive()
		var p int
		if _, err := fmt.Sscanf(string(got.Topic), "load/%d", &p); err != nil || p < 0 || p >= publishers {
			t.Fatalf("unexpected message on %q", got.Topic)
		}
		checkPublish(t, got, string(got.Topic), fmt.Sprint(next[p]))
		next[p]++
	}
	if st := nodes[1].srv.ClusterStats(); st.Duplicates != 0 {
		t.Errorf("subscriber's node dropped %d messages as copies; with one filter there are none", st.Duplicates)
	}
}

// TestClusterUnsubscribeEndsInterest: once the last session on a node
// drops a filter, the node stops receiving its messages.
func TestClusterUnsubscribeEndsInterest(t *testing.T) {
	nodes := startCluster(t, 2)
	pubr := mqtttest.MustConnect(t, nodes[0].addr, mqtttest.V5("pub"))
	sub := mqtttest.MustConnect(t, nodes[1].addr, mqtttest.V5("sub"))
	sub.Sub("a/b", 0)
	awaitInterest(t, pubr, sub, "a/b")
	sub.Disconnect()

	before := nodes[1].srv.ClusterStats().Received
	mqtttest.WaitFor(t, "the publishing node to stop sending a/b", func() bool {
		pubr.Pub("a/b", "x", 0)
		pubr.Ping() // the publish was routed
		after := nodes[1].srv.ClusterStats().Received
		if after == before {
			return true
		}
		before = after
		return false
	})
	for range 20 {
		pubr.Pub("a/b", "x", 0)
	}
	pubr.Ping()
	time.Sleep(100 * time.Millisecond) // what was published had time to arrive, if it were sent
	if after := nodes[1].srv.ClusterStats().Received; after != before {
		t.Errorf("node without subscribers still received %d messages", after-before)
	}
}

// TestClusterRetained: every node keeps every retained message, so a
// subscriber on any node gets it, and a deletion reaches all of them.
func TestClusterRetained(t *testing.T) {
	nodes := startCluster(t, 3)
	pubr := mqtttest.MustConnect(t, nodes[0].addr, mqtttest.V5("pub"))
	p := pub("status/gw1", "online", 1)
	p.Retain = true
	if rc := pubr.Publish(p); rc != packets.Success {
		t.Fatalf("publish: reason %v", rc)
	}
	for i := 1; i < 3; i++ {
		mqtttest.WaitFor(t, fmt.Sprintf("node %d to hold the retained message", i), func() bool {
			return nodes[i].srv.Stats().Retained == 1
		})
		c := mqtttest.MustConnect(t, nodes[i].addr, mqtttest.V5(fmt.Sprintf("late-%d", i)))
		c.Sub("status/#", 1)
		got := c.Receive()
		checkPublish(t, got, "status/gw1", "online")
		if !got.Retain {
			t.Errorf("node %d: retained message delivered without the retain flag", i)
		}
		c.Disconnect()
	}
	del := pub("status/gw1", "", 1)
	del.Retain = true
	pubr.Publish(del)
	for i := range nodes {
		mqtttest.WaitFor(t, fmt.Sprintf("node %d to drop the retained message", i), func() bool {
			return nodes[i].srv.Stats().Retained == 0
		})
	}
}

// TestClusterSysStaysLocal: each node reports its own $SYS topics; they
// are not forwarded.
func TestClusterSysStaysLocal(t *testing.T) {
	nodes := startClusterWith(t, 2, broker.Options{SysInterval: 10 * time.Millisecond})
	local := mqtttest.MustConnect(t, nodes[0].addr, mqtttest.V5("local"))
	local.Sub("$SYS/broker/uptime", 0)
	local.ExpectPublish() // node 0 publishes its $SYS topics
	remote := mqtttest.MustConnect(t, nodes[1].addr, mqtttest.V5("remote"))
	remote.Sub("$SYS/broker/uptime", 0)
	remote.ExpectPublish()
	if got := nodes[0].srv.ClusterStats().Sent; got != 0 {
		t.Errorf("node 0 sent %d messages with no client publishing, want 0", got)
	}
	if peers := nodes[0].srv.ClusterPeers(); !slices.Equal(peers, []string{"acme-1"}) {
		t.Errorf("peers of node 0: %v, want [acme-1]", peers)
	}
}
