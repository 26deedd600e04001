package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetmq/fleetmq/broker/admin"
	"github.com/fleetmq/fleetmq/broker/authz"
	"github.com/fleetmq/fleetmq/broker/config"
)

const timeout = 5 * time.Second

// TestMain lets a test run the real main in a child process (for the exit
// code): FLEETMQ_TEST_MAIN=1 makes this binary behave as fleetmq-broker.
func TestMain(m *testing.M) {
	if os.Getenv("FLEETMQ_TEST_MAIN") == "1" {
		os.Args = append([]string{"fleetmq-broker"}, strings.Fields(os.Getenv("FLEETMQ_TEST_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustHash(t *testing.T, pw string) string {
	t.Helper()
	h, err := authz.HashPassword([]byte(pw), 1000)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func bundleFile(t *testing.T, b authz.Bundle) string {
	t.Helper()
	b.APIVersion = authz.APIVersion
	data, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, "bundle.json", string(data))
}

func TestPasswd(t *testing.T) {
	for _, tc := range []struct {
		name       string
		args       []string
		stdin      string
		password   string
		iterations string
	}{
		// Passwords hold characters outside base64, so finding one in the
		// output means it was echoed, not that a hash happened to spell it.
		{"default iterations", []string{"passwd"}, "pw!\n", "pw!", "$7$40000$"},
		{"no trailing newline", []string{"passwd", "--iterations", "1000"}, "p-w!", "p-w!", "$7$1000$"},
		{"CRLF", []string{"passwd", "--iterations=1000"}, "s3cret pass\r\nignored\n", "s3cret pass", "$7$1000$"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if err := run(tc.args, strings.NewReader(tc.stdin), &out, &errOut); err != nil {
				t.Fatalf("run: %v", err)
			}
			hash := strings.TrimSuffix(out.String(), "\n")
			if strings.Contains(hash, "\n") || !strings.HasPrefix(hash, tc.iterations) {
				t.Fatalf("got output %q, want one line starting %s", out.String(), tc.iterations)
			}
			if ok, err := authz.VerifyPassword(hash, []byte(tc.password)); !ok || err != nil {
				t.Errorf("VerifyPassword(%q, %q): got %v, %v, want true", hash, tc.password, ok, err)
			}
			if ok, _ := authz.VerifyPassword(hash, []byte(tc.password+"x")); ok {
				t.Errorf("VerifyPassword accepts a wrong password")
			}
			if strings.Contains(out.String()+errOut.String(), tc.password) {
				t.Errorf("the password is echoed")
			}
			// The hash is usable in a bundle as is.
			b := authz.Bundle{APIVersion: authz.APIVersion, Users: []authz.User{{Username: "u", PasswordHash: hash}}}
			if err := b.Validate(); err != nil {
				t.Errorf("bundle with the printed hash: %v", err)
			}
		})
	}
}

// expectUsageError checks err is a one-line usageError mentioning want.
func expectUsageError(t *testing.T, err error, want string) {
	t.Helper()
	var ue usageError
	if !errors.As(err, &ue) {
		t.Fatalf("got error %v (%T), want a usageError (exit code 2)", err, err)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("got a message of several lines %q, want one line", msg)
	}
	if !strings.Contains(msg, want) {
		t.Errorf("got message %q, want it to name %q", msg, want)
	}
}

func TestUsageErrors(t *testing.T) {
	good := bundleFile(t, authz.Bundle{Revision: 1, Users: []authz.User{{Username: "u", PasswordHash: mustHash(t, "pw")}}})
	twoBad := bundleFile(t, authz.Bundle{Revision: 1, Users: []authz.User{
		{Username: "u", PasswordHash: "plain"},
		{Username: "u", PasswordHash: mustHash(t, "pw")},
	}})
	loopback := []string{"--mqtt-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		want  string
	}{
		{"unknown flag", []string{"--no-such-flag"}, "", "no-such-flag"},
		{"bad bool", []string{"--allow-anonymous=maybe"}, "", "allow-anonymous"},
		{"flag without value", []string{"--config"}, "", "config"},
		{"stray argument", []string{"serve"}, "", `"serve"`},
		{"bad address", []string{"--mqtt-addr", "nonsense"}, "", "listeners.mqtt"},
		{"bad log level", []string{"--log-level", "loud"}, "", "log.level"},
		{"missing config", []string{"--config", "/nonexistent/broker.yaml"}, "", "/nonexistent/broker.yaml"},
		{"unknown config field", []string{"--config", writeFile(t, "c.yaml", "listenerz:\n  mqtt: \":1883\"\n")}, "", "listenerz"},
		{"misspelt nested field", []string{"--config", writeFile(t, "c.yaml", "limits:\n  maxInflights: 3\n")}, "", "maxInflights"},
		{"bad config value", []string{"--config", writeFile(t, "c.yaml", "limits:\n  maxPacketSize: 3\n")}, "", "maxPacketSize"},
		{"bad connect limit", []string{"--config", writeFile(t, "c.yaml", "limits:\n  maxConnectPacketSize: 3\n")}, "", "maxConnectPacketSize"},
		{"two bad config values", []string{"--config", writeFile(t, "c.yaml", "log:\n  level: loud\n  format: xml\n")}, "", "log.level"},
		{"bad session takeover", []string{"--config", writeFile(t, "c.yaml", "sessionTakeover: steal\n")}, "", "sessionTakeover"},
		{"config not YAML", []string{"--config", writeFile(t, "c.yaml", "listeners: [\n")}, "", "c.yaml"},
		{"missing auth file", []string{"--auth-file", "/nonexistent/bundle.json"}, "", "/nonexistent/bundle.json"},
		{"auth file not JSON", []string{"--auth-file", writeFile(t, "b.json", "users: []")}, "", "b.json"},
		{"auth file with bad entries", []string{"--auth-file", twoBad}, "", `users[0] "u": passwordHash`},
		{"missing token file", []string{"--auth-file", good, "--admin-token-file", "/nonexistent/token"}, "", "/nonexistent/token"},
		{"passwd without password", []string{"passwd"}, "", "empty password"},
		{"passwd bad iterations", []string{"passwd", "--iterations", "0"}, "pw\n", "iterations"},
		{"passwd unknown flag", []string{"passwd", "--cost", "3"}, "pw\n", "cost"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if args[0] != "passwd" {
				// Should the arguments be accepted after all, the broker
				// serves on loopback only.
				args = append(slices.Clone(loopback), args...)
			}
			errc := make(chan error, 1)
			go func() { errc <- run(args, strings.NewReader(tc.stdin), io.Discard, io.Discard) }()
			select {
			case err := <-errc:
				expectUsageError(t, err, tc.want)
			case <-time.After(timeout):
				t.Fatalf("run(%q) is serving, want a usage error", args)
			}
		})
	}
	t.Run("auth file with bad entries names both", func(t *testing.T) {
		err := run(append([]string{"--auth-file", twoBad}, loopback...), strings.NewReader(""), io.Discard, io.Discard)
		for _, want := range []string{`users[0] "u": passwordHash`, `users[1] "u": duplicate username`} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("got %v, want it to name %q", err, want)
			}
		}
	})
}

