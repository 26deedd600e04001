package store_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetmq/fleetmq/broker/outbox"
	"github.com/fleetmq/fleetmq/broker/store"
	"github.com/fleetmq/fleetmq/broker/topic"
)

// segments lists the log segment files in dir, oldest first.
func segments(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "wal-*.log"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

// recordsEnd is where a segment's records end and its preallocated zeros
// begin.
func recordsEnd(t *testing.T, seg string) int {
	t.Helper()
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	off := 8
	for off+8 <= len(data) {
		n := int(binary.LittleEndian.Uint32(data[off:]))
		if n == 0 {
			break
		}
		off += 8 + n
	}
	return off
}

func sessionIDs(snap *store.Snapshot) []string {
	var ids []string
	for _, s := range snap.Sessions {
		ids = append(ids, s.ClientID)
	}
	slices.Sort(ids)
	return ids
}

// crashAfter opens dir, saves sessions named by ids one group commit each,
// and crashes.
func crashAfter(t *testing.T, dir string, ids ...string) {
	t.Helper()
	b, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		b.SaveSession(id, 60, 0, store.Owner{})
		flush(t, b)
	}
	store.Crash(b)
}

// TestTornTail: the last record of the log cut short by a crash, or
// half-written, was never acknowledged; it is dropped and everything
// before it is kept.
func TestTornTail(t *testing.T) {
	for _, tc := range []struct {
		name string
		tear func(t *testing.T, seg string)
	}{
		{"cut short", func(t *testing.T, seg string) {
			if err := os.Truncate(seg, int64(recordsEnd(t, seg)-3)); err != nil {
				t.Fatal(err)
			}
		}},
		{"unwritten sectors", func(t *testing.T, seg string) {
			overwrite(t, seg, recordsEnd(t, seg)-4, 4) // body garbage, length intact
		}},
		{"header only", func(t *testing.T, seg string) {
			end := recordsEnd(t, seg)
			f, err := os.OpenFile(seg, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteAt([]byte{100, 0, 0}, int64(end))
			f.Close()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ids := []string{"a", "b", "c"}
			if tc.name == "header only" {
				ids = append(ids, "d") // nothing of d is torn
			}
			crashAfter(t, dir, ids...)
			segs := segments(t, dir)
			if len(segs) != 1 {
				t.Fatalf("segments %v, want 1", segs)
			}
			tc.tear(t, segs[0])
			b := open(t, dir)
			want := []string{"a", "b"}
			if tc.name == "header only" {
				want = ids
			}
			if got := sessionIDs(load(t, b)); !slices.Equal(got, want) {
				t.Fatalf("sessions %v, want %v", got, want)
			}
			if st := b.Stats(); st.TornBytes == 0 || st.Replayed != int64(len(want)) {
				t.Errorf("stats %+v: want torn bytes and %d replayed", st, len(want))
			}
		})
	}
}

// TestCorruptLog: damage anywhere but an interrupted last write refuses
// to open, naming the segment, rather than dropping acknowledged writes.
func TestCorruptLog(t *testing.T) {
	for _, tc := range []struct {
		name    string
		corrupt func(t *testing.T, dir, seg string)
	}{
		{"bad checksum before the last record", func(t *testing.T, _, seg string) {
			overwrite(t, seg, 8+8+2, 1) // inside the first record's body
		}},
		{"bad magic", func(t *testing.T, _, seg string) {
			overwrite(t, seg, 0, 4)
		}},
		{"torn segment that is not the last", func(t *testing.T, dir, seg string) {
			if err := os.Truncate(seg, int64(recordsEnd(t, seg)-3)); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "wal-00000000000000ff.log"), []byte("FMQWAL\x00\x01"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"unknown operation", func(t *testing.T, dir, seg string) {
			// A well-formed record of an operation this version lacks.
			body := []byte{9, 1, 1, 'x'}
			rec := fmt.Appendf(nil, "FMQWAL\x00\x01")
			rec = append(rec, byte(len(body)), 0, 0, 0)
			rec = append(rec, crc(body)...)
			rec = append(rec, body...)
			if err := os.WriteFile(seg, rec, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"segment name", func(t *testing.T, dir, _ string) {
			if err := os.WriteFile(filepath.Join(dir, "wal-xyz.log"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			crashAfter(t, dir, "a", "b", "c")
			seg := segments(t, dir)[0]
			tc.corrupt(t, dir, seg)
			_, err := store.Open(dir, store.Options{})
			if !errors.Is(err, store.ErrCorrupt) {
				t.Fatalf("Open: %v, want ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), filepath.Join(dir, "wal-")) {
				t.Errorf("error %q does not name the segment", err)
			}
		})
	}
}

// TestReplayTwice: a crash after a segment was applied to the bbolt file
// but before it was removed replays it again, harmlessly.
func TestReplayTwice(t *testing.T) {
	dir := t.TempDir()
	b, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b.SaveSession("a", 60, 0, store.Owner{})
	b.SaveSession("gone", 60, 0, store.Owner{})
	b.SaveSubscription("gone", "x", subscription("x"))
	b.DeleteSession("gone")
	b.SaveSession("b", 60, 0, store.Owner{})
	flush(t, b)
	store.Crash(b)
	seg := segments(t, dir)[0]
	kept, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}

	b = open(t, dir) // applies seg, removes it, starts the next
	if got := sessionIDs(load(t, b)); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("sessions %v", got)
	}
	b.DeleteSession("a")
	flush(t, b)
	store.Crash(b)
	if err := os.WriteFile(seg, kept, 0o600); err != nil { // as if never removed
		t.Fatal(err)
	}
	b = open(t, dir)
	if got := sessionIDs(load(t, b)); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("sessions after replaying both segments %v, want [b]", got)
	}
}

// TestLogBounded: sealed segments are applied to the bbolt file and
// removed while the broker runs, deliveries written and deleted within a
// segment never reach bbolt, and a clean Close leaves no log.
func TestLogBounded(t *testing.T) {
	dir := t.TempDir()
	b, err := store.Open(dir, store.Options{SegmentBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	m := message("q/1", strings.Repeat("x", 100), 1)
	b.SaveSession("sub", 60, 0, store.Owner{})
	for seq := uint64(1); seq <= 3000; seq++ {
		b.PutDelivery("sub", store.Delivery{Delivery: outbox.Delivery{Msg: m, QoS: 1, Seq: seq}})
		if seq > 10 {
			b.DeleteDelivery("sub", seq-10)
		}
		if seq%50 == 0 {
			flush(t, b)
		}
	}
	flush(t, b)
	if n := len(segments(t, dir)); n > 4 { // active + backlog + one being removed
		t.Errorf("%d segments on disk", n)
	}
	st := b.Stats()
	if st.Checkpoints < 5 {
		t.Errorf("%d checkpoints, want the log to be applied as it grows", st.Checkpoints)
	}
	if st.CheckpointOps*2 > st.Ops {
		t.Errorf("%d of %d operations reached bbolt: not coalesced", st.CheckpointOps, st.Ops)
	}
	t.Logf("%+v", st)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if segs := segments(t, dir); len(segs) != 0 {
		t.Errorf("segments after Close: %v", segs)
	}
	b = open(t, dir)
	s := load(t, b).Sessions
	if len(s) != 1 || len(s[0].Deliveries) != 10 || s[0].Deliveries[0].Seq != 2991 {
		t.Fatalf("after reopen: %+v", s)
	}
}

func subscription(filter string) topic.Subscription {
	return topic.Subscription{Filter: filter, QoS: 1}
}

// crc is a record header's checksum field for body.
func crc(body []byte) []byte {
	return binary.LittleEndian.AppendUint32(nil, crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
}

// TestPreallocatedSegment: a segment taken from a prepared spare is
// zero-filled to its full size; its records replay after a crash, a write
// torn in it is dropped, and damage before its last record is refused.
func TestPreallocatedSegment(t *testing.T) {
	const size = 16 << 10
	// fill writes sessions until a spare is ready and the next segment
	// is a preallocated one holding some records, then crashes.
	fill := func(t *testing.T, dir string) (ids []string) {
		b, err := store.Open(dir, store.Options{SegmentBytes: size})
		if err != nil {
			t.Fatal(err)
		}
		pad := strings.Repeat("p", 500)
		for i := 0; b.Stats().Checkpoints == 0; i++ {
			ids = append(ids, fmt.Sprintf("s%03d-%s", i, pad))
			b.SaveSession(ids[i], 60, 0, store.Owner{})
			flush(t, b)
			for i > 20 && !store.SpareReady(b) && b.Stats().Checkpoints == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		for i := range 3 {
			ids = append(ids, fmt.Sprintf("late%d", i))
			b.SaveSession(ids[len(ids)-1], 60, 0, store.Owner{})
			flush(t, b)
		}
		store.Crash(b)
		segs := segments(t, dir)
		if fi, err := os.Stat(segs[len(segs)-1]); err != nil || fi.Size() != size {
			t.Fatalf("active segment %v: want it preallocated to %d bytes", fi, size)
		}
		slices.Sort(ids)
		return ids
	}
	t.Run("replay", func(t *testing.T) {
		dir := t.TempDir()
		ids := fill(t, dir)
		if got := sessionIDs(load(t, open(t, dir))); !slices.Equal(got, ids) {
			t.Fatalf("got %d sessions, want %d", len(got), len(ids))
		}
	})
	t.Run("torn", func(t *testing.T) {
		dir := t.TempDir()
		ids := fill(t, dir)
		segs := segments(t, dir)
		overwrite(t, segs[len(segs)-1], recordsEnd(t, segs[len(segs)-1])-2, 2) // the last record's tail unwritten
		b := open(t, dir)
		want := slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return id == "late2" })
		if got := sessionIDs(load(t, b)); !slices.Equal(got, want) {
			t.Fatalf("got %v, want all but late2", got)
		}
		if b.Stats().TornBytes == 0 {
			t.Error("no torn bytes reported")
		}
	})
	t.Run("damage before the last record", func(t *testing.T) {
		dir := t.TempDir()
		fill(t, dir)
		segs := segments(t, dir)
		overwrite(t, segs[len(segs)-1], 8+8+1, 1)
		if _, err := store.Open(dir, store.Options{}); !errors.Is(err, store.ErrCorrupt) {
			t.Fatalf("Open: %v, want ErrCorrupt", err)
		}
	})
}
