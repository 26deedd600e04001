package admin_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/fleetmq/fleetmq/broker/authz"
	"github.com/fleetmq/fleetmq/broker/packets"
)

// rawConn is a minimal MQTT 3.1.1 client for benchmarks: thousands of
// idle sessions cost a socket each and no goroutine on this side.
type rawConn struct{ net.Conn }

// rawConnect connects with clean session; username "" connects anonymously.
func rawConnect(addr, clientID, username, password string) (*rawConn, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	cp := packets.Connect{Version: packets.V311, CleanStart: true, ClientID: clientID,
		Username: username, HasUsername: username != "", Password: []byte(password), HasPassword: username != ""}
	c := &rawConn{conn}
	conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write(cp.Append(nil)); err != nil {
		conn.Close()
		return nil, err
	}
	var ack [4]byte
	if _, err := io.ReadFull(conn, ack[:]); err != nil {
		conn.Close()
		return nil, fmt.Errorf("read CONNACK: %w", err)
	}
	if ack[0] != 0x20 || ack[3] != 0 {
		conn.Close()
		return nil, fmt.Errorf("CONNACK % x: refused", ack)
	}
	conn.SetDeadline(time.Time{})
	return c, nil
}

// subscribe sends one SUBSCRIBE and checks the SUBACK.
func (c *rawConn) subscribe(filter string) error {
	s := packets.Subscribe{PacketID: 1, Subscriptions: []packets.Subscription{{Filter: filter, SubOptions: packets.SubOptions{QoS: 1}}}}
	c.SetDeadline(time.Now().Add(timeout))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(s.Append(nil, packets.V311)); err != nil {
		return err
	}
	var ack [5]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		return fmt.Errorf("read SUBACK: %w", err)
	}
	if ack[0] != 0x90 || ack[4] >= 0x80 {
		return fmt.Errorf("SUBACK % x for %q: refused", ack, filter)
	}
	return nil
}

// disconnect sends DISCONNECT and closes.
func (c *rawConn) disconnect() {
	c.Write([]byte{0xE0, 0x00})
	c.Close()
}

// bigBundle is 10,000 users in 100 groups and 50,000 rules: 4 per user
// (own sub-trees, one deny), 90 per group, 1,000 on client ids (990 exact,
// 10 globs). Users share 16 password hashes ("pw-<i%16>") so building it
// stays fast.
func bigBundle(b testing.TB) authz.Bundle {
	const users, groups = 10_000, 100
	var hs [16]string
	for i := range hs {
		hs[i] = hashOf(b, "pw-"+strconv.Itoa(i))
	}
	bd := authz.Bundle{APIVersion: authz.APIVersion, Revision: 1}
	for i := range users {
		name := fmt.Sprintf("u%05d", i)
		bd.Users = append(bd.Users, authz.User{Username: name, PasswordHash: hs[i%16], Groups: []string{fmt.Sprintf("g%03d", i%groups)}})
		bd.Rules = append(bd.Rules,
			rule(authz.EffectAllow, []string{name}, pubSub, fmt.Sprintf("tenants/acme/%s/0/#", name)),
			rule(authz.EffectAllow, []string{name}, pub, fmt.Sprintf("tenants/acme/%s/1/+/telemetry", name)),
			rule(authz.EffectAllow, []string{name}, sub, fmt.Sprintf("tenants/acme/%s/2/#", name), "commands/%u/#"),
			rule(authz.EffectDeny, []string{name}, pubSub, fmt.Sprintf("tenants/acme/%s/0/secret/#", name)),
		)
	}
	for g := range groups {
		for j := range 90 {
			bd.Rules = append(bd.Rules, authz.Rule{
				Subjects: authz.Subjects{Groups: []string{fmt.Sprintf("g%03d", g)}},
				Topics:   []string{fmt.Sprintf("fleet/g%03d/%d/+/status", g, j)},
				Actions:  sub, Effect: authz.EffectAllow,
			})
		}
	}
	for k := range 1000 {
		id := fmt.Sprintf("dev-%d", k)
		if k%100 == 0 {
			id = fmt.Sprintf("dev-%d*", k/100)
		}
		bd.Rules = append(bd.Rules, authz.Rule{Subjects: authz.Subjects{ClientIDs: []string{id}},
			Topics: []string{"devices/%c/#"}, Actions: pubSub, Effect: authz.EffectAllow})
	}
	return bd
}

