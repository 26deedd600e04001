package store_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fleetmq/fleetmq/broker/outbox"
	"github.com/fleetmq/fleetmq/broker/packets"
	"github.com/fleetmq/fleetmq/broker/store"
	"github.com/fleetmq/fleetmq/broker/topic"
)

func open(t *testing.T, dir string) *store.Bolt {
	t.Helper()
	b, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// flush waits until everything queued so far is durable.
func flush(t *testing.T, b store.Store) {
	t.Helper()
	done := make(chan error, 1)
	b.Sync(func(err error) { done <- err })
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Sync: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Sync callback never ran")
	}
}

func load(t *testing.T, b *store.Bolt) *store.Snapshot {
	t.Helper()
	snap, err := b.Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return snap
}

func message(topic, payload string, qos byte) *outbox.Message {
	p := packets.Publish{QoS: qos, Topic: []byte(topic), Payload: []byte(payload)}
	p.Props.ContentType = "text/plain"
	p.Props.User = []packets.UserProperty{{Key: "k", Value: "v"}}
	p.Props.CorrelationData = []byte{1, 2, 3}
	return outbox.NewMessage(&p, topic, "pub-1", time.Unix(100, 0))
}

// TestRoundTrip writes every kind of record and reads it back after a
// clean Close (everything applied to the bbolt file), after a crash
// (everything still in the log), and after a crash with segments sealed
// and checkpointed along the way (some in bbolt, the rest in the log).
func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name         string
		segmentBytes int64
		stop         func(*store.Bolt) error
	}{
		{"close", 0, (*store.Bolt).Close},
		{"crash", 0, func(b *store.Bolt) error { store.Crash(b); return nil }},
		{"crash after checkpoints", 200, func(b *store.Bolt) error {
			// The checkpointer runs on its own; on a loaded machine it may
			// not have applied a segment yet. Crash once it has.
			for deadline := time.Now().Add(10 * time.Second); b.Stats().Checkpoints == 0 && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
			store.Crash(b)
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			b, err := store.Open(dir, store.Options{SegmentBytes: tc.segmentBytes})
			if err != nil {
				t.Fatal(err)
			}
			check := writeEveryKind(t, b)
			if err := tc.stop(b); err != nil {
				t.Fatalf("stop: %v", err)
			}
			b2 := open(t, dir)
			check(t, load(t, b2))
			if tc.segmentBytes > 0 && b.Stats().Checkpoints == 0 {
				t.Errorf("no segment was checkpointed before the crash")
			}
		})
	}
}

// writeEveryKind writes every kind of record and flushes; check verifies
// a snapshot holds what it wrote.
func writeEveryKind(t *testing.T, b *store.Bolt) (check func(*testing.T, *store.Snapshot)) {
	sub := topic.Subscription{Filter: "a/+", Group: "g", QoS: 2, ID: 7, NoLocal: true, RetainAsPublished: true, RetainHandling: 2}
	m1, m2, m3 := message("a/1", "one", 1), message("a/2", "two", 2), message("a/3", "three", 2)
	ret := message("r/1", "kept", 1)
	ret.Retain = true

	b.SaveSession("c1", 3600, 0, store.Owner{Username: "dev", Known: true})
	b.SaveSubscription("c1", "$share/g/a/+", sub)
	b.SaveSubscription("c1", "gone", topic.Subscription{Filter: "gone", QoS: 1})
	b.DeleteSubscription("c1", "gone")
	b.PutDelivery("c1", store.Delivery{Delivery: outbox.Delivery{Msg: m1, QoS: 1, Seq: 1}, Inflight: true, State: outbox.AwaitAck, PacketID: 11})
	b.PutDelivery("c1", store.Delivery{Delivery: outbox.Delivery{Msg: m2, QoS: 2, Retain: true, SubIDs: []uint32{7, 300}, Seq: 2}, Inflight: true, State: outbox.AwaitComp, PacketID: 12})
	b.PutDelivery("c1", store.Delivery{Delivery: outbox.Delivery{Msg: m3, QoS: 2, Seq: 3}})
	b.PutDelivery("c1", store.Delivery{Delivery: outbox.Delivery{Msg: m3, QoS: 1, Seq: 4}})
	b.DeleteDelivery("c1", 4)
	b.SaveInboundQoS2("c1", 5)
	b.SaveInboundQoS2("c1", 6)
	b.ReleaseInboundQoS2("c1", 5)
	b.SetRetained(ret)
	b.SetRetained(message("r/2", "x", 0))
	b.DeleteRetained("r/2")
	// A second session whose id extends the first one's: prefixes must not mix.
	b.SaveSession("c1x", 60, 0, store.Owner{})
	b.SaveSubscription("c1x", "z", topic.Subscription{Filter: "z", QoS: 1})
	b.SaveSession("c2", 60, 0, store.Owner{})
	b.SaveSubscription("c2", "y", topic.Subscription{Filter: "y", QoS: 1})
	b.SaveWill("c2", store.Will{Msg: message("w/c2", "gone", 1), Delay: 5})
	b.DeleteSession("c2")
	will := store.Will{Msg: message("w/c1", "bye", 2), ExpiryInterval: 30, Delay: 10, Username: "dev"}
	will.Msg.Retain = true
	b.SaveWill("c1", store.Will{Msg: message("w/c1", "replaced", 0), Anonymous: true})
	b.SaveWill("c1", will)
	b.SaveWill("c1x", store.Will{Msg: message("w/c1x", "x", 0)})
	b.DeleteWill("c1x")
	flush(t, b)
	return func(t *testing.T, snap *store.Snapshot) {
		t.Helper()
		checkEveryKind(t, snap, sub, ret, m1, m2, m3, will)
	}
}

