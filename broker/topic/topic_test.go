package topic

import (
	"errors"
	"testing"
)

func TestMatchFilter(t *testing.T) {
	tests := []struct {
		name, filter, topic string
		want                bool
	}{
		{"exact", "a/b/c", "a/b/c", true},
		{"exact longer topic", "a/b", "a/b/c", false},
		{"exact shorter topic", "a/b/c", "a/b", false},
		{"case-sensitive", "A/b", "a/b", false},
		{"no normalisation of trailing slash", "a/b", "a/b/", false},
		// §4.7.1.3: '+' matches exactly one level.
		{"plus one level", "a/+/c", "a/b/c", true},
		{"plus empty level", "a/+/c", "a//c", true},
		{"plus not two levels", "a/+/c", "a/b/x/c", false},
		{"plus not zero levels", "a/+", "a", false},
		{"plus last", "a/+", "a/b", true},
		{"plus trailing empty", "a/+", "a/", true},
		{"plus alone", "+", "a", true},
		{"plus alone vs two levels", "+", "a/b", false},
		{"plus leading empty level", "+/a", "/a", true},
		{"plus plus", "+/+", "/", true},
		// §4.7.1.2: '#' matches the parent and any number of children.
		{"hash children", "a/#", "a/b/c", true},
		{"hash parent", "a/#", "a", true},
		{"hash one child", "a/#", "a/b", true},
		{"hash empty child", "a/#", "a/", true},
		{"hash other branch", "a/#", "b/a", false},
		{"hash alone", "#", "a/b/c", true},
		{"hash after plus", "+/#", "a", true},
		{"hash deep parent", "a/b/#", "a", false},
		// Empty levels are real levels.
		{"empty levels", "a//b", "a//b", true},
		{"empty level differs", "a//b", "a/b", false},
		{"leading slash", "/a", "/a", true},
		{"leading slash vs none", "/a", "a", false},
		{"slash hash", "/#", "/a", true},
		{"slash hash vs no slash", "/#", "a", false},
		// [MQTT-4.7.2-1] wildcards at the first level do not match '$' topics.
		{"dollar hash", "#", "$SYS/x", false},
		{"dollar plus", "+/x", "$SYS/x", false},
		{"dollar plus hash", "+/#", "$SYS", false},
		{"dollar literal hash", "$SYS/#", "$SYS/x", true},
		{"dollar literal hash parent", "$SYS/#", "$SYS", true},
		{"dollar literal plus", "$SYS/+", "$SYS/x", true},
		{"dollar not first level", "+/$x", "a/$x", true},
		{"dollar deeper hash", "a/#", "a/$x", true},
		{"malformed hash is literal", "a/#/b", "a/x/b", false},
		{"malformed plus is literal", "a/b+", "a/bc", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MatchFilter(tt.filter, tt.topic); got != tt.want {
				t.Errorf("MatchFilter(%q, %q) = %v, want %v", tt.filter, tt.topic, got, tt.want)
			}
		})
	}
}

func TestParseShared(t *testing.T) {
	tests := []struct {
		in            string
		group, filter string
		shared        bool
		err           error
	}{
		{"a/b", "", "a/b", false, nil},
		{"#", "", "#", false, nil},
		{"$share/g/a/b", "g", "a/b", true, nil},
		{"$share/g/#", "g", "#", true, nil},
		{"$share/g//a", "g", "/a", true, nil},
		{"$share/g/$SYS/x", "g", "$SYS/x", true, nil},
		{"$share//a", "", "", true, ErrShareName},
		{"$share/g+/a", "", "", true, ErrShareName},
		{"$share/#/a", "", "", true, ErrShareName},
		{"$share/g", "", "", true, ErrShareFilter},
		{"$share/g/", "", "", true, ErrShareFilter},
		{"$share/", "", "", true, ErrShareName},
		{"$sharex/g/a", "", "$sharex/g/a", false, nil},
		{"$SHARE/g/a", "", "$SHARE/g/a", false, nil}, // case-sensitive
		{"$share", "", "$share", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			group, f, shared, err := ParseShared(tt.in)
			if !errors.Is(err, tt.err) {
				t.Fatalf("ParseShared(%q) err = %v, want %v", tt.in, err, tt.err)
			}
			if group != tt.group || f != tt.filter || shared != tt.shared {
				t.Errorf("ParseShared(%q) = (%q, %q, %v), want (%q, %q, %v)",
					tt.in, group, f, shared, tt.group, tt.filter, tt.shared)
			}
		})
	}
}

func TestValidFilter(t *testing.T) {
	tests := []struct {
		filter string
		ok     bool
	}{
		{"a/b", true}, {"#", true}, {"+", true}, {"a/+/#", true}, {"/", true},
		{"+/+", true}, {"$SYS/#", true},
		{"", false}, {"a/#/b", false}, {"a#", false}, {"a/b+", false},
		{"+a", false}, {"##", false}, {"a\x00b", false},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			if got := ValidFilter(tt.filter) == nil; got != tt.ok {
				t.Errorf("ValidFilter(%q) ok = %v, want %v", tt.filter, got, tt.ok)
			}
		})
	}
}

func TestValidTopicName(t *testing.T) {
	tests := []struct {
		topic string
		ok    bool
	}{
		{"a/b", true}, {"/", true}, {"$SYS/x", true}, {"a//b", true},
		{"", false}, {"a/+", false}, {"a/#", false}, {"a\x00", false},
	}
	for _, tt := range tests {
		t.Run(tt.topic, func(t *testing.T) {
			if got := ValidTopicName(tt.topic) == nil; got != tt.ok {
				t.Errorf("ValidTopicName(%q) ok = %v, want %v", tt.topic, got, tt.ok)
			}
		})
	}
}
