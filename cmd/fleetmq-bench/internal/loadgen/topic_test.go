package loadgen

import (
	"strings"
	"testing"
)

func TestPattern(t *testing.T) {
	tests := []struct {
		pattern string
		idx     int
		id      string
		want    string
	}{
		{"bench/%i", 7, "c7", "bench/7"},
		{"bench/pairs/%i/x", 0, "c0", "bench/pairs/0/x"},
		{"%c/%i", 12, "fmqb-p12", "fmqb-p12/12"},
		{"fixed/topic", 3, "c3", "fixed/topic"},
		{"100%%/%i", 1, "c1", "100%/1"},
		{"%i%i", 42, "c", "4242"},
		{"bench/+/%i", 5, "c", "bench/+/5"},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			p, err := ParsePattern(tt.pattern)
			if err != nil {
				t.Fatalf("ParsePattern: %v", err)
			}
			if got := p.Expand(tt.idx, tt.id); got != tt.want {
				t.Errorf("Expand(%d, %q) = %q, want %q", tt.idx, tt.id, got, tt.want)
			}
			if p.String() != tt.pattern {
				t.Errorf("String() = %q, want %q", p.String(), tt.pattern)
			}
		})
	}
}

func TestPatternErrors(t *testing.T) {
	tests := []struct{ pattern, want string }{
		{"", "empty"},
		{"bench/%", "trailing"},
		{"bench/%x", "unknown verb %x"},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			_, err := ParsePattern(tt.pattern)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParsePattern(%q) error = %v, want one containing %q", tt.pattern, err, tt.want)
			}
		})
	}
}

func TestPatternChecks(t *testing.T) {
	tests := []struct {
		pattern          string
		nameOK, filterOK bool
	}{
		{"bench/%i", true, true},
		{"bench/+", false, true},
		{"bench/#", false, true},
		{"bench/#/x", false, false},
		{"a+b/%i", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			p := MustPattern(tt.pattern)
			if err := p.CheckName(); (err == nil) != tt.nameOK {
				t.Errorf("CheckName() = %v, want ok=%v", err, tt.nameOK)
			}
			if err := p.CheckFilter(); (err == nil) != tt.filterOK {
				t.Errorf("CheckFilter() = %v, want ok=%v", err, tt.filterOK)
			}
		})
	}
}