func checkEveryKind(t *testing.T, snap *store.Snapshot, sub topic.Subscription, ret, m1, m2, m3 *outbox.Message, will store.Will) {
	t.Helper()
	for _, s := range snap.Sessions {
		switch {
		case s.ClientID == "c1" && (s.Will == nil || !reflect.DeepEqual(*s.Will, will)):
			t.Errorf("will of c1 = %+v, want %+v", s.Will, will)
		case s.ClientID != "c1" && s.Will != nil:
			t.Errorf("will of %s = %+v, want none", s.ClientID, s.Will)
		}
	}
	if len(snap.Sessions) != 2 {
		t.Fatalf("got %d sessions, want 2 (c1, c1x)", len(snap.Sessions))
	}
	var s *store.Session
	for _, x := range snap.Sessions {
		if x.ClientID == "c1" {
			s = x
		}
	}
	if s == nil || s.Expiry != 3600 || s.DisconnectedAt != 0 || s.Owner != (store.Owner{Username: "dev", Known: true}) {
		t.Fatalf("session c1 = %+v", s)
	}
	wantSubs := []store.Subscription{{Key: "$share/g/a/+", Sub: sub}}
	if !reflect.DeepEqual(s.Subscriptions, wantSubs) {
		t.Errorf("subscriptions = %+v, want %+v", s.Subscriptions, wantSubs)
	}
	if len(s.Deliveries) != 3 {
		t.Fatalf("got %d deliveries, want 3", len(s.Deliveries))
	}
	want := []store.Delivery{
		{Delivery: outbox.Delivery{Msg: m1, QoS: 1, Seq: 1}, Inflight: true, State: outbox.AwaitAck, PacketID: 11},
		{Delivery: outbox.Delivery{Msg: m2, QoS: 2, Retain: true, SubIDs: []uint32{7, 300}, Seq: 2}, Inflight: true, State: outbox.AwaitComp, PacketID: 12},
		{Delivery: outbox.Delivery{Msg: m3, QoS: 2, Seq: 3}},
	}
	for i := range want {
		if !reflect.DeepEqual(s.Deliveries[i], want[i]) {
			t.Errorf("delivery %d =\n%+v\nwant\n%+v", i, s.Deliveries[i], want[i])
		}
	}
	if !reflect.DeepEqual(s.InboundQoS2, []uint16{6}) {
		t.Errorf("inbound QoS 2 ids = %v, want [6]", s.InboundQoS2)
	}
	if len(snap.Retained) != 1 || !reflect.DeepEqual(snap.Retained[0], ret) {
		t.Errorf("retained = %+v, want [%+v]", snap.Retained, ret)
	}
}

// TestGroupCommit: writes queued while a commit is being written share the
// next transaction, and Sync callbacks run in order after their writes.
func TestGroupCommit(t *testing.T) {
	b := open(t, t.TempDir())
	const writers, each = 8, 200
	var wg sync.WaitGroup
	var mu sync.Mutex
	var order []int
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				b.SaveSession(fmt.Sprintf("w%d-%d", w, i), 60, 0, store.Owner{})
			}
		}()
	}
	wg.Wait()
	for i := range 100 {
		b.Sync(func(err error) {
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
		})
	}
	flush(t, b)
	st := b.Stats()
	if st.Ops != writers*each {
		t.Fatalf("ops = %d, want %d", st.Ops, writers*each)
	}
	// One fsync per write would be 1,600 commits.
	if st.Commits > writers*each/10 {
		t.Errorf("%d commits for %d writes: not coalesced", st.Commits, st.Ops)
	}
	t.Logf("%d writes in %d commits", st.Ops, st.Commits)
	for i, v := range order {
		if v != i {
			t.Fatalf("Sync callbacks ran out of order: %v", order)
		}
	}
}

