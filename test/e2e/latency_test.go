package e2e_test

import (
	"encoding/json"
	"math"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	mqttv1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
)

// latencyGoal is the design goal for p99 of API write → enforcement. It is
// reported against, never asserted: timings are measurements, not tests.
const latencyGoal = 2 * time.Second

// TestLatency measures how long an ACL edit takes to be enforced on the
// live broker: from the API server accepting the write to a connected
// client's next QoS 1 PUBLISH getting the new decision in its PUBACK. Each
// edit flips the effect of the sample ACL's admin/ rule (deny ↔ allow), so
// the probe topic alternates between refused (0x87) and accepted (0x00).
// The probe publishes every 2 ms; its own round trip on loopback is well
// under a millisecond.
//
// FLEETMQ_E2E_LATENCY_EDITS sets the number of edits (default 24, at
// least 20); FLEETMQ_E2E_LATENCY_OUT names a file to write the JSON
// result line to.
//
//	go test ./test/e2e -run TestLatency -v
func TestLatency(t *testing.T) {
	edits := 24
	if s := os.Getenv("FLEETMQ_E2E_LATENCY_EDITS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 20 {
			t.Fatalf("FLEETMQ_E2E_LATENCY_EDITS=%q: want a number ≥ 20", s)
		}
		edits = n
	}
	tn := newTenant(t, "latency-"+randName())
	probe := mustV5(t, tn.mqttAddr, tn.username, tn.password)
	topic := "tenants/acme/" + tn.username + "/admin/probe"
	if code := probe.publish(t, topic, "0"); code != codeNotAuthorized {
		t.Fatalf("probe topic before any edit: PUBACK %#x, want %#x (the sample denies admin/)", code, codeNotAuthorized)
	}

	acl := &mqttv1alpha1.ACL{ObjectMeta: metav1.ObjectMeta{Namespace: tn.ns, Name: tn.acl}}
	samples := make([]time.Duration, 0, edits)
	var probes int
	for i := range edits {
		allow := i%2 == 0
		effect := mqttv1alpha1.EffectDeny
		if allow {
			effect = mqttv1alpha1.EffectAllow
		}
		edit(t, acl, func(a *mqttv1alpha1.ACL) { a.Spec.Rules[1].Effect = effect })
		start := time.Now()
		for {
			code, err := probe.tryPublish(topic, strconv.Itoa(i))
			probes++
			if err != nil {
				t.Fatalf("edit %d: probe PUBLISH: %v", i, err)
			}
			if accepted(code) == allow {
				break
			}
			if time.Since(start) > waitTimeout {
				t.Fatalf("edit %d (effect %s): PUBACK still %#x after %v", i, effect, code, waitTimeout)
			}
			time.Sleep(2 * time.Millisecond)
		}
		samples = append(samples, time.Since(start))
		// The next edit starts from a settled system, as edits by people do.
		waitACLSynced(t, tn.ns, tn.acl)
	}
	if !probe.connected() {
		t.Errorf("the probe client was disconnected by ACL edits")
	}

	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	var sum time.Duration
	for _, d := range sorted {
		sum += d
	}
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*10) / 10 }
	result := map[string]any{
		"benchmark":   "acl_edit_to_enforcement",
		"edits":       len(sorted),
		"probes":      probes,
		"p50_ms":      ms(percentile(sorted, 50)),
		"p90_ms":      ms(percentile(sorted, 90)),
		"p99_ms":      ms(percentile(sorted, 99)),
		"min_ms":      ms(sorted[0]),
		"max_ms":      ms(sorted[len(sorted)-1]),
		"mean_ms":     ms(sum / time.Duration(len(sorted))),
		"goal_p99_ms": ms(latencyGoal),
		"race":        raceEnabled,
	}
	line, _ := json.Marshal(result)
	t.Logf("ACL edit → enforcement over %d edits: p50 %v, p90 %v, p99 %v (goal ≤ %v), min %v, max %v",
		len(sorted), percentile(sorted, 50).Round(time.Millisecond/10), percentile(sorted, 90).Round(time.Millisecond/10),
		percentile(sorted, 99).Round(time.Millisecond/10), latencyGoal, sorted[0].Round(time.Millisecond/10),
		sorted[len(sorted)-1].Round(time.Millisecond/10))
	t.Logf("samples: %v", samples)
	t.Logf("RESULT %s", line)
	if p99 := percentile(sorted, 99); p99 > latencyGoal {
		t.Logf("NOTE: p99 %v is above the %v goal (a measurement, not a test failure)", p99, latencyGoal)
	}
	if out := os.Getenv("FLEETMQ_E2E_LATENCY_OUT"); out != "" {
		if err := os.WriteFile(out, append(line, '\n'), 0o644); err != nil {
			t.Errorf("write %s: %v", out, err)
		}
	}
}

// percentile is the nearest-rank percentile of sorted samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[max(rank, 1)-1]
}
