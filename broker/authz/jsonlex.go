package authz

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The JSON lexer behind Parse: the decoder's cursor over the input and
// all that does not depend on the Bundle schema (parse.go): whitespace,
// literals, strings and their escapes, integers, the members of an object
// and the elements of an array, and errors that say where (byte offset,
// line, JSON path) in encoding/json's words.
//
// Allocations are per bundle, not per value: users and rules are sized by a
// look-ahead count; strings are copied into shared 64 KiB chunks (a chunk
// stays alive while any of its strings does, and Policy keeps most of them
// anyway); and lists of strings and actions are carved from shared slabs.

// ParseError is a problem Parse found in a bundle document. Parse wraps it
// (errors.As finds it).
type ParseError struct {
	// Offset is the byte offset in the input at which the problem was
	// found; Line is its 1-based line.
	Offset int
	Line   int
	// Path is the JSON path of the value in question, e.g.
	// "users[3].groups[0]", or "" for the top-level object. For an unknown
	// or duplicate field it is the path of the object holding it.
	Path string
	// Msg says what is wrong, e.g. `unknown field "passwordHas"`.
	Msg string
}

func (e *ParseError) Error() string {
	var b strings.Builder
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	fmt.Fprintf(&b, "%s (byte offset %d, line %d)", e.Msg, e.Offset, e.Line)
	return b.String()
}

// pathElem is one level of the path to the value being decoded: a field,
// and the index within it when it is a list element (else -1).
type pathElem struct {
	field field
	index int32
}

// arenaChunk is the size of the blocks strings are copied into.
const arenaChunk = 64 << 10

// slabChunk is how many list elements a slab allocates at a time.
const slabChunk = 1024

// decoder holds the state of one Parse.
type decoder struct {
	data []byte
	pos  int

	path  [maxDepth]pathElem
	depth int

	arena   strings.Builder // current chunk of string storage
	scratch []byte          // unescaped strings
	strSlab slab[string]
	actSlab slab[Action]
}

// slab hands out small slices of a shared backing array.
type slab[T any] struct{ buf []T }

// push appends v to the list being built at s.buf[*start:], moving that
// list to a new block when the current one is full.
func (s *slab[T]) push(start *int, v T) {
	if len(s.buf) == cap(s.buf) {
		part := s.buf[*start:]
		block := make([]T, 0, max(slabChunk, 2*len(part)))
		s.buf = append(block, part...)
		*start = 0
	}
	s.buf = append(s.buf, v)
}

// list returns the list built from start, with capacity equal to its length
// so that appending to it never writes into a neighbour.
func (s *slab[T]) list(start int) []T {
	return s.buf[start:len(s.buf):len(s.buf)]
}

// grow extends list by one zero element, doubling its capacity when it is
// full (only when countObjects missed elements, e.g. nulls).
func grow[T any](list []T) []T {
	if len(list) == cap(list) {
		bigger := make([]T, len(list), max(16, 2*cap(list)))
		copy(bigger, list)
		list = bigger
	}
	return list[:len(list)+1]
}

// countObjects counts the objects directly inside the array whose first
// element starts at d.pos, looking ahead without decoding, so that users
// and rules are allocated once. It is only a capacity hint: it stops at the
// end of the array or of the input and ignores anything malformed, which
// decoding then reports. The hint never costs more memory than a
// well-formed array of as many empty objects, which the input could have
// held instead.
func (d *decoder) countObjects() int {
	data := d.data
	depth, n := 0, 0
	for i := d.pos; i < len(data); i++ {
		switch data[i] {
		case '"':
			i++
			for i+8 <= len(data) && !quoteOrBackslash8(binary.LittleEndian.Uint64(data[i:])) {
				i += 8
			}
			for i < len(data) && data[i] != '"' {
				if data[i] == '\\' {
					i++
				}
				i++
			}
		case '{':
			if depth == 0 {
				n++
			}
			depth++
		case '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return n
			}
			depth--
		}
	}
	return n
}

// Errors.

func (d *decoder) errorf(format string, args ...any) error {
	return d.errorAt(d.pos, format, args...)
}