// TestExitCode runs the real main in a child process.
func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		name string
		args string
		code int
		want string
	}{
		{"unknown flag", "--bogus", 2, "bogus"},
		{"unknown config field", "--config " + writeFile(t, "c.yaml", "sysIntervall: 1s\n"), 2, "sysIntervall"},
		{"invalid auth file", "--mqtt-addr 127.0.0.1:0 --admin-addr 127.0.0.1:0 --auth-file " + writeFile(t, "b.json", `{"apiVersion":"x","revision":-1}`), 2, "revision -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "FLEETMQ_TEST_MAIN=1", "FLEETMQ_TEST_ARGS="+tc.args)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tc.code {
				t.Fatalf("got %v, want exit code %d (stderr %q)", err, tc.code, stderr.String())
			}
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "fleetmq-broker: ") || !strings.Contains(lines[0], tc.want) {
				t.Errorf("got stderr %q, want one line naming %q", stderr.String(), tc.want)
			}
		})
	}
}

func TestParseFlagsPrecedence(t *testing.T) {
	cfgFile := writeFile(t, "c.yaml", "listeners:\n  mqtt: \"127.0.0.1:1111\"\n  admin: \"127.0.0.1:2222\"\nallowAnonymous: true\nauthFile: /from/file\nlog:\n  level: debug\n")
	for _, tc := range []struct {
		name string
		args []string
		want func(c config.Config) bool
	}{
		{"defaults", nil, func(c config.Config) bool {
			return c.Listeners.MQTT == ":1883" && c.Listeners.Admin == ":8081" && !c.AllowAnonymous && c.Log.Level == "info"
		}},
		{"file", []string{"--config", cfgFile}, func(c config.Config) bool {
			return c.Listeners.MQTT == "127.0.0.1:1111" && c.Listeners.Admin == "127.0.0.1:2222" && c.AllowAnonymous && c.AuthFile == "/from/file" && c.Log.Level == "debug"
		}},
		{"flags override the file", []string{"--config", cfgFile, "--mqtt-addr", "127.0.0.1:3333", "--allow-anonymous=false", "--auth-file", "/from/flag", "--log-level", "warn"}, func(c config.Config) bool {
			return c.Listeners.MQTT == "127.0.0.1:3333" && c.Listeners.Admin == "127.0.0.1:2222" && !c.AllowAnonymous && c.AuthFile == "/from/flag" && c.Log.Level == "warn"
		}},
		{"flag order does not matter", []string{"--mqtt-addr", "127.0.0.1:3333", "--config", cfgFile}, func(c config.Config) bool {
			return c.Listeners.MQTT == "127.0.0.1:3333" && c.AllowAnonymous
		}},
		{"session takeover", []string{"--config", writeFile(t, "s.yaml", "sessionTakeover: discard\n")}, func(c config.Config) bool {
			return c.SessionTakeover == "discard"
		}},
		{"token and data dir", []string{"--admin-token-file", "/t", "--data-dir", "/d"}, func(c config.Config) bool {
			return c.AdminTokenFile == "/t" && c.DataDir == "/d"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseFlags(tc.args, io.Discard)
			if err != nil {
				t.Fatalf("parseFlags: %v", err)
			}
			if !tc.want(c) {
				t.Errorf("got config %+v, not what the flags and file say", c)
			}
		})
	}
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startServe runs serve with cfg until stop (or the test's end): stop
// fails the test unless serve returns nil soon after its context ends.
func startServe(t *testing.T, cfg config.Config) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, slog.New(slog.DiscardHandler)) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve: got %v, want nil after a graceful stop", err)
				}
			case <-time.After(2 * timeout):
				t.Fatalf("serve did not return after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// expectHeaderLimit fails unless the admin server at url refuses headers
// over admin.DefaultMaxHeaderBytes with 431: main runs the server
// admin.NewHTTPServer builds.
func expectHeaderLimit(t *testing.T, client *http.Client, url string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Big", strings.Repeat("a", 2*admin.DefaultMaxHeaderBytes))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s with a big header: %v", url, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("GET %s with a %d-byte header: got %d, want 431", url, 2*admin.DefaultMaxHeaderBytes, resp.StatusCode)
	}
}

