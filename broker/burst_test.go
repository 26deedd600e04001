package broker_test

import (
	"testing"
	"time"

	"github.com/fleetmq/fleetmq/broker/internal/mqtttest"
	"github.com/fleetmq/fleetmq/broker/packets"
)

// A packet that takes longer than the idle-park interval (1 s) to arrive
// must still be read: a connection mid-packet is active, not idle. The
// rest of the packet arrives after a pause, then a second packet after a
// longer idle gap (the connection is parked in between on Linux).
func TestSlowPacketAndIdleGaps(t *testing.T) {
	t.Parallel()
	_, addr := startDefault(t)
	sub := mqtttest.MustConnect(t, addr, mqtttest.V311("slow-sub", true))
	sub.Sub("slow/#", 1)
	pc := mqtttest.MustConnect(t, addr, mqtttest.V311("slow-pub", true))

	p := pub("slow/a", "split across a pause", 1)
	p.PacketID = 1
	wire := p.Append(nil, packets.V311)
	pc.Write(wire[:5])
	time.Sleep(1500 * time.Millisecond)
	pc.Write(wire[5:])
	pc.ExpectAck(packets.PUBACK, 1)
	checkPublish(t, sub.Receive(), "slow/a", "split across a pause")

	time.Sleep(1500 * time.Millisecond) // both connections idle long enough to park
	pc.Pub("slow/b", "after idling", 1)
	checkPublish(t, sub.Receive(), "slow/b", "after idling")
}
