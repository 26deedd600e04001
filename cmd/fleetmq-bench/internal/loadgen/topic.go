package loadgen

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/fleetmq/fleetmq/broker/packets"
)

// Pattern is a topic name or filter template: %i expands to the client's
// index (0-based), %c to its client identifier, %% to a percent sign.
type Pattern struct {
	src   string
	parts []part
}

type part struct {
	lit  string
	kind byte // 0 literal, 'i' index, 'c' client id
}

// ParsePattern compiles a template; an unknown %-verb or a trailing % is
// an error.
func ParsePattern(s string) (Pattern, error) {
	p := Pattern{src: s}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			p.parts = append(p.parts, part{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			lit.WriteByte(s[i])
			continue
		}
		if i+1 == len(s) {
			return Pattern{}, fmt.Errorf("topic pattern %q: trailing %%", s)
		}
		i++
		switch s[i] {
		case '%':
			lit.WriteByte('%')
		case 'i', 'c':
			flush()
			p.parts = append(p.parts, part{kind: s[i]})
		default:
			return Pattern{}, fmt.Errorf("topic pattern %q: unknown verb %%%c (want %%i, %%c or %%%%)", s, s[i])
		}
	}
	flush()
	if len(p.parts) == 0 {
		return Pattern{}, fmt.Errorf("topic pattern %q: empty", s)
	}
	return p, nil
}

// MustPattern is ParsePattern for constants.
func MustPattern(s string) Pattern {
	p, err := ParsePattern(s)
	if err != nil {
		panic(err)
	}
	return p
}

// String returns the template as written.
func (p Pattern) String() string { return p.src }

// IsZero reports whether p is unset.
func (p Pattern) IsZero() bool { return p.parts == nil }

// Expand returns the topic of client index i with identifier id.
func (p Pattern) Expand(i int, id string) string {
	if len(p.parts) == 1 && p.parts[0].kind == 0 {
		return p.parts[0].lit
	}
	var b []byte
	for _, pt := range p.parts {
		switch pt.kind {
		case 'i':
			b = strconv.AppendInt(b, int64(i), 10)
		case 'c':
			b = append(b, id...)
		default:
			b = append(b, pt.lit...)
		}
	}
	return string(b)
}

// CheckName reports whether p expands to a valid topic name (no
// wildcards), trying index 0 and client id "x".
func (p Pattern) CheckName() error {
	if t := p.Expand(0, "x"); !packets.ValidTopicName([]byte(t)) {
		return fmt.Errorf("topic %q: not a valid topic name (wildcards are for subscriptions)", p.src)
	}
	return nil
}

// CheckFilter reports whether p expands to a valid topic filter.
func (p Pattern) CheckFilter() error {
	if t := p.Expand(0, "x"); !packets.ValidTopicFilter(t) {
		return fmt.Errorf("topic filter %q: not a valid filter", p.src)
	}
	return nil
}
