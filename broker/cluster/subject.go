package cluster

import (
	"strings"
)

// Messages travel between nodes on NATS subjects made from their MQTT
// topics, so that NATS's own interest propagation decides which node
// gets what: a node subscribes to the subjects of its local sessions'
// filters and receives only matching topics.
//
// An MQTT topic level becomes a subject token. Levels may hold anything
// but '/', while tokens may not be empty nor hold '.', '*', '>' or white
// space, so those bytes are escaped as '%' and two hex digits ('%' itself
// too), and an empty level becomes a lone "%" (no escape is one byte long,
// so it cannot be mistaken for one). Wildcards map one to one: '+' is '*'
// and '#' is '>'. The mapping is only used for interest: the receiving node
// matches each message against its own topic index again, so NATS may
// deliver a superset (a '+' first level also matching '$' topics) without
// harm.
const (
	messagePrefix = "fleetmq.m."
	// retainedSubject carries every retained message and deletion to every
	// node: each keeps the whole retained set (routing it to the local
	// subscribers too), whatever its sessions subscribe to.
	retainedSubject = "fleetmq.r"
)

const hexDigits = "0123456789ABCDEF"

// escapeLevel appends the subject token of one topic level to b.
func escapeLevel(b *strings.Builder, level string) {
	if level == "" {
		b.WriteByte('%')
		return
	}
	for i := 0; i < len(level); i++ {
		c := level[i]
		switch {
		case c == '%' || c == '.' || c == '*' || c == '>' || c <= ' ' || c == 0x7f:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0x0f])
		default:
			b.WriteByte(c)
		}
	}
}

// topicSubject is the subject a message published on topic travels on.
func topicSubject(topic string) string {
	var b strings.Builder
	b.Grow(len(messagePrefix) + len(topic) + 8)
	b.WriteString(messagePrefix)
	for i, level := range strings.Split(topic, "/") {
		if i > 0 {
			b.WriteByte('.')
		}
		escapeLevel(&b, level)
	}
	return b.String()
}

// filterSubjects are the subjects a node subscribes to for an MQTT topic
// filter. A trailing '#' also matches its parent level ("a/#" matches
// "a"), which NATS's '>' does not, so it takes a second subject.
func filterSubjects(filter string) []string {
	levels := strings.Split(filter, "/")
	var b strings.Builder
	b.WriteString(messagePrefix)
	for i, level := range levels {
		if i > 0 {
			b.WriteByte('.')
		}
		switch level {
		case "+":
			b.WriteByte('*')
		case "#":
			b.WriteByte('>')
		default:
			escapeLevel(&b, level)
		}
	}
	out := []string{b.String()}
	if n := len(levels); n > 1 && levels[n-1] == "#" {
		parent := strings.Join(levels[:n-1], "/")
		out = append(out, filterSubjects(parent)...)
	}
	return out
}