// TestPurgeAtOpen: expired sessions and messages, and records no session
// owns, are deleted when the store is opened.
func TestPurgeAtOpen(t *testing.T) {
	dir := t.TempDir()
	b := open(t, dir)
	now := time.Now()
	expired := message("e/1", "old", 1)
	expired.ExpiresAt = now.Add(-time.Second).UnixNano()
	live := message("e/2", "new", 1)
	b.SaveSession("gone", 10, now.Add(-11*time.Second).UnixNano(), store.Owner{})
	b.SaveSubscription("gone", "a", topic.Subscription{Filter: "a", QoS: 1})
	b.PutDelivery("gone", store.Delivery{Delivery: outbox.Delivery{Msg: live, QoS: 1, Seq: 1}})
	b.SaveSession("kept", 10, now.Add(-5*time.Second).UnixNano(), store.Owner{})
	b.PutDelivery("kept", store.Delivery{Delivery: outbox.Delivery{Msg: expired, QoS: 1, Seq: 1}})
	b.PutDelivery("kept", store.Delivery{Delivery: outbox.Delivery{Msg: live, QoS: 1, Seq: 2}})
	b.SaveSubscription("orphan", "a", topic.Subscription{Filter: "a", QoS: 1})
	expiredRet := message("r/old", "x", 0)
	expiredRet.ExpiresAt = expired.ExpiresAt
	b.SetRetained(expiredRet)
	flush(t, b)
	b.Close()

	b2 := open(t, dir)
	snap := load(t, b2)
	if len(snap.Sessions) != 1 || snap.Sessions[0].ClientID != "kept" {
		t.Fatalf("sessions = %+v, want only kept", snap.Sessions)
	}
	if d := snap.Sessions[0].Deliveries; len(d) != 1 || d[0].Seq != 2 {
		t.Fatalf("deliveries = %+v, want only seq 2", d)
	}
	if len(snap.Retained) != 0 {
		t.Fatalf("retained = %+v, want none (expired)", snap.Retained)
	}
	b2.Close()
	// What was purged is gone from the file, not only skipped.
	b3 := open(t, dir)
	snap = load(t, b3)
	if len(snap.Sessions) != 1 {
		t.Fatalf("after reopen: %d sessions", len(snap.Sessions))
	}
}

func TestCloseFlushes(t *testing.T) {
	dir := t.TempDir()
	b := open(t, dir)
	for i := range 100 {
		b.SaveSession(fmt.Sprint("s", i), 60, 0, store.Owner{})
	}
	if err := b.Close(); err != nil { // no Sync first: Close must apply what is queued
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	b.Sync(func(err error) { errc <- err })
	if err := <-errc; !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Sync after Close: %v, want ErrClosed", err)
	}
	if n := len(load(t, open(t, dir)).Sessions); n != 100 {
		t.Fatalf("%d sessions after reopen, want 100", n)
	}
}

func TestLocked(t *testing.T) {
	dir := t.TempDir()
	open(t, dir)
	_, err := store.Open(dir, store.Options{LockTimeout: 100 * time.Millisecond})
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
}

func TestCorrupt(t *testing.T) {
	cases := []struct {
		name    string
		corrupt func(t *testing.T, path string)
	}{
		{"garbage file", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("this is not a database, it is a text file of some length............"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"meta pages overwritten", func(t *testing.T, path string) {
			overwrite(t, path, 0, 8192)
		}},
		{"data pages overwritten", func(t *testing.T, path string) {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			overwrite(t, path, 16384, int(fi.Size())-16384)
		}},
		{"truncated", func(t *testing.T, path string) {
			if err := os.Truncate(path, 100); err != nil {
				t.Fatal(err)
			}
		}},
		{"not a fleetmq store", func(t *testing.T, path string) {
			// A sound bbolt file of someone else's.
			os.Remove(path)
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("other")); return err })
			db.Close()
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			b := open(t, dir)
			for i := range 200 {
				b.SaveSession(fmt.Sprint("s", i), 60, 0, store.Owner{})
				b.SetRetained(message(fmt.Sprint("r/", i), "payload", 1))
			}
			flush(t, b)
			b.Close()
			path := filepath.Join(dir, store.FileName)
			tc.corrupt(t, path)
			_, err := store.Open(dir, store.Options{})
			if !errors.Is(err, store.ErrCorrupt) {
				t.Fatalf("Open: %v, want ErrCorrupt", err)
			}
			if !contains(err.Error(), path) {
				t.Errorf("error %q does not name the file %s", err, path)
			}
		})
	}
}

