package admin_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fleetmq/fleetmq/broker/authz"
)

// TestUserLimitsThroughAPI: a bundle with user limits, pushed as JSON
// through PUT /v1/auth, is enforced over MQTT 5 and counted on /metrics as
// fleetmq_quota_exceeded_total{quota="connections"|"publish_rate"}; a
// bundle with a bad limit is refused with a message naming it, and the
// one in force stays.
func TestUserLimitsThroughAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	u := user(t, "meter")
	u.Limits = &authz.UserLimits{MaxConnections: 1, PublishRate: &authz.PublishRate{MessagesPerSecond: 1, Burst: 1}}
	b := authz.Bundle{Revision: 1, Users: []authz.User{u}, Rules: []authz.Rule{rule(authz.EffectAllow, []string{"meter"}, pubSub, "m/#")}}
	if code, body := e.put(t, encode(t, b), ""); code != http.StatusOK {
		t.Fatalf("PUT: %d %s", code, body)
	}

	c := mustV5(t, e.addr, "m1", "meter")
	_, ack, err := dialV5(t, e.addr, v5Opts{id: "m2", username: "meter", password: "meter-pw"})
	if err == nil || ack == nil || ack.ReasonCode != 0x97 {
		t.Fatalf("second connection: CONNACK %+v, err %v; want 0x97", ack, err)
	}
	if got := metric(t, e.metrics, "fleetmq_quota_exceeded_total", "connections"); got != 1 {
		t.Errorf(`fleetmq_quota_exceeded_total{quota="connections"} = %v, want 1`, got)
	}

	start := time.Now()
	for i := 0; ; i++ {
		if i > 2+int(time.Since(start).Seconds()) {
			t.Fatalf("%d PUBLISHes accepted at 1 a second with burst 1", i)
		}
		if code := c.publish(t, "m/x", "v"); code == 0x97 {
			break
		}
	}
	if got := metric(t, e.metrics, "fleetmq_quota_exceeded_total", "publish_rate"); got != 1 {
		t.Errorf(`fleetmq_quota_exceeded_total{quota="publish_rate"} = %v, want 1`, got)
	}

	b.Revision = 2
	b.Users[0].Limits = &authz.UserLimits{PublishRate: &authz.PublishRate{MessagesPerSecond: 0}}
	code, body := e.put(t, encode(t, b), "")
	if code != http.StatusBadRequest || !strings.Contains(string(body), "limits.publishRate.messagesPerSecond 0") {
		t.Errorf("PUT with a zero rate: %d %s, want 400 naming limits.publishRate.messagesPerSecond", code, body)
	}
	if a := e.current(t); a.Revision != 1 {
		t.Errorf("revision in force %d, want 1", a.Revision)
	}
}
