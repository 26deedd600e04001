package broker_test

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/fleetmq/fleetmq/broker"
	"github.com/fleetmq/fleetmq/broker/admin"
	"github.com/fleetmq/fleetmq/broker/authz"
	"github.com/fleetmq/fleetmq/broker/internal/mqtttest"
	"github.com/fleetmq/fleetmq/broker/packets"
)

// connectFrom sends cp over a new connection from local address ip
// (127.0.0.x: every loopback address is a source of its own) and returns
// the CONNACK's code.
func connectFrom(t *testing.T, addr, ip string, cp *packets.Connect) packets.ReasonCode {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: mqtttest.Timeout}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Errorf("dial from %s: %v", ip, err)
		return 0xFF
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(mqtttest.Timeout))
	if _, err := conn.Write(cp.Append(nil)); err != nil {
		t.Errorf("write CONNECT: %v", err)
		return 0xFF
	}
	first, body, err := packets.ReadPacket(conn, nil, 0)
	if err != nil {
		t.Errorf("read CONNACK: %v", err)
		return 0xFF
	}
	p := mqtttest.Decode(cp.Version, first, body)
	if p.Connack == nil {
		t.Errorf("got %v, want CONNACK", p)
		return 0xFF
	}
	return p.Connack.ReasonCode
}

func login(v packets.Version, id, user, password string) *packets.Connect {
	cp := &packets.Connect{Version: v, ClientID: id, CleanStart: true, KeepAlive: 60,
		Username: user, HasUsername: true, Password: []byte(password), HasPassword: true}
	return cp
}

