package broker_test

import (
	"testing"
	"time"

	"github.com/fleetmq/fleetmq/broker"
	"github.com/fleetmq/fleetmq/broker/internal/mqtttest"
	"github.com/fleetmq/fleetmq/broker/packets"
)

// start runs a broker with opts (anonymous access on, $SYS off unless
// opts.SysInterval says otherwise) on a loopback port for the test.
func start(t testing.TB, opts broker.Options) (*broker.Server, string) {
	t.Helper()
	opts.AllowAnonymous = true
	if opts.SysInterval == 0 {
		opts.SysInterval = -1
	}
	srv, err := broker.New(opts)
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	return srv, mqtttest.Serve(t, srv)
}

// startDefault runs a broker with default limits.
func startDefault(t testing.TB) (*broker.Server, string) {
	t.Helper()
	return start(t, broker.Options{})
}

// pub builds a PUBLISH.
func pub(topic, payload string, qos byte) *packets.Publish {
	return &packets.Publish{Topic: []byte(topic), Payload: []byte(payload), QoS: qos}
}

// sub builds one subscription of a SUBSCRIBE.
func sub(filter string, qos byte) packets.Subscription {
	return packets.Subscription{Filter: filter, SubOptions: packets.SubOptions{QoS: qos}}
}

// withExpiry is a clean-start 5.0 CONNECT with a session expiry interval.
func withExpiry(id string, clean bool, expiry uint32) *packets.Connect {
	cp := mqtttest.V5(id)
	cp.CleanStart = clean
	cp.Props.SessionExpiry, cp.Props.HasSessionExpiry = expiry, true
	return cp
}

// checkPublish fails unless p has topic and payload.
func checkPublish(t testing.TB, p *packets.Publish, topic, payload string) {
	t.Helper()
	if string(p.Topic) != topic || string(p.Payload) != payload {
		t.Fatalf("got PUBLISH %q %q, want %q %q", p.Topic, p.Payload, topic, payload)
	}
}

// bystanderWorks checks that a connected pair of clients still exchange a
// message: a bad client must not disturb anyone else.
func bystanderWorks(t testing.TB, subscriber, publisher *mqtttest.Client, topic string) {
	t.Helper()
	publisher.Pub(topic, "still here", 1)
	p := subscriber.Receive()
	checkPublish(t, p, topic, "still here")
}

const quiet = 150 * time.Millisecond // how long "nothing arrives" is watched for
