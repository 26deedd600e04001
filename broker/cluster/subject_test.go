package cluster

import (
	"fmt"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/fleetmq/fleetmq/broker/topic"
)

var topics = []string{
	"a", "a/b", "a/b/c", "/a", "a/", "/", "//", "a//b",
	"a.b", "a.b/c", "a/b.c", "a*", "a/>", "*", ">", "a b", "a\tb",
	"a%2Eb", "%", "%%", "$SYS/broker/uptime", "$share", "ü/ß", "a/+x", "a/#x",
}

var filters = []string{
	"#", "+", "a/#", "a/+", "+/+", "/+", "+/", "a/+/c", "a.b/#", "a*", "$SYS/#",
	"+/b", "a//b", "/#", "a b", "%", "a/b.c", "ü/#",
}

// Every topic gets its own subject, and every subject is one NATS
// accepts as a literal (no wildcard token, no empty token, no space).
func TestTopicSubjectsDistinctAndValid(t *testing.T) {
	seen := make(map[string]string)
	for _, tp := range topics {
		subj := topicSubject(tp)
		if !server.IsValidLiteralSubject(subj) {
			t.Errorf("topic %q: subject %q is not a valid literal NATS subject", tp, subj)
		}
		if other, dup := seen[subj]; dup {
			t.Errorf("topics %q and %q share the subject %q", other, tp, subj)
		}
		seen[subj] = tp
	}
}

// A node subscribed to a filter's subjects receives every topic the
// filter matches in MQTT (the topic index is the reference); a superset
// is allowed, since the receiving node matches again.
func TestFilterSubjectsCoverMQTTMatches(t *testing.T) {
	for _, f := range filters {
		ix := topic.NewIndex[int](nil, nil)
		ix.Subscribe(1, topic.Subscription{Filter: f})
		subjects := filterSubjects(f)
		for _, s := range subjects {
			if !server.IsValidSubject(s) {
				t.Errorf("filter %q: subject %q is not valid in NATS", f, s)
			}
		}
		for _, tp := range topics {
			if len(ix.Match([]byte(tp), nil)) == 0 {
				continue
			}
			subj := topicSubject(tp)
			covered := false
			for _, s := range subjects {
				covered = covered || server.SubjectMatchesFilter(subj, s)
			}
			if !covered {
				t.Errorf("filter %q matches topic %q in MQTT, but none of %v matches its subject %q", f, tp, subjects, subj)
			}
		}
	}
}

func TestSubjectExamples(t *testing.T) {
	got := fmt.Sprint(topicSubject("site.1/temp/"), " ", filterSubjects("site.1/#"))
	if want := "fleetmq.m.site%2E1.temp.% [fleetmq.m.site%2E1.> fleetmq.m.site%2E1]"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