func (d *decoder) errorAt(off int, format string, args ...any) error {
	var p strings.Builder
	for i := range d.depth {
		e := d.path[i]
		if i > 0 {
			p.WriteByte('.')
		}
		p.WriteString(fieldNames[e.field])
		if e.index >= 0 {
			p.WriteByte('[')
			p.WriteString(strconv.Itoa(int(e.index)))
			p.WriteByte(']')
		}
	}
	return &ParseError{
		Offset: off,
		Line:   1 + bytes.Count(d.data[:off], []byte{'\n'}),
		Path:   p.String(),
		Msg:    fmt.Sprintf(format, args...),
	}
}

// syntaxError reports the byte at d.pos (or the end of input) as
// unexpected, in encoding/json's words.
func (d *decoder) syntaxError(context string) error {
	if d.pos >= len(d.data) {
		return d.errorf("unexpected end of JSON input")
	}
	return d.errorf("invalid character %s %s", quoteChar(d.data[d.pos]), context)
}

func quoteChar(c byte) string {
	switch c {
	case '\'':
		return `'\''`
	case '"':
		return `'"'`
	}
	s := strconv.Quote(string(rune(c)))
	return "'" + s[1:len(s)-1] + "'"
}

// kind names the JSON value starting at d.pos, for type errors, or returns
// "" when no value starts there.
func (d *decoder) kind() string {
	if d.pos >= len(d.data) {
		return ""
	}
	switch c := d.data[d.pos]; {
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == '"':
		return "a string"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	case c == '-' || c >= '0' && c <= '9':
		return "a number"
	}
	return ""
}

// typeError reports that the value at d.pos is not what the schema wants,
// or a syntax error when it is not a JSON value at all.
func (d *decoder) typeError(want string) error {
	k := d.kind()
	if k == "" {
		return d.syntaxError("looking for beginning of value")
	}
	// A literal must be spelled right before we call it a boolean or null.
	if c := d.data[d.pos]; (c == 't' || c == 'f' || c == 'n') && !d.hasLiteral() {
		return d.literalError()
	}
	return d.errorf("expected %s, found %s", want, k)
}

func (d *decoder) hasLiteral() bool {
	rest := d.data[d.pos:]
	return bytes.HasPrefix(rest, []byte("true")) || bytes.HasPrefix(rest, []byte("false")) || bytes.HasPrefix(rest, []byte("null"))
}

// literalError reports the first wrong byte of a misspelt true, false or
// null at d.pos.
func (d *decoder) literalError() error {
	var lit string
	switch d.data[d.pos] {
	case 't':
		lit = "true"
	case 'f':
		lit = "false"
	default:
		lit = "null"
	}
	for i := 1; i < len(lit); i++ {
		d.pos++
		if d.pos >= len(d.data) || d.data[d.pos] != lit[i] {
			return d.syntaxError("in literal " + lit + " (expecting " + quoteChar(lit[i]) + ")")
		}
	}
	panic("unreachable")
}

// Paths.

func (d *decoder) push(f field) {
	d.path[d.depth] = pathElem{field: f, index: -1}
	d.depth++
}

func (d *decoder) pop() { d.depth-- }

func (d *decoder) setIndex(i int) { d.path[d.depth-1].index = int32(i) }

// Tokens.

// ws skips JSON whitespace.
func (d *decoder) ws() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// null consumes a null literal at d.pos (after whitespace) and reports
// whether there was one.
func (d *decoder) null() bool {
	if d.pos+4 <= len(d.data) && string(d.data[d.pos:d.pos+4]) == "null" {
		d.pos += 4
		return true
	}
	return false
}

// objectStart consumes the '{' of an object or a null (null is true).
func (d *decoder) objectStart(want string) (null bool, err error) {
	d.ws()
	if d.null() {
		return true, nil
	}
	if d.pos >= len(d.data) || d.data[d.pos] != '{' {
		return false, d.typeError(want)
	}
	d.pos++
	return false, nil
}

