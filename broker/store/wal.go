package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The write-ahead log. A group commit appends one record holding its
// operations to the active segment and fdatasyncs it once: that is the
// moment the operations are durable and their Sync callbacks run. bbolt
// would need two fdatasyncs per transaction (pages, then meta page) and
// copies every touched page; the log needs one sequential write.
//
// Segments are files wal-<16 hex digits>.log in the data directory,
// numbered upwards. When the active one passes Options.SegmentBytes it is
// sealed and a checkpointer goroutine applies it to the bbolt file in one
// transaction, skipping operations a later one in the segment overrides
// (a delivery written and deleted within the segment never reaches bbolt),
// then removes it. At open, every segment left is applied the same way, in
// order, before the bbolt file is read. Re-applying a segment is harmless
// (every operation sets a key's final value), so a crash between the bbolt
// commit and the removal loses nothing; removals are made durable one at a
// time so the segments on disk are always a suffix of the log.
//
// Segment layout: the 8-byte magic, then records of
//
//	length u32 | crc32c(body) u32 | body
//
// (little endian), body = operations of
//
//	kind u8 | bucket u8 | key str | value str (puts only)
//
// with str a uvarint length and the bytes.

const (
	walMagic     = "FMQWAL\x00\x01"
	walPrefix    = "wal-"
	walSuffix    = ".log"
	recordHeader = 8
	// maxRecordBody refuses a length no group commit writes, so a damaged
	// length field is not trusted to size a buffer.
	maxRecordBody = 1 << 30

	// DefaultSegmentBytes is when the active segment is sealed and handed
	// to the checkpointer.
	DefaultSegmentBytes = 16 << 20
	// sealedBacklog is how many sealed segments may wait for the
	// checkpointer before the log writer waits for it: the bound on the
	// log's disk use when bbolt falls behind.
	sealedBacklog = 2
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

func segmentName(n uint64) string {
	return fmt.Sprintf("%s%016x%s", walPrefix, n, walSuffix)
}

// listSegments returns the numbers of the segments in dir, in order. A
// file named like a segment but not parsing as one is corruption: it may
// hold acknowledged writes.
func listSegments(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	var segs []uint64
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, walPrefix) || !strings.HasSuffix(name, walSuffix) {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, walPrefix), walSuffix), 16, 64)
		if err != nil || segmentName(n) != name {
			return nil, fmt.Errorf("%w: %s: not a log segment name", ErrCorrupt, filepath.Join(dir, name))
		}
		segs = append(segs, n)
	}
	slices.Sort(segs)
	return segs, nil
}

// appendRecord appends one record holding the write operations of ops.
func appendRecord(dst []byte, ops []op) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, recordHeader)...)
	for i := range ops {
		o := &ops[i]
		if o.kind == opSync {
			continue
		}
		dst = append(dst, byte(o.kind), o.bucket)
		dst = appendBytes(dst, o.key)
		if o.kind == opPut {
			dst = appendBytes(dst, o.val)
		}
	}
	body := dst[start+recordHeader:]
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(body, crc32c))
	return dst
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// segmentContent is a segment's operations, decoded; keys and values alias
// the file's bytes.
type segmentContent struct {
	ops []op
	// torn counts the bytes of an interrupted last write that were dropped.
	torn int
}

// decodeSegment decodes a segment's bytes. A zero length ends the records
// (the rest of a preallocated segment is zeros). In the last segment (tail
// true), a record cut short or failing its checksum, with nothing but
// zeros after it, is a write the crash interrupted: it was never
// acknowledged, and is dropped. Anything else that does not decode is
// corruption.
func decodeSegment(data []byte, tail bool) (segmentContent, error) {
	var c segmentContent
	if len(data) < len(walMagic) {
		if tail && bytes.HasPrefix([]byte(walMagic), data) {
			c.torn = len(data) // created, magic not yet on disk
			return c, nil
		}
		return c, errors.New("shorter than the segment header")
	}
	if string(data[:len(walMagic)]) != walMagic {
		return c, errors.New("not a log segment (bad magic)")
	}
	// torn ends the decoding at off if what follows may be an interrupted
	// write.
	torn := func(off, end int, what string) (segmentContent, error) {
		rest := data[off:]
		if tail && isZero(data[min(end, len(data)):]) {
			c.torn = len(bytes.TrimRight(rest, "\x00"))
			return c, nil
		}
		return c, fmt.Errorf("record at %d: %s", off, what)
	}
	for off := len(walMagic); off < len(data); {
		rest := len(data) - off
		if rest < recordHeader {
			if isZero(data[off:]) {
				return c, nil
			}
			return torn(off, len(data), "header cut short")
		}
		n := int(binary.LittleEndian.Uint32(data[off:]))
		sum := binary.LittleEndian.Uint32(data[off+4:])
		if n == 0 {
			if isZero(data[off:]) {
				return c, nil // the end of the records
			}
			return torn(off, off+recordHeader, "zero length before more data")
		}
		if n > maxRecordBody || n > rest-recordHeader {
			return torn(off, len(data), fmt.Sprintf("length %d past the end", n))
		}
		end := off + recordHeader + n
		body := data[off+recordHeader : end]
		if crc32.Checksum(body, crc32c) != sum {
			return torn(off, end, "checksum mismatch")
		}
		var err error
		if c.ops, err = decodeOps(c.ops, body); err != nil {
			return c, fmt.Errorf("record at %d: %w", off, err)
		}
		off = end
	}
	return c, nil
}

func isZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