// TestServe runs the whole broker as main wires it: auth file, admin API
// with a token, a real client, a push, graceful stop.
func TestServe(t *testing.T) {
	authFile := bundleFile(t, authz.Bundle{Revision: 3,
		Users: []authz.User{{Username: "dev", PasswordHash: mustHash(t, "dev-pw")}},
		Rules: []authz.Rule{{Subjects: authz.Subjects{Users: []string{"dev"}}, Topics: []string{"d/#"},
			Actions: []authz.Action{authz.ActionPublish, authz.ActionSubscribe}, Effect: authz.EffectAllow}},
	})
	tokenFile := writeFile(t, "token", "tok\n")
	mqttAddr, adminAddr := freeAddr(t), freeAddr(t)
	cfg, err := parseFlags([]string{"--mqtt-addr", mqttAddr, "--admin-addr", adminAddr, "--auth-file", authFile,
		"--admin-token-file", tokenFile, "--data-dir", t.TempDir()}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg.SysInterval = config.Duration{Duration: -1}
	stop := startServe(t, cfg)

	get := func(path, tok string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+adminAddr+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(timeout)
	for {
		if code, _ := get("/readyz", ""); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz not 200 within %v", timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Run("bundle from the file in force", func(t *testing.T) {
		code, body := get("/v1/auth", "tok")
		if code != http.StatusOK || !strings.Contains(body, `"revision": 3`) || !strings.Contains(body, `"source": "file"`) {
			t.Errorf("GET /v1/auth: got %d %s, want revision 3 from the file", code, body)
		}
		if code, _ := get("/v1/auth", ""); code != http.StatusUnauthorized {
			t.Errorf("GET /v1/auth without token: got %d, want 401", code)
		}
	})
	t.Run("client with the bundle's credentials", func(t *testing.T) {
		opts := mqtt.NewClientOptions().AddBroker("tcp://" + mqttAddr).SetClientID("dev-1").SetProtocolVersion(4).
			SetUsername("dev").SetPassword("dev-pw").SetAutoReconnect(false).SetConnectTimeout(timeout)
		c := mqtt.NewClient(opts)
		if tok := c.Connect(); !tok.WaitTimeout(timeout) || tok.Error() != nil {
			t.Fatalf("connect: %v", tok.Error())
		}
		defer c.Disconnect(50)
		opts.SetClientID("dev-2").SetPassword("wrong")
		bad := mqtt.NewClient(opts)
		tok := bad.Connect()
		tok.WaitTimeout(timeout)
		if code := tok.(*mqtt.ConnectToken).ReturnCode(); code != 4 {
			t.Errorf("wrong password: got return code %d, want 4", code)
		}
	})
	t.Run("oversized headers refused", func(t *testing.T) {
		expectHeaderLimit(t, http.DefaultClient, "http://"+adminAddr+"/healthz")
	})
	t.Run("metrics", func(t *testing.T) {
		code, body := get("/metrics", "tok")
		if code != http.StatusOK || !strings.Contains(body, "\nfleetmq_auth_revision 3\n") {
			t.Errorf("GET /metrics: got %d, want 200 with fleetmq_auth_revision 3", code)
		}
		if !strings.Contains(body, "\nfleetmq_store_failed 0\n") || !strings.Contains(body, "\nfleetmq_store_commits_total ") {
			t.Errorf("GET /metrics: no store metrics with --data-dir:\n%s", body)
		}
	})

	stop()
}