// TestHostilePasswordGuessing: 16 sockets guessing passwords in parallel
// (which kept both cores on PBKDF2 and an honest CONNECT waiting ~100 ms)
// are cut off after a few failures: their source backs off (v5 0x9F
// Connection rate exceeded, 3.1.1 rc 3), and so does a username guessed
// too often, from any address. A client whose password was verified
// before is still admitted at once, from the attackers' own address too,
// and the counters say what happened. Not parallel: the hashing slots are
// the process's, and the burst would slow other tests' logins.
func TestHostilePasswordGuessing(t *testing.T) {
	hash := func(pw string) string {
		h, err := authz.HashPassword([]byte(pw), 1000)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	policy, err := authz.Compile(&authz.Bundle{APIVersion: authz.APIVersion, Revision: 1,
		Users: []authz.User{{Username: "honest", PasswordHash: hash("good")}, {Username: "victim", PasswordHash: hash("secret")}},
		Rules: []authz.Rule{{Subjects: authz.Subjects{Users: []string{"honest", "victim"}}, Topics: []string{"#"},
			Actions: []authz.Action{authz.ActionPublish, authz.ActionSubscribe}, Effect: authz.EffectAllow}}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := broker.New(broker.Options{Auth: admin.PolicyAuthorizer(policy), SysInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	addr := mqtttest.Serve(t, srv)

	// Both users connect once: their passwords are verified and cached.
	for _, u := range []struct{ user, pw string }{{"honest", "good"}, {"victim", "secret"}} {
		if code := connectFrom(t, addr, "127.0.0.1", login(packets.V5, u.user, u.user, u.pw)); code != packets.Success {
			t.Fatalf("%s before the attack: code 0x%02X, want 0", u.user, byte(code))
		}
	}

	// Credential stuffing from one address: every attempt a new username.
	const attackers, tries = 16, 10
	var mu sync.Mutex
	codes := map[packets.ReasonCode]int{}
	var wg sync.WaitGroup
	for a := range attackers {
		wg.Go(func() {
			v := packets.V5
			if a%2 == 1 {
				v = packets.V311
			}
			for i := range tries {
				name := fmt.Sprintf("user-%d-%d", a, i)
				code := connectFrom(t, addr, "127.0.0.1", login(v, name, name, "guess"))
				mu.Lock()
				codes[code]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// Refused without a hash: throttled, or busy when the slots stayed
	// taken (a slow machine: the race detector makes PBKDF2 ~6× slower).
	wrong := codes[packets.BadUserNameOrPassword] + codes[packets.ConnRefusedBadUsernamePass]
	throttled := codes[packets.ConnectionRateExceeded] + codes[packets.ServerBusy] + codes[packets.ConnRefusedServerUnavailable]
	if wrong+throttled != attackers*tries {
		t.Fatalf("CONNACK codes %v: want only bad credentials, throttled and busy", codes)
	}
	// Ten failures are free per source; attempts already being checked
	// when the eleventh failed may fail too, one per attacker at most.
	if wrong > 11+attackers {
		t.Errorf("%d guesses checked (codes %v), want at most %d: the source did not back off", wrong, codes, 11+attackers)
	}
	if st := srv.Stats(); st.AuthThrottledSource == 0 || st.AuthThrottledSource+st.AuthBusy != int64(throttled) || st.AuthFailures != int64(wrong) {
		t.Errorf("stats: %d throttled by source, %d busy, %d auth failures; want %d throttled (some by source), %d failures",
			st.AuthThrottledSource, st.AuthBusy, st.AuthFailures, throttled, wrong)
	}
	// The honest client, from the attackers' address, is admitted: its
	// password is cached, so the source's backoff does not apply to it.
	if code := connectFrom(t, addr, "127.0.0.1", login(packets.V5, "honest-2", "honest", "good")); code != packets.Success {
		t.Fatalf("honest client after the attack: code 0x%02X, want 0", byte(code))
	}

	// One username guessed: five failures are free, the sixth starts the
	// backoff, and then the username is throttled from any address...
	for i := range 6 {
		if code := connectFrom(t, addr, "127.0.0.2", login(packets.V5, "g", "victim", fmt.Sprint("guess-", i))); code != packets.BadUserNameOrPassword {
			t.Fatalf("guess %d: code 0x%02X, want 0x86", i, byte(code))
		}
	}
	if code := connectFrom(t, addr, "127.0.0.3", login(packets.V311, "g", "victim", "guess")); code != packets.ConnRefusedServerUnavailable {
		t.Errorf("guess from another address: code %d, want 3", byte(code))
	}
	// ...but the victim's own (cached) password still works.
	if code := connectFrom(t, addr, "127.0.0.3", login(packets.V5, "victim-2", "victim", "secret")); code != packets.Success {
		t.Errorf("victim with its right password: code 0x%02X, want 0", byte(code))
	}
	// A fresh address and an untouched username are not held back.
	if code := connectFrom(t, addr, "127.0.0.4", login(packets.V5, "typo", "honest", "typo")); code != packets.BadUserNameOrPassword {
		t.Errorf("one typo from a fresh address: code 0x%02X, want 0x86", byte(code))
	}
	if n := srv.Stats().AuthThrottledUser; n != 1 {
		t.Errorf("AuthThrottledUser %d, want 1", n)
	}
}

// busyAuth has no hashing slot for anyone.
type busyAuth struct{}

func (busyAuth) Authenticate(string, bool, []byte, string) (broker.Principal, authz.AuthResult) {
	return nil, authz.AuthBusy
}
func (busyAuth) Rebind(p broker.Principal, _ string) (broker.Principal, authz.AuthResult) {
	return p, authz.AuthOK
}
func (busyAuth) AllowAnonymous() bool { return false }

// TestHostileAuthBusy: a CONNECT whose password cannot be checked because
// every hashing slot stayed taken gets v5 0x89 Server busy (3.1.1 rc 3),
// counted apart from failed logins.
func TestHostileAuthBusy(t *testing.T) {
	t.Parallel()
	srv, addr := start(t, broker.Options{Auth: busyAuth{}})
	for _, tc := range []struct {
		v    packets.Version
		want packets.ReasonCode
	}{{packets.V5, packets.ServerBusy}, {packets.V311, packets.ConnRefusedServerUnavailable}} {
		if code := connectFrom(t, addr, "127.0.0.1", login(tc.v, "c", "u", "p")); code != tc.want {
			t.Errorf("version %d: code 0x%02X, want 0x%02X", tc.v, byte(code), byte(tc.want))
		}
	}
	if st := srv.Stats(); st.AuthBusy != 2 || st.AuthFailures != 0 {
		t.Errorf("stats: AuthBusy %d, AuthFailures %d; want 2, 0", st.AuthBusy, st.AuthFailures)
	}
}