func decodeOps(dst []op, body []byte) ([]op, error) {
	r := reader{b: body}
	for len(r.b) > 0 && r.err == nil {
		o := op{kind: opKind(r.byte()), bucket: r.byte()}
		o.key = r.bytes()
		switch {
		case r.err != nil:
		case o.kind == opPut:
			o.val = r.bytes()
		case o.kind == opDelete, o.kind == opDeleteSession:
		default:
			return dst, fmt.Errorf("unknown operation %d", o.kind)
		}
		if int(o.bucket) >= len(allBuckets) {
			return dst, fmt.Errorf("unknown bucket %d", o.bucket)
		}
		dst = append(dst, o)
	}
	return dst, r.err
}

// coalesce returns ops without those a later put or delete of the same key
// overrides: applying the rest in order leaves every key as applying all
// would. A session delete (a prefix) is always kept, and overrides nothing
// by key.
func coalesce(ops []op) []op {
	keys := make([]string, len(ops))
	last := make(map[string]int, len(ops))
	for i := range ops {
		if ops[i].kind != opDeleteSession {
			keys[i] = string(append([]byte{ops[i].bucket}, ops[i].key...))
			last[keys[i]] = i
		}
	}
	out := ops[:0:0]
	for i := range ops {
		if ops[i].kind == opDeleteSession || last[keys[i]] == i {
			out = append(out, ops[i])
		}
	}
	return out
}

// segmentWriter appends records to the active segment. Only the log
// writer goroutine uses it.
//
// Segments are preallocated: overwriting zeros already on disk, fdatasync
// has no file size to journal, and costs about half as much here
// (docs/benchmarks.md). Writing 16 MB of zeros is kept off the commit
// path: the first segment after open is small (firstSegmentBytes), and
// once the active segment is half full the writer asks a preparer
// goroutine for a full-size spare; it rotates when the active one is full
// and the spare is ready (or, should the spare be late, at twice the size,
// onto a file that is not preallocated).
type segmentWriter struct {
	dir   string
	f     *os.File
	seg   uint64
	size  int64 // where the next record goes
	limit int64 // the active segment's preallocated size
	buf   []byte

	segmentBytes int64
	wantSpare    chan struct{} // to the preparer; closed when the writer ends
	spares       chan *os.File // from the preparer, at most one waiting
	asked        bool          // a spare was asked for the next rotation
}

// firstSegmentBytes bounds the segment preallocated at open, on the
// start-up path.
const firstSegmentBytes = 1 << 20

// spareName is the preallocated file being prepared or waiting: never a
// segment, so a crash leaves nothing to replay in it.
const spareName = "wal-spare.tmp"

// create starts segment n, durable in the directory: from the prepared
// spare when there is one, else preallocated to prealloc bytes (0: not
// preallocated).
func (w *segmentWriter) create(n uint64, prealloc int64) error {
	path := filepath.Join(w.dir, segmentName(n))
	var f *os.File
	limit := w.segmentBytes
	select {
	case f = <-w.spares:
		if err := os.Rename(f.Name(), path); err != nil {
			f.Close()
			os.Remove(f.Name())
			f = nil
		}
	default:
	}
	if f == nil {
		var err error
		if f, err = preallocate(path, prealloc); err != nil {
			return fmt.Errorf("store: log %s: %w", path, err)
		}
		limit = cmp.Or(prealloc, w.segmentBytes)
	}
	if err := syncDir(w.dir); err != nil {
		f.Close()
		return fmt.Errorf("store: log %s: %w", path, err)
	}
	w.f, w.seg, w.size, w.limit, w.asked = f, n, int64(len(walMagic)), limit, false
	return nil
}

// full reports whether to rotate after this record.
func (w *segmentWriter) full() bool {
	return w.size >= w.limit && (len(w.spares) > 0 || w.size >= 2*w.limit)
}

// append writes ops as one record and waits until it is on disk.
func (w *segmentWriter) append(ops []op) (int, error) {
	w.buf = appendRecord(w.buf[:0], ops)
	n, err := w.f.WriteAt(w.buf, w.size)
	w.size += int64(n)
	if err == nil {
		err = fdatasync(w.f)
	}
	if cap(w.buf) > 1<<20 {
		w.buf = nil
	}
	if err != nil {
		return n, fmt.Errorf("store: log %s: %w", w.f.Name(), err)
	}
	if !w.asked && w.size >= w.limit/2 {
		w.asked = true
		select {
		case w.wantSpare <- struct{}{}:
		default:
		}
	}
	return n, nil
}

// seal closes the active segment; it is already durable.
func (w *segmentWriter) seal() error {
	err := w.f.Close()
	w.f = nil
	return err
}

// prepare makes spares on request until the writer ends, then removes an
// unused one. A request while a spare still waits is dropped: that spare
// serves it, and the file name is taken. (The writer may ask again before
// taking the spare: a segment filled while the spare was being written
// rotates without it.) Only prepare sends on spares, so once it sees none
// waiting, none appears until it sends.
func (w *segmentWriter) prepare(done chan<- struct{}) {
	defer close(done)
	for range w.wantSpare {
		if len(w.spares) > 0 {
			continue
		}
		if f, err := preallocate(filepath.Join(w.dir, spareName), w.segmentBytes); err == nil {
			w.spares <- f
		}
	}
	select {
	case f := <-w.spares:
		f.Close()
		os.Remove(f.Name())
	default:
	}
}

// preallocate creates path with a segment's magic and zeros up to size,
// durably. The file must not exist: reopening one still in use would hand
// out a second descriptor of a live segment. On error nothing is left
// behind.
func preallocate(path string, size int64) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	zeros := make([]byte, min(size, 1<<20))
	_, err = f.WriteString(walMagic)
	for off := int64(len(walMagic)); err == nil && off < size; off += int64(len(zeros)) {
		_, err = f.Write(zeros[:min(int64(len(zeros)), size-off)])
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	return f, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