// BenchmarkReload measures Loader.Apply end to end (parse, compile,
// compare, swap, re-check every session) with a 10,000-user, 50,000-rule
// bundle, with no sessions and with 1,000 connected sessions (real
// loopback connections, each with one subscription).
func BenchmarkReload(b *testing.B) {
	bd := bigBundle(b)
	data := encode(b, bd)
	// Each iteration needs a higher revision: split the JSON around it.
	head, tail, ok := bytes.Cut(data, []byte(`"revision":1,`))
	if !ok {
		b.Fatalf("revision not found in the bundle JSON")
	}
	withRevision := func(rev int) []byte {
		out := make([]byte, 0, len(data)+20)
		out = append(out, head...)
		out = append(out, `"revision":`...)
		out = strconv.AppendInt(out, int64(rev), 10)
		out = append(out, ',')
		return append(out, tail...)
	}
	b.Logf("bundle: %d users, %d rules, %.1f MB of JSON", len(bd.Users), len(bd.Rules), float64(len(data))/1e6)

	for _, sessions := range []int{0, 1000} {
		b.Run(fmt.Sprintf("sessions=%d", sessions), func(b *testing.B) {
			e := newEnv(b, envOptions{})
			e.apply(b, bd)
			for i := range sessions {
				name := fmt.Sprintf("u%05d", i*7)
				c, err := rawConnect(e.addr, fmt.Sprintf("dev-%d", i), name, "pw-"+strconv.Itoa(i*7%16))
				if err != nil {
					b.Fatalf("connect %s: %v", name, err)
				}
				b.Cleanup(func() { c.Close() })
				if err := c.subscribe(fmt.Sprintf("tenants/acme/%s/0/#", name)); err != nil {
					b.Fatal(err)
				}
			}
			if got := e.srv.Stats().ClientsConnected; got != int64(sessions) {
				b.Fatalf("connected: got %d, want %d", got, sessions)
			}
			rev := 1
			b.SetBytes(int64(len(data)))
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				rev++
				next := withRevision(rev)
				b.StartTimer()
				a, err := e.loader.Apply(next, "bench", false)
				if err != nil {
					b.Fatalf("Apply revision %d: %v", rev, err)
				}
				if a.Revoked != 0 {
					b.Fatalf("Apply revoked %d sessions, want 0", a.Revoked)
				}
			}
		})
	}
}

// BenchmarkConnectAuth measures connections per second over loopback:
// CONNECT, CONNACK, DISCONNECT, close. "password" authenticates a user
// whose verification is cached (the first connect paid PBKDF2);
// "anonymous" sends no username to a bundle that allows anonymous access.
func BenchmarkConnectAuth(b *testing.B) {
	e := newEnv(b, envOptions{})
	bd := authz.Bundle{APIVersion: authz.APIVersion, Revision: 1, AllowAnonymous: true}
	for i := range 100 {
		bd.Users = append(bd.Users, user(b, fmt.Sprintf("dev%d", i)))
	}
	bd.Rules = []authz.Rule{rule(authz.EffectAllow, []string{"dev0"}, pubSub, "devices/%u/#")}
	e.apply(b, bd)

	for _, tc := range []struct{ name, username, password string }{
		{"password", "dev0", "dev0-pw"},
		{"anonymous", "", ""},
	} {
		b.Run(tc.name, func(b *testing.B) {
			n := 0
			b.ResetTimer()
			for b.Loop() {
				n++
				c, err := rawConnect(e.addr, fmt.Sprintf("%s-%d", tc.name, n), tc.username, tc.password)
				if err != nil {
					b.Fatal(err)
				}
				c.disconnect()
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "conns/s")
		})
	}
}