func overwrite(t *testing.T, path string, off, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	junk := make([]byte, n)
	for i := range junk {
		junk[i] = byte(i*7 + 3)
	}
	if _, err := f.WriteAt(junk, int64(off)); err != nil {
		t.Fatal(err)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestGroup: writes queued between BeginGroup and EndGroup, and writes
// other goroutines queue meanwhile, are never committed without the
// others; a crash with the group open keeps none of them.
func TestGroup(t *testing.T) {
	dir := t.TempDir()
	b, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b.SaveSession("before", 60, 0, store.Owner{})
	flush(t, b)
	b.BeginGroup() // never ended: the crash comes first
	b.SaveSession("in-group", 60, 0, store.Owner{})
	synced := make(chan error, 1)
	go func() {
		b.SaveSession("meanwhile", 60, 0, store.Owner{})
		b.Sync(func(err error) { synced <- err })
	}()
	select {
	case err := <-synced:
		t.Fatalf("a write queued after an open group's was committed before the group ended (err %v)", err)
	case <-time.After(200 * time.Millisecond):
	}
	g2 := b.BeginGroup()
	b.EndGroup(g2) // an empty group inside: ends nothing else
	select {
	case <-synced:
		t.Fatal("committed while the outer group is open")
	case <-time.After(50 * time.Millisecond):
	}
	store.Crash(b)
	b = open(t, dir)
	if got := sessionIDs(load(t, b)); !slices.Equal(got, []string{"before"}) {
		t.Fatalf("after a crash with the group open: %v, want [before]", got)
	}

	g := b.BeginGroup()
	b.SaveSession("x", 60, 0, store.Owner{})
	b.SaveSession("y", 60, 0, store.Owner{})
	b.EndGroup(g)
	flush(t, b)
	if st := b.Stats(); st.Commits != 1 || st.Ops != 2 {
		t.Fatalf("ended group: %+v, want its two writes in one commit", st)
	}
}

// TestOlderStoreGetsWills: a store written before wills were stored (no
// wills bucket) opens and gets one; it is not taken for damage.
func TestOlderStoreGetsWills(t *testing.T) {
	dir := t.TempDir()
	b := open(t, dir)
	b.SaveSession("s", 60, 0, store.Owner{})
	flush(t, b)
	b.Close()
	db, err := bolt.Open(filepath.Join(dir, store.FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("wills")) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	b = open(t, dir)
	b.SaveWill("s", store.Will{Msg: message("w", "x", 1)})
	flush(t, b)
	b.Close()
	snap := load(t, open(t, dir))
	if len(snap.Sessions) != 1 || snap.Sessions[0].Will == nil {
		t.Fatalf("sessions %+v: want s with its will", snap.Sessions)
	}
}

// TestOlderSessionRecordHasNoOwner: a session record written before
// sessions had owners (format 1: expiry and disconnect time only) still
// loads, with an unknown owner, so the first client to connect claims it;
// a record written now keeps its owner, the empty (anonymous) one too.
func TestOlderSessionRecordHasNoOwner(t *testing.T) {
	dir := t.TempDir()
	b := open(t, dir)
	b.SaveSession("new", 60, 0, store.Owner{Known: true})
	flush(t, b)
	b.Close()
	db, err := bolt.Open(filepath.Join(dir, store.FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	// format 1 | expiry 60 | disconnectedAt 0
	old := []byte{1, 0, 0, 0, 60, 0, 0, 0, 0, 0, 0, 0, 0}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("sessions")).Put([]byte("old"), old) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	snap := load(t, open(t, dir))
	got := map[string]store.Owner{}
	for _, s := range snap.Sessions {
		if s.Expiry != 60 {
			t.Errorf("session %s: expiry %d, want 60", s.ClientID, s.Expiry)
		}
		got[s.ClientID] = s.Owner
	}
	want := map[string]store.Owner{"old": {}, "new": {Known: true}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("owners %+v, want %+v", got, want)
	}
}
