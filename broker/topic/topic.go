// Package topic is the broker's subscription index and retained-message
// store: MQTT topic filters in a trie, matched against topic names.
//
// It knows nothing of sockets or sessions; the subscriber is any comparable
// key. Filter and topic syntax (wildcard placement, UTF-8, length) is
// validated by the caller before anything reaches this package; here a
// malformed wildcard ("a/b#", "a/#/b") is stored as a literal level and, since
// topic names cannot contain '+' or '#' [MQTT-4.7.1-1], never matches.
package topic

import (
	"errors"
	"strings"
)

// Sentinel errors returned by ParseShared and ValidFilter.
var (
	ErrShareName   = errors.New("topic: invalid share name")
	ErrShareFilter = errors.New("topic: shared subscription without a topic filter")
	ErrFilter      = errors.New("topic: invalid topic filter")
	ErrTopicName   = errors.New("topic: invalid topic name")
)

const sharePrefix = "$share/"

// Subscription is what the index stores for one (key, share group, filter).
// Stored values are immutable once inserted (Subscribe with the same
// key/group/filter replaces the pointer).
type Subscription struct {
	Filter            string // the filter without any $share/{group}/ prefix
	Group             string // shared-subscription group name, "" when not shared
	QoS               byte
	NoLocal           bool
	RetainAsPublished bool
	RetainHandling    byte
	ID                uint32 // v5 subscription identifier, 0 = none
}

// Match is one subscription selected for a topic name.
type Match[K comparable] struct {
	Key K
	Sub *Subscription
}

// ParseShared splits "$share/{group}/{filter}" (MQTT 5.0 §4.8.2); shared=false
// for a plain filter. err when the share name is empty or contains + or #
// [MQTT-4.8.2-1] [MQTT-4.8.2-2], or no filter follows. The prefix is
// case-sensitive, and "$share" without a slash is a plain filter.
func ParseShared(filter string) (group, f string, shared bool, err error) {
	rest, ok := strings.CutPrefix(filter, sharePrefix)
	if !ok {
		return "", filter, false, nil
	}
	group, f, ok = strings.Cut(rest, "/")
	switch {
	case group == "" || strings.ContainsAny(group, "+#"):
		return "", "", true, ErrShareName
	case !ok || f == "":
		return "", "", true, ErrShareFilter
	}
	return group, f, true, nil
}

// ValidFilter reports whether filter is a well-formed topic filter: at least
// one character [MQTT-4.7.3-1], no NUL [MQTT-4.7.3-2], '+' occupying a whole
// level [MQTT-4.7.1-3], '#' alone in the last level [MQTT-4.7.1-2].
func ValidFilter(filter string) error {
	if filter == "" || strings.IndexByte(filter, 0) >= 0 {
		return ErrFilter
	}
	for f := filter; ; {
		level, rest, more := strings.Cut(f, "/")
		if len(level) > 1 && strings.ContainsAny(level, "+#") {
			return ErrFilter
		}
		if level == "#" && more {
			return ErrFilter
		}
		if !more {
			return nil
		}
		f = rest
	}
}

// ValidTopicName reports whether topic is a well-formed topic name: at least
// one character, no NUL [MQTT-4.7.3-1] [MQTT-4.7.3-2] and no wildcard
// [MQTT-3.3.2-2].
func ValidTopicName(topic string) error {
	if topic == "" || strings.ContainsAny(topic, "+#\x00") {
		return ErrTopicName
	}
	return nil
}

// MatchFilter reports whether filter matches topic name (for tests and for
// one-off checks). It follows the same rules as Index.Match.
func MatchFilter(filter, topic string) bool {
	// [MQTT-4.7.2-1] a filter starting with a wildcard does not match a
	// topic name starting with '$'.
	if dollar(topic) && filter != "" && (filter[0] == '#' || filter[0] == '+') {
		return false
	}
	for {
		fl, frest, fmore := strings.Cut(filter, "/")
		if fl == "#" && !fmore {
			// '#' matches the parent and any number of children (§4.7.1.2).
			return true
		}
		tl, trest, tmore := strings.Cut(topic, "/")
		if fl != "+" && fl != tl {
			return false
		}
		switch {
		case !fmore:
			return !tmore
		case !tmore:
			// Topic exhausted: only a trailing "/#" still matches ("a/#" matches "a").
			return frest == "#"
		}
		filter, topic = frest, trest
	}
}

func dollar(topic string) bool { return topic != "" && topic[0] == '$' }