// key reads the next key of an object up to and including its colon; ok is
// false at the closing brace, which it consumes. first tells whether a
// member was read before. The key is valid until the next string is read.
func (d *decoder) key(first bool) (key []byte, start int, ok bool, err error) {
	d.ws()
	if d.pos >= len(d.data) {
		return nil, 0, false, d.syntaxError("")
	}
	c := d.data[d.pos]
	if c == '}' {
		if !first {
			// encoding/json refuses a comma before '}'; we only get here
			// after a comma.
			return nil, 0, false, d.syntaxError("looking for beginning of object key string")
		}
		d.pos++
		return nil, 0, false, nil
	}
	if c != '"' {
		return nil, 0, false, d.syntaxError("looking for beginning of object key string")
	}
	start = d.pos
	key, err = d.stringBytes()
	if err != nil {
		return nil, 0, false, err
	}
	d.ws()
	if d.pos >= len(d.data) || d.data[d.pos] != ':' {
		return nil, 0, false, d.syntaxError("after object key")
	}
	d.pos++
	return key, start, true, nil
}

// next consumes what follows an object member: ',' (more is true) or '}'.
func (d *decoder) next() (more bool, err error) {
	d.ws()
	if d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ',':
			d.pos++
			return true, nil
		case '}':
			d.pos++
			return false, nil
		}
	}
	return false, d.syntaxError("after object key:value pair")
}

// arrayStart consumes the '[' of an array or a null (null is true), and
// reports whether the array is empty (consuming its ']').
func (d *decoder) arrayStart(want string) (null, empty bool, err error) {
	d.ws()
	if d.null() {
		return true, true, nil
	}
	if d.pos >= len(d.data) || d.data[d.pos] != '[' {
		return false, false, d.typeError(want)
	}
	d.pos++
	d.ws()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		return false, true, nil
	}
	return false, false, nil
}

// arrayNext consumes what follows an array element: ',' (more is true) or
// ']'.
func (d *decoder) arrayNext() (more bool, err error) {
	d.ws()
	if d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ',':
			d.pos++
			return true, nil
		case ']':
			d.pos++
			return false, nil
		}
	}
	return false, d.syntaxError("after array element")
}

// Objects and arrays.

func (d *decoder) unknown(key []byte, start int) error {
	return d.errorAt(start, "unknown field %q", key)
}

func (d *decoder) duplicate(key []byte, start int) error {
	return d.errorAt(start, "duplicate field %q", key)
}

// members decodes the members of an object whose '{' was consumed,
// calling value once for each field of known; unknown and repeated fields
// are errors naming the field.
func (d *decoder) members(known map[string]field, value func(field) error) error {
	var seen uint32
	for first := true; ; first = false {
		key, start, ok, err := d.key(first)
		if err != nil || !ok {
			return err
		}
		f, ok := known[string(key)]
		if !ok {
			return d.unknown(key, start)
		}
		if seen&(1<<f) != 0 {
			return d.duplicate(key, start)
		}
		seen |= 1 << f
		d.push(f)
		if err := value(f); err != nil {
			return err
		}
		d.pop()
		if more, err := d.next(); err != nil || !more {
			return err
		}
	}
}

// object decodes an object (null leaves the zero value) of one kind.
func (d *decoder) object(want string, known map[string]field, value func(field) error) error {
	null, err := d.objectStart(want)
	if err != nil || null {
		return err
	}
	return d.members(known, value)
}

// objects decodes an array of objects into a list sized ahead, so it is
// never regrown.
func objects[T any](d *decoder, want string, elem func(*T) error) ([]T, error) {
	null, empty, err := d.arrayStart(want)
	if err != nil || null {
		return nil, err
	}
	if empty {
		return []T{}, nil
	}
	list := make([]T, 0, d.countObjects())
	for i := 0; ; i++ {
		d.setIndex(i)
		list = grow(list)
		if err := elem(&list[i]); err != nil {
			return nil, err
		}
		if more, err := d.arrayNext(); err != nil || !more {
			return list, err
		}
	}
}

// strList decodes an array of strings (null is a nil list).
func (d *decoder) strList() ([]string, error) {
	null, empty, err := d.arrayStart("an array of strings")
	if err != nil || null {
		return nil, err
	}
	if empty {
		return []string{}, nil
	}
	start := len(d.strSlab.buf)
	for i := 0; ; i++ {
		d.setIndex(i)
		s, err := d.str()
		if err != nil {
			return nil, err
		}
		d.strSlab.push(&start, s)
		if more, err := d.arrayNext(); err != nil || !more {
			if err != nil {
				return nil, err
			}
			return d.strSlab.list(start), nil
		}
	}
}

