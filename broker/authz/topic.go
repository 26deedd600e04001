package authz

import (
	"strings"
	"unicode/utf8"
)

// checkPattern returns why t is not a valid rule topic pattern, or "".
func checkPattern(t string) string {
	switch {
	case t == "":
		return "must not be empty"
	case len(t) > 65535:
		return "longer than 65535 bytes"
	case !utf8.ValidString(t):
		return "must be valid UTF-8"
	case strings.IndexByte(t, 0) >= 0:
		return "must not contain NUL"
	}
	rest := t
	for {
		lvl, next, more := strings.Cut(rest, "/")
		if strings.IndexByte(lvl, '#') >= 0 {
			if lvl != "#" {
				return "'#' must be a whole level"
			}
			if more {
				return "'#' must be the last level"
			}
		}
		if strings.IndexByte(lvl, '+') >= 0 && lvl != "+" {
			return "'+' must be a whole level"
		}
		if !more {
			return ""
		}
		rest = next
	}
}

// cut splits the first level off s.
func cut(s string) (level, rest string, more bool) {
	i := strings.IndexByte(s, '/')
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+1:], true
}

// validTopicName reports whether s can be a PUBLISH topic name: not empty,
// no wildcards.
func validTopicName(s string) bool {
	return s != "" && strings.IndexByte(s, '+') < 0 && strings.IndexByte(s, '#') < 0
}

// validFilter reports whether s is a syntactically valid topic filter.
func validFilter(s string) bool {
	if s == "" {
		return false
	}
	for {
		lvl, rest, more := cut(s)
		if len(lvl) != 1 && (strings.IndexByte(lvl, '+') >= 0 || strings.IndexByte(lvl, '#') >= 0) {
			return false
		}
		if lvl == "#" && more {
			return false
		}
		if !more {
			return true
		}
		s = rest
	}
}

// template is a topic level that contains %u or %c, split into literal and
// variable parts: "dev-%c" is [lit "dev-", var c].
type template struct {
	raw   string
	parts []tmplPart
}

type tmplPart struct {
	lit string
	v   byte // 0 for a literal, 'u' for the username, 'c' for the client id
}

// isTemplate reports whether a pattern level needs expansion.
func isTemplate(lvl string) bool {
	return strings.Contains(lvl, "%u") || strings.Contains(lvl, "%c")
}

func parseTemplate(lvl string) *template {
	t := &template{raw: lvl}
	lit := 0
	for i := 0; i+1 < len(lvl); i++ {
		if lvl[i] != '%' || (lvl[i+1] != 'u' && lvl[i+1] != 'c') {
			continue
		}
		if lit < i {
			t.parts = append(t.parts, tmplPart{lit: lvl[lit:i]})
		}
		t.parts = append(t.parts, tmplPart{v: lvl[i+1]})
		i++
		lit = i + 1
	}
	if lit < len(lvl) {
		t.parts = append(t.parts, tmplPart{lit: lvl[lit:]})
	}
	return t
}

// match reports whether level equals the template expanded for the
// identity. An anonymous identity never matches %u; an empty client id
// never matches %c.
func (t *template) match(level string, id *Identity) bool {
	for _, p := range t.parts {
		s := p.lit
		switch p.v {
		case 'u':
			if id.anonymous || id.username == "" {
				return false
			}
			s = id.username
		case 'c':
			if id.clientID == "" {
				return false
			}
			s = id.clientID
		}
		if len(level) < len(s) || level[:len(s)] != s {
			return false
		}
		level = level[len(s):]
	}
	return level == ""
}
