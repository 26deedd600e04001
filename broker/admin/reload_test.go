package admin_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/fleetmq/fleetmq/broker/authz"
	"github.com/fleetmq/fleetmq/broker/packets"
)

// reloadBundle: a and b publish and subscribe under t/#; p publishes
// anywhere; b may also read news/# and alerts/#; q reads q/#.
func reloadBundle(t testing.TB, rev int64) authz.Bundle {
	return authz.Bundle{
		APIVersion: authz.APIVersion,
		Revision:   rev,
		Users:      []authz.User{user(t, "a"), user(t, "b"), user(t, "p"), user(t, "q")},
		Rules: []authz.Rule{
			rule(authz.EffectAllow, []string{"a", "b"}, pubSub, "t/#"),
			rule(authz.EffectAllow, []string{"p"}, pub, "#"),
			rule(authz.EffectAllow, []string{"b"}, sub, "news/#", "alerts/#"),
			rule(authz.EffectAllow, []string{"q"}, sub, "q/#"),
		},
	}
}

// without returns b minus the named user.
func without(b authz.Bundle, name string) authz.Bundle {
	b.Users = slices.DeleteFunc(slices.Clone(b.Users), func(u authz.User) bool { return u.Username == name })
	return b
}

// pair is a user a about to lose access, a bystander b and a publisher p,
// all connected with b subscribed to t/b.
type pair struct {
	a   *v5Client
	a3  *v3Client // a's 3.1.1 connection
	b   *v5Client
	b3  *v3Client
	p   *v5Client
	cnt int64 // Stats().ConnectsTotal once all are connected
}

func connectPair(t *testing.T, e *env) *pair {
	t.Helper()
	x := &pair{
		a:  mustV5(t, e.addr, "a-5", "a"),
		a3: mustV3(t, e.addr, "a-3", "a", false),
		b:  mustV5(t, e.addr, "b-5", "b"),
		b3: mustV3(t, e.addr, "b-3", "b", true),
		p:  mustV5(t, e.addr, "p-5", "p"),
	}
	x.a.mustSubscribe(t, "t/a", 1)
	x.b.mustSubscribe(t, "t/b", 1)
	x.b3.mustSubscribe(t, "t/b", 1)
	x.p.mustPublish(t, "t/b", "before")
	x.b.expectNext(t, "t/b", "before")
	x.b3.expectNext(t, "t/b", "before")
	x.cnt = e.srv.Stats().ConnectsTotal
	return x
}

// bystanderUnharmed checks b kept its connections and subscriptions and
// still receives, without having reconnected.
func (x *pair) bystanderUnharmed(t *testing.T, e *env, payload string) {
	t.Helper()
	x.b.expectAlive(t)
	select {
	case err := <-x.b3.lost:
		t.Fatalf("b's 3.1.1 connection lost: %v", err)
	default:
	}
	x.p.mustPublish(t, "t/b", payload)
	x.b.expectNext(t, "t/b", payload)
	x.b3.expectNext(t, "t/b", payload)
	x.b.expectAlive(t)
	if !x.b3.IsConnectionOpen() {
		t.Fatalf("b's 3.1.1 connection is not open")
	}
	if got := e.srv.Stats().ConnectsTotal; got != x.cnt {
		t.Fatalf("ConnectsTotal: got %d, want %d (nobody reconnected)", got, x.cnt)
	}
}

// TestReloadRevokeThroughAPI: a bundle without user a, pushed through the
// API, cuts a's connections (v5: DISCONNECT 0x87) and nobody else's.
func TestReloadRevokeThroughAPI(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.apply(t, reloadBundle(t, 1))
	x := connectPair(t, e)

	code, body := e.put(t, encode(t, without(reloadBundle(t, 2), "a")), "")
	if code != http.StatusOK {
		t.Fatalf("PUT revision 2: got %d %s, want 200", code, body)
	}
	if r := decodePut(t, body); r.Revoked != 2 {
		t.Errorf("PUT answer: got revoked %d, want 2 (a's two sessions)", r.Revoked)
	}
	t.Run("revoked 5.0 client gets DISCONNECT 0x87", func(t *testing.T) { x.a.expectKicked(t, 0x87) })
	t.Run("revoked 3.1.1 client is closed", func(t *testing.T) { x.a3.expectLost(t) })
	t.Run("bystander keeps connection and subscription", func(t *testing.T) { x.bystanderUnharmed(t, e, "after") })
	t.Run("revoked user cannot come back", func(t *testing.T) {
		if _, ack, err := dialV5(t, e.addr, v5Opts{id: "a-5", username: "a", password: "a-pw"}); err == nil || ack == nil || ack.ReasonCode != 0x86 {
			t.Errorf("got err %v ack %+v, want CONNACK 0x86", err, ack)
		}
	})
	t.Run("counted", func(t *testing.T) {
		if got := e.srv.Stats().Revoked; got != 2 {
			t.Errorf("Stats().Revoked: got %d, want 2", got)
		}
		if got := metric(t, e.metrics, "fleetmq_sessions_revoked_total"); got != 2 {
			t.Errorf("fleetmq_sessions_revoked_total: got %v, want 2", got)
		}
		if got := metric(t, e.metrics, "fleetmq_auth_revision"); got != 2 {
			t.Errorf("fleetmq_auth_revision: got %v, want 2", got)
		}
	})
}