// Scalars.

// str decodes a string (null is "").
func (d *decoder) str() (string, error) {
	b, null, err := d.strOrNull()
	if err != nil || null {
		return "", err
	}
	return d.intern(b), nil
}

// strOrNull decodes a string or a null. The bytes are valid until the next
// string is read.
func (d *decoder) strOrNull() (b []byte, null bool, err error) {
	d.ws()
	if d.pos < len(d.data) && d.data[d.pos] == '"' {
		b, err = d.stringBytes()
		return b, false, err
	}
	if d.null() {
		return nil, true, nil
	}
	return nil, false, d.typeError("a string")
}

// plain marks the bytes that stand for themselves inside a JSON string
// and need no UTF-8 check: printable ASCII but '"' and '\\'.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// plain8 reports whether the 8 bytes packed in x are all plain: it looks
// for a byte with the high bit set, below 0x20, or equal to '"' or '\\'
// (the classic "has a zero byte" test applied to x^c). It may say false
// for plain bytes but never true for others.
func plain8(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q := x ^ ('"' * ones)
	bs := x ^ ('\\' * ones)
	special := x | (x-0x20*ones)&^x | (q-ones)&^q | (bs-ones)&^bs
	return special&highs == 0
}

// quoteOrBackslash8 reports whether one of the 8 bytes packed in x may be
// '"' or '\\' (never false when one is).
func quoteOrBackslash8(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q := x ^ ('"' * ones)
	bs := x ^ ('\\' * ones)
	return ((q-ones)&^q|(bs-ones)&^bs)&highs != 0
}

// stringBytes decodes the string whose opening quote is at d.pos. The
// result aliases the input, or d.scratch when the string had escapes or
// invalid UTF-8.
func (d *decoder) stringBytes() ([]byte, error) {
	start := d.pos + 1
	i := start
	data := d.data
	for i+8 <= len(data) && plain8(binary.LittleEndian.Uint64(data[i:])) {
		i += 8
	}
	for i < len(data) && plain[data[i]] {
		i++
	}
	if i < len(data) && data[i] == '"' {
		d.pos = i + 1
		return data[start:i], nil
	}
	return d.slowString(start, i)
}

// slowString finishes stringBytes from i, the first byte that is not
// plain ASCII, unescaping into d.scratch.
func (d *decoder) slowString(start, i int) ([]byte, error) {
	data := d.data
	out := append(d.scratch[:0], data[start:i]...)
	for {
		if i >= len(data) {
			d.pos = i
			return nil, d.errorf("unexpected end of JSON input")
		}
		switch c := data[i]; {
		case c == '"':
			d.scratch = out
			d.pos = i + 1
			return out, nil
		case c == '\\':
			d.pos = i
			r, n, err := d.escape(i)
			if err != nil {
				return nil, err
			}
			out = utf8.AppendRune(out, r)
			i += n
		case c < 0x20:
			d.pos = i
			return nil, d.syntaxError("in string literal")
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, n := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && n == 1 {
				out = utf8.AppendRune(out, utf8.RuneError)
			} else {
				out = append(out, data[i:i+n]...)
			}
			i += n
		}
	}
}