// secretDir writes files the way the kubelet updates a mounted Secret: a
// new timestamped directory, a `..data_tmp` symlink to it renamed over
// `..data`, the old directory removed; each key is a symlink
// `<key> -> ..data/<key>` created once.
type secretDir struct {
	dir string
	n   int
	old string
}

func (s *secretDir) update(t *testing.T, files map[string][]byte) {
	t.Helper()
	s.n++
	ts := fmt.Sprintf("..2025_01_02_03_04_05.%09d", s.n)
	if err := os.Mkdir(filepath.Join(s.dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(s.dir, ts, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(s.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for name := range files {
		link := filepath.Join(s.dir, name)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	if s.old != "" {
		if err := os.RemoveAll(filepath.Join(s.dir, s.old)); err != nil {
			t.Fatal(err)
		}
	}
	s.old = ts
}

// TestReloadThroughFile: the same revocation, delivered by swapping the
// mounted Secret's `..data` symlink; then a bad bundle, which changes
// nothing.
func TestReloadThroughFile(t *testing.T) {
	e := newEnv(t, envOptions{})
	sd := &secretDir{dir: t.TempDir()}
	sd.update(t, map[string][]byte{"bundle.json": encode(t, reloadBundle(t, 1))})
	path := filepath.Join(sd.dir, "bundle.json")
	if a, err := e.loader.LoadFile(path); err != nil || a.Revision != 1 {
		t.Fatalf("LoadFile: got %+v, %v, want revision 1", a, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := e.loader.WatchFile(ctx, path); err != nil {
		t.Fatalf("WatchFile: %v", err)
	}
	x := connectPair(t, e)

	sd.update(t, map[string][]byte{"bundle.json": encode(t, without(reloadBundle(t, 2), "a"))})
	t.Run("reloaded", func(t *testing.T) {
		eventually(t, "revision 2 from the file", func() bool { a, _ := e.loader.Current(); return a.Revision == 2 })
		if a, _ := e.loader.Current(); a.Source != "file" || a.Users != 3 {
			t.Errorf("in force: got source %q with %d users, want file with 3", a.Source, a.Users)
		}
	})
	t.Run("revoked 5.0 client gets DISCONNECT 0x87", func(t *testing.T) { x.a.expectKicked(t, 0x87) })
	t.Run("revoked 3.1.1 client is closed", func(t *testing.T) { x.a3.expectLost(t) })
	t.Run("bystander keeps connection and subscription", func(t *testing.T) { x.bystanderUnharmed(t, e, "after") })

	t.Run("bad file changes nothing", func(t *testing.T) {
		bad := reloadBundle(t, 3)
		bad.Rules[0].Effect = "maybe"
		before := metric(t, e.metrics, "fleetmq_auth_reloads_total", "invalid")
		sd.update(t, map[string][]byte{"bundle.json": encode(t, bad)})
		eventually(t, "the bad file to be refused", func() bool {
			return metric(t, e.metrics, "fleetmq_auth_reloads_total", "invalid") > before
		})
		if a, _ := e.loader.Current(); a.Revision != 2 {
			t.Errorf("in force: got revision %d, want 2", a.Revision)
		}
		x.bystanderUnharmed(t, e, "after bad file")
	})

	t.Run("older file does not undo an API push", func(t *testing.T) {
		if code, body := e.put(t, encode(t, without(reloadBundle(t, 10), "a")), ""); code != http.StatusOK {
			t.Fatalf("PUT revision 10: got %d %s", code, body)
		}
		before := metric(t, e.metrics, "fleetmq_auth_reloads_total", "stale")
		sd.update(t, map[string][]byte{"bundle.json": encode(t, reloadBundle(t, 4))})
		eventually(t, "the older file to be seen as stale", func() bool {
			return metric(t, e.metrics, "fleetmq_auth_reloads_total", "stale") > before
		})
		if a, _ := e.loader.Current(); a.Revision != 10 {
			t.Errorf("in force: got revision %d, want 10", a.Revision)
		}
	})
}

// TestReloadPasswordChange: a changed password cuts that user's sessions;
// the new password works, the old one does not.
func TestReloadPasswordChange(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.apply(t, reloadBundle(t, 1))
	x := connectPair(t, e)

	next := reloadBundle(t, 2)
	next.Users[0].PasswordHash = hashOf(t, "a-new-pw")
	if code, body := e.put(t, encode(t, next), ""); code != http.StatusOK {
		t.Fatalf("PUT revision 2: got %d %s, want 200", code, body)
	}
	t.Run("5.0 session cut", func(t *testing.T) { x.a.expectKicked(t, 0x87) })
	t.Run("3.1.1 session cut", func(t *testing.T) { x.a3.expectLost(t) })
	t.Run("bystander unharmed", func(t *testing.T) { x.bystanderUnharmed(t, e, "after") })
	t.Run("old password refused", func(t *testing.T) {
		if _, ack, err := dialV5(t, e.addr, v5Opts{id: "a-5", username: "a", password: "a-pw"}); err == nil || ack == nil || ack.ReasonCode != 0x86 {
			t.Errorf("got err %v ack %+v, want CONNACK 0x86", err, ack)
		}
	})
	t.Run("new password accepted", func(t *testing.T) {
		c, ack, err := dialV5(t, e.addr, v5Opts{id: "a-5", username: "a", password: "a-new-pw"})
		if err != nil {
			t.Fatalf("got err %v ack %+v, want success", err, ack)
		}
		c.mustSubscribe(t, "t/a", 1)
		x.p.mustPublish(t, "t/a", "welcome back")
		c.expectNext(t, "t/a", "welcome back")
	})
}

// TestReloadRulesOnly: a reload that changes only rules (not
// credentials) keeps every session and applies the new rules to it.
func TestReloadRulesOnly(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.apply(t, reloadBundle(t, 1))
	x := connectPair(t, e)
	if code := x.a.publish(t, "u/1", "x"); code != 0x87 {
		t.Fatalf("publish to u/1 before: got PUBACK 0x%02x, want 0x87", code)
	}
	next := reloadBundle(t, 2)
	next.Rules = append(next.Rules, rule(authz.EffectAllow, []string{"a"}, pub, "u/#"))
	code, body := e.put(t, encode(t, next), "")
	if code != http.StatusOK {
		t.Fatalf("PUT revision 2: got %d %s", code, body)
	}
	if r := decodePut(t, body); r.Revoked != 0 {
		t.Errorf("PUT answer: got revoked %d, want 0", r.Revoked)
	}
	x.a.expectAlive(t)
	if code := x.a.publish(t, "u/1", "x"); code >= 0x80 {
		t.Errorf("publish to u/1 after: got PUBACK 0x%02x, want success", code)
	}
	x.bystanderUnharmed(t, e, "after")
}

// TestReloadBadBundleChangesNothing: refused bundles (invalid, stale) leave
// every client connected and the rules as they were.
func TestReloadBadBundleChangesNothing(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.apply(t, reloadBundle(t, 5))
	x := connectPair(t, e)

	invalid := without(reloadBundle(t, 6), "a")
	invalid.Users = append(invalid.Users, authz.User{Username: "b", PasswordHash: hashOf(t, "b-pw")}) // duplicate
	stale := without(reloadBundle(t, 4), "a")
	for _, tc := range []struct {
		name string
		body []byte
		want int
	}{
		{"invalid", encode(t, invalid), http.StatusBadRequest},
		{"truncated", encode(t, invalid)[:100], http.StatusBadRequest},
		{"stale", encode(t, stale), http.StatusConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, body := e.put(t, tc.body, ""); code != tc.want {
				t.Fatalf("PUT: got %d %s, want %d", code, body, tc.want)
			}
			x.a.expectAlive(t)
			x.p.mustPublish(t, "t/a", tc.name)
			x.a.expectNext(t, "t/a", tc.name)
			x.bystanderUnharmed(t, e, tc.name)
			if got := e.srv.Stats().Revoked; got != 0 {
				t.Errorf("Stats().Revoked: got %d, want 0", got)
			}
		})
	}
}

// TestReloadRemovesSubscriptions: a reload that takes away the right to a
// subscribed filter removes the subscription (messages stop, the
// connection stays), and giving the right back does not resurrect it.
func TestReloadRemovesSubscriptions(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.apply(t, reloadBundle(t, 1))
	p := mustV5(t, e.addr, "p-5", "p")
	b := mustV5(t, e.addr, "b-5", "b")
	b3 := mustV3(t, e.addr, "b-3", "b", true)
	for _, f := range []string{"news/#", "alerts/#"} {
		b.mustSubscribe(t, f, 1)
		b3.mustSubscribe(t, f, 1)
	}
	subsBefore := e.srv.Stats().Subscriptions

	noNews := reloadBundle(t, 2)
	noNews.Rules[2] = rule(authz.EffectAllow, []string{"b"}, sub, "alerts/#")
	if code, body := e.put(t, encode(t, noNews), ""); code != http.StatusOK {
		t.Fatalf("PUT revision 2: got %d %s", code, body)
	}
	t.Run("subscriptions removed", func(t *testing.T) {
		if got, want := e.srv.Stats().Subscriptions, subsBefore-2; got != want {
			t.Errorf("Stats().Subscriptions: got %d, want %d", got, want)
		}
	})
	t.Run("messages stop, connection stays", func(t *testing.T) {
		p.mustPublish(t, "news/1", "dropped")
		p.mustPublish(t, "alerts/1", "kept")
		b.expectNext(t, "alerts/1", "kept")
		b3.expectNext(t, "alerts/1", "kept")
		b.expectAlive(t)
		if !b3.IsConnectionOpen() {
			t.Errorf("3.1.1 connection closed, want it kept")
		}
	})
	t.Run("restored rights do not resurrect the subscription", func(t *testing.T) {
		if code, body := e.put(t, encode(t, reloadBundle(t, 3)), ""); code != http.StatusOK {
			t.Fatalf("PUT revision 3: got %d %s", code, body)
		}
		p.mustPublish(t, "news/2", "not subscribed")
		p.mustPublish(t, "alerts/2", "kept")
		b.expectNext(t, "alerts/2", "kept")
		b3.expectNext(t, "alerts/2", "kept")
		// A new SUBSCRIBE works again.
		b.mustSubscribe(t, "news/#", 1)
		p.mustPublish(t, "news/3", "subscribed again")
		b.expectNext(t, "news/3", "subscribed again")
	})
}

// TestReloadKeepsQueuedMessages: an offline persistent session of a user
// still allowed keeps its queued messages through a reload; one of a
// revoked user ends.
func TestReloadKeepsQueuedMessages(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.apply(t, reloadBundle(t, 1))
	p := mustV5(t, e.addr, "p-5", "p")

	q := mustV3(t, e.addr, "q-1", "q", true)
	q.mustSubscribe(t, "q/#", 1)
	q.Disconnect(50)
	// An offline session of a, the user about to be removed.
	a := mustV3(t, e.addr, "a-1", "a", true)
	a.mustSubscribe(t, "t/a", 1)
	a.Disconnect(50)
	eventually(t, "both clients offline", func() bool { return e.srv.Stats().ClientsConnected == 1 })
	sessions := e.srv.Stats().Sessions

	for i := range 3 {
		p.mustPublish(t, fmt.Sprintf("q/%d", i), fmt.Sprint("queued ", i))
	}
	p.mustPublish(t, "t/a", "for a")
	if code, body := e.put(t, encode(t, without(reloadBundle(t, 2), "a")), ""); code != http.StatusOK {
		t.Fatalf("PUT revision 2: got %d %s", code, body)
	}
	t.Run("revoked offline session ends", func(t *testing.T) {
		if got := e.srv.Stats().Sessions; got != sessions-1 {
			t.Errorf("Stats().Sessions: got %d, want %d", got, sessions-1)
		}
	})
	t.Run("allowed offline session keeps its queue", func(t *testing.T) {
		q2 := mustV3(t, e.addr, "q-1", "q", true)
		for i := range 3 {
			q2.expectNext(t, fmt.Sprintf("q/%d", i), fmt.Sprint("queued ", i))
		}
	})
}

// TestConcurrentReloads: many goroutines PUT increasing revisions while
// clients publish; the highest revision ends in force. Run with -race.
func TestConcurrentReloads(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.apply(t, reloadBundle(t, 1))
	x := connectPair(t, e)

	const writers, perWriter = 6, 8
	const top = 1 + writers*perWriter
	bundles := make([][]byte, top+1)
	for rev := 2; rev <= top; rev++ {
		b := reloadBundle(t, int64(rev))
		// Distinct content per revision, so each one is a real swap.
		b.Rules = append(b.Rules, rule(authz.EffectAllow, []string{"p"}, sub, fmt.Sprintf("x/%d", rev)))
		bundles[rev] = encode(t, b)
	}

	// Load: p publishes from two goroutines, a reads it all.
	x.a.discard.Store(true)
	x.a.mustSubscribe(t, "t/load/#", 0)
	ctx, stop := context.WithCancel(context.Background())
	var load sync.WaitGroup
	var published atomic.Int64
	for i := range 2 {
		load.Add(1)
		go func() {
			defer load.Done()
			for n := 0; ctx.Err() == nil; n++ {
				pctx, cancel := context.WithTimeout(ctx, timeout)
				if _, err := x.p.Publish(pctx, &paho.Publish{Topic: fmt.Sprintf("t/load/%d", i), QoS: byte(n % 2), Payload: []byte("x")}); err == nil {
					published.Add(1)
				}
				cancel()
			}
		}()
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range perWriter {
				rev := 2 + w + k*writers // each writer's revisions increase
				req, _ := http.NewRequest(http.MethodPut, e.api.URL+"/v1/auth", bytes.NewReader(bundles[rev]))
				req.Header.Set("Authorization", "Bearer "+e.token)
				code := -1
				if resp, err := e.api.Client().Do(req); err == nil {
					code = resp.StatusCode
					resp.Body.Close()
				}
				mu.Lock()
				codes[code]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	stop()
	load.Wait()

	for code, n := range codes {
		if code != http.StatusOK && code != http.StatusConflict {
			t.Errorf("got %d answers %d, want only 200 and 409", n, code)
		}
	}
	if a := e.current(t); a.Revision != top {
		t.Errorf("in force: got revision %d, want %d", a.Revision, top)
	}
	if got := metric(t, e.metrics, "fleetmq_auth_revision"); got != top {
		t.Errorf("fleetmq_auth_revision: got %v, want %d", got, top)
	}
	if published.Load() == 0 {
		t.Errorf("no message was published during the reloads")
	}
	// Nobody lost access, so everybody is still there.
	x.a.expectAlive(t)
	x.bystanderUnharmed(t, e, "after the storm")
}

// TestReloadDuringConnect: a CONNECT whose password check is still running
// when a reload revokes its user must not end up connected under the old
// rules. The broker authenticates with the Authorizer it loaded before the
// swap, and SetAuthorizer re-checks only the sessions attached when it
// looked; attach re-checks a principal granted by an older Authorizer.
func TestReloadDuringConnect(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := reloadBundle(t, 1)
	// A slow hash widens the window between Authenticate and attach.
	slow, err := authz.HashPassword([]byte("slow-pw"), 400_000)
	if err != nil {
		t.Fatal(err)
	}
	b.Users = append(b.Users, authz.User{Username: "slow", PasswordHash: slow})
	e.apply(t, b)

	c, err := net.DialTimeout("tcp", e.addr, timeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cp := packets.Connect{Version: packets.V311, CleanStart: true, ClientID: "slow-1",
		Username: "slow", HasUsername: true, Password: []byte("slow-pw"), HasPassword: true}
	if _, err := c.Write(cp.Append(nil)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // let the broker start verifying
	e.apply(t, without(reloadBundle(t, 2), "slow"))

	// Either the CONNECT is refused, or the session is cut right after.
	c.SetDeadline(time.Now().Add(timeout))
	var ack [4]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil || ack[3] != 0 {
		return // refused or closed: fine
	}
	c.Write([]byte{0xC0, 0x00}) // PINGREQ
	var resp [2]byte
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.ReadFull(c, resp[:]); err == nil {
		t.Fatalf("user removed by revision 2 is connected and answered PINGREQ with % x after the reload; want the session refused or cut", resp)
	}
}