// escape decodes the escape sequence at data[i] (a backslash) the way
// encoding/json does: a surrogate pair \uD83D\uDE00 is one rune, any other
// surrogate is U+FFFD. It returns the rune and the bytes consumed.
func (d *decoder) escape(i int) (rune, int, error) {
	data := d.data
	if i+1 >= len(data) {
		d.pos = len(data)
		return 0, 0, d.errorf("unexpected end of JSON input")
	}
	switch data[i+1] {
	case '"', '\\', '/':
		return rune(data[i+1]), 2, nil
	case 'b':
		return '\b', 2, nil
	case 'f':
		return '\f', 2, nil
	case 'n':
		return '\n', 2, nil
	case 'r':
		return '\r', 2, nil
	case 't':
		return '\t', 2, nil
	case 'u':
		r, err := d.hex4(i + 2)
		if err != nil {
			return 0, 0, err
		}
		if r < 0xD800 || r > 0xDFFF {
			return r, 6, nil
		}
		// A high surrogate followed by an escaped low one is a pair;
		// anything else leaves the surrogate alone, as U+FFFD.
		if r < 0xDC00 && i+7 < len(data) && data[i+6] == '\\' && data[i+7] == 'u' {
			if lo, ok := parseHex4(data[i+8:]); ok && lo >= 0xDC00 && lo <= 0xDFFF {
				return 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00), 12, nil
			}
		}
		return utf8.RuneError, 6, nil
	}
	d.pos = i + 1
	return 0, 0, d.syntaxError("in string escape code")
}

// hex4 decodes the four hex digits at data[i:].
func (d *decoder) hex4(i int) (rune, error) {
	for k := range 4 {
		d.pos = i + k
		if d.pos >= len(d.data) {
			return 0, d.errorf("unexpected end of JSON input")
		}
		if _, ok := hexDigit(d.data[d.pos]); !ok {
			return 0, d.syntaxError("in \\u hexadecimal character escape")
		}
	}
	r, _ := parseHex4(d.data[i:])
	return r, nil
}

func parseHex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		v, ok := hexDigit(c)
		if !ok {
			return 0, false
		}
		r = r<<4 | v
	}
	return r, true
}

func hexDigit(c byte) (rune, bool) {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0'), true
	case c >= 'a' && c <= 'f':
		return rune(c - 'a' + 10), true
	case c >= 'A' && c <= 'F':
		return rune(c - 'A' + 10), true
	}
	return 0, false
}

// intern copies b into the string arena.
func (d *decoder) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if d.arena.Cap()-d.arena.Len() < len(b) {
		// Start a new chunk. Strings already handed out keep the old one
		// alive; a strings.Builder never rewrites bytes it has written, so
		// they stay valid.
		d.arena = strings.Builder{}
		d.arena.Grow(max(len(b), min(arenaChunk, len(d.data))))
	}
	n := d.arena.Len()
	d.arena.Write(b)
	return d.arena.String()[n:]
}

// bool decodes true, false or null (false).
func (d *decoder) bool() (bool, error) {
	d.ws()
	rest := d.data[d.pos:]
	switch {
	case bytes.HasPrefix(rest, []byte("true")):
		d.pos += 4
		return true, nil
	case bytes.HasPrefix(rest, []byte("false")):
		d.pos += 5
		return false, nil
	case d.null():
		return false, nil
	}
	return false, d.typeError("a boolean")
}

// int64 decodes an integer that fits an int64, or null (0). Like
// encoding/json it refuses fractions and exponents, even "1.0" and "1e3".
func (d *decoder) int64() (int64, error) {
	d.ws()
	if d.null() {
		return 0, nil
	}
	start := d.pos
	data := d.data
	i := start
	if i < len(data) && data[i] == '-' {
		i++
	}
	switch {
	case i >= len(data):
		d.pos = i
		return 0, d.syntaxError("")
	case data[i] == '0':
		i++
	case data[i] >= '1' && data[i] <= '9':
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
	case i == start:
		return 0, d.typeError("an integer")
	default:
		d.pos = i
		return 0, d.syntaxError("in numeric literal")
	}
	integer := i
	if i < len(data) && data[i] == '.' {
		i++
		if i >= len(data) || data[i] < '0' || data[i] > '9' {
			d.pos = i
			return 0, d.syntaxError("after decimal point in numeric literal")
		}
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) || data[i] < '0' || data[i] > '9' {
			d.pos = i
			return 0, d.syntaxError("in exponent of numeric literal")
		}
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
	}
	lit := data[start:i]
	if i != integer {
		return 0, d.errorAt(start, "number %s is not an integer", lit)
	}
	n, err := strconv.ParseInt(string(lit), 10, 64)
	if err != nil {
		return 0, d.errorAt(start, "number %s overflows int64", lit)
	}
	d.pos = i
	return n, nil
}
