package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	dto "github.com/prometheus/client_model/go"

	"github.com/fleetmq/fleetmq/broker"
	"github.com/fleetmq/fleetmq/broker/admin"
	"github.com/fleetmq/fleetmq/broker/authz"
)

// timeout bounds every wait: generous for a loaded two-core machine running
// the race detector, short enough that a broken feature fails rather than
// hangs.
const timeout = 5 * time.Second

// testIterations keeps PBKDF2 cheap in tests (production uses
// authz.DefaultIterations).
const testIterations = 1000

// hashes caches one hash per password so fixtures stay fast.
var hashes sync.Map // password → $7$ hash

func hashOf(t testing.TB, password string) string {
	t.Helper()
	if h, ok := hashes.Load(password); ok {
		return h.(string)
	}
	h, err := authz.HashPassword([]byte(password), testIterations)
	if err != nil {
		t.Fatalf("HashPassword: %v", err)
	}
	actual, _ := hashes.LoadOrStore(password, h)
	return actual.(string)
}

// leaksHash reports whether body holds a password hash of the fixtures
// (all made with testIterations; the scheme name alone, "$7$", may appear
// in error messages).
func leaksHash(body []byte) bool {
	return bytes.Contains(body, []byte("$7$"+strconv.Itoa(testIterations)+"$"))
}

// user is a bundle user whose password is "<name>-pw".
func user(t testing.TB, name string, groups ...string) authz.User {
	t.Helper()
	return authz.User{Username: name, PasswordHash: hashOf(t, name+"-pw"), Groups: groups}
}

// rule builds a rule for the given users.
func rule(effect authz.Effect, users []string, actions []authz.Action, topics ...string) authz.Rule {
	return authz.Rule{Subjects: authz.Subjects{Users: users}, Topics: topics, Actions: actions, Effect: effect}
}

var (
	pub    = []authz.Action{authz.ActionPublish}
	sub    = []authz.Action{authz.ActionSubscribe}
	pubSub = []authz.Action{authz.ActionPublish, authz.ActionSubscribe}
)

// encode marshals b, filling in the apiVersion.
func encode(t testing.TB, b authz.Bundle) []byte {
	t.Helper()
	if b.APIVersion == "" {
		b.APIVersion = authz.APIVersion
	}
	data, err := json.Marshal(b)
	if err != nil {
		t.Fatalf("marshal bundle: %v", err)
	}
	return data
}

// env is a real broker on loopback with a Loader and the admin API in front.
type env struct {
	srv     *broker.Server
	loader  *admin.Loader
	metrics *admin.Metrics
	addr    string // MQTT, host:port
	api     *httptest.Server
	token   string
	// tokenFile holds token ("" with envOptions.noTokenFile).
	tokenFile string
}

type envOptions struct {
	allowAnonymous bool  // broker and readiness without a bundle
	maxBodyBytes   int64 // 0: default
	noTokenFile    bool  // the admin API has no token at all
	// server sets the admin HTTP server's limits (zero: the defaults).
	server admin.ServerOptions
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	srv, err := broker.New(broker.Options{AllowAnonymous: o.allowAnonymous, SysInterval: -1})
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()

	e := &env{srv: srv, addr: ln.Addr().String(), token: "s3cret-token"}
	e.metrics = admin.NewMetrics(srv)
	e.loader = admin.NewLoader(srv, nil, e.metrics)
	ho := admin.HandlerOptions{Loader: e.loader, Metrics: e.metrics, AllowAnonymous: o.allowAnonymous, MaxBodyBytes: o.maxBodyBytes}
	if !o.noTokenFile {
		ho.TokenFile = filepath.Join(t.TempDir(), "token")
		e.tokenFile = ho.TokenFile
		writeFile(t, ho.TokenFile, e.token+"\n")
	}
	h, err := admin.NewHandler(ho)
	if err != nil {
		t.Fatalf("NewHandler: %v", err)
	}
	// The server cmd/broker runs, with its timeouts and limits.
	e.api = httptest.NewUnstartedServer(h)
	so := o.server
	so.Metrics = e.metrics
	e.api.Config = admin.NewHTTPServer(h, so)
	e.api.Listener = admin.Listener(e.api.Listener)
	e.api.Start()
	t.Cleanup(func() {
		e.api.Close()
		sctx, scancel := context.WithTimeout(context.Background(), timeout)
		defer scancel()
		if err := srv.Shutdown(sctx); err != nil {
			t.Errorf("broker shutdown: %v", err)
		}
		cancel()
		select {
		case <-served:
		case <-time.After(timeout):
			t.Errorf("Serve did not return after Shutdown")
		}
	})
	return e
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// apply loads a bundle through the Loader and fails the test on error.
func (e *env) apply(t testing.TB, b authz.Bundle) admin.Applied {
	t.Helper()
	a, err := e.loader.Apply(encode(t, b), "test", false)
	if err != nil {
		t.Fatalf("Apply revision %d: %v", b.Revision, err)
	}
	return a
}

// do sends an admin API request with the bearer token tok ("" for none).
func (e *env) do(t testing.TB, method, path, tok string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.api.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := e.api.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, data
}

// put PUTs a bundle with the right token; query is "" or "?force=true".
func (e *env) put(t testing.TB, data []byte, query string) (int, []byte) {
	t.Helper()
	return e.do(t, http.MethodPut, "/v1/auth"+query, e.token, data)
}

// current GETs /v1/auth.
func (e *env) current(t testing.TB) admin.Applied {
	t.Helper()
	code, body := e.do(t, http.MethodGet, "/v1/auth", e.token, nil)
	if code != http.StatusOK {
		t.Fatalf("GET /v1/auth: got %d %s, want 200", code, body)
	}
	if leaksHash(body) {
		t.Fatalf("GET /v1/auth leaks a password hash: %s", body)
	}
	var a admin.Applied
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatalf("GET /v1/auth: decode %s: %v", body, err)
	}
	return a
}

// metric returns the value of one series from the registry, e.g.
// metric(m, "fleetmq_acl_denials_total", "publish"); label values are
// matched in order.
func metric(t testing.TB, m *admin.Metrics, name string, labelValues ...string) float64 {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, s := range f.GetMetric() {
			if len(s.GetLabel()) != len(labelValues) {
				continue
			}
			for i, l := range s.GetLabel() {
				if l.GetValue() != labelValues[i] {
					continue series
				}
			}
			return value(s)
		}
	}
	return 0
}

func value(s *dto.Metric) float64 {
	switch {
	case s.Counter != nil:
		return s.Counter.GetValue()
	case s.Gauge != nil:
		return s.Gauge.GetValue()
	case s.Untyped != nil:
		return s.Untyped.GetValue()
	}
	return 0
}

// eventually polls cond until it holds or timeout passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ---- MQTT 5 clients (eclipse/paho.golang) ----

// v5Client is a paho.golang client whose events land in channels.
type v5Client struct {
	*paho.Client
	msgs chan *paho.Publish
	disc chan *paho.Disconnect // DISCONNECT from the server
	errs chan error            // connection errors (lost connection)
	// discard drops received messages instead of queueing them (load).
	discard atomic.Bool
}

type v5Opts struct {
	id, username, password string
	anonymous              bool   // send no username
	expiry                 uint32 // session expiry interval
	keepClean              bool   // CleanStart false
}

// dialV5 connects an MQTT 5 client; err is the CONNECT's failure (ack holds
// the refusing CONNACK when there was one).
func dialV5(t testing.TB, addr string, o v5Opts) (*v5Client, *paho.Connack, error) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c := &v5Client{
		msgs: make(chan *paho.Publish, 10000),
		disc: make(chan *paho.Disconnect, 1),
		errs: make(chan error, 16),
	}
	c.Client = paho.NewClient(paho.ClientConfig{
		Conn: conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			if c.discard.Load() {
				return true, nil
			}
			select {
			case c.msgs <- pr.Packet:
			default:
				t.Errorf("client %s: message buffer full", o.id)
			}
			return true, nil
		}},
		OnServerDisconnect: func(d *paho.Disconnect) {
			select {
			case c.disc <- d:
			default:
			}
		},
		OnClientError: func(err error) {
			select {
			case c.errs <- err:
			default:
			}
		},
		PacketTimeout: timeout,
	})
	cp := &paho.Connect{ClientID: o.id, CleanStart: !o.keepClean, KeepAlive: 30,
		Properties: &paho.ConnectProperties{RequestProblemInfo: true}}
	if o.expiry > 0 {
		cp.Properties.SessionExpiryInterval = &o.expiry
	}
	if !o.anonymous {
		cp.Username, cp.UsernameFlag = o.username, true
		cp.Password, cp.PasswordFlag = []byte(o.password), true
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ack, err := c.Connect(ctx, cp)
	if err != nil {
		return nil, ack, err
	}
	t.Cleanup(func() {
		c.Disconnect(&paho.Disconnect{ReasonCode: 0})
		select {
		case <-c.Done():
		case <-time.After(timeout):
		}
	})
	return c, ack, nil
}

// mustV5 connects user (password "<user>-pw") with client id id.
func mustV5(t testing.TB, addr, id, username string) *v5Client {
	t.Helper()
	c, ack, err := dialV5(t, addr, v5Opts{id: id, username: username, password: username + "-pw"})
	if err != nil {
		t.Fatalf("connect %s as %s: %v (CONNACK %+v)", id, username, err, ack)
	}
	return c
}

func (c *v5Client) subscribe(t testing.TB, filter string, qos byte) *paho.Suback {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	sa, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: qos}}})
	if sa == nil {
		t.Fatalf("subscribe %q: no SUBACK: %v", filter, err)
	}
	return sa
}

func (c *v5Client) mustSubscribe(t testing.TB, filter string, qos byte) {
	t.Helper()
	if sa := c.subscribe(t, filter, qos); len(sa.Reasons) != 1 || sa.Reasons[0] >= 0x80 {
		t.Fatalf("subscribe %q: got SUBACK %v, want success", filter, sa.Reasons)
	}
}

// publish sends a QoS 1 message and returns the PUBACK reason code.
func (c *v5Client) publish(t testing.TB, topic, payload string) byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	pr, err := c.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: []byte(payload)})
	if pr == nil {
		t.Fatalf("publish %q: no PUBACK: %v", topic, err)
	}
	return pr.ReasonCode
}

func (c *v5Client) mustPublish(t testing.TB, topic, payload string) {
	t.Helper()
	if code := c.publish(t, topic, payload); code >= 0x80 {
		t.Fatalf("publish %q: got PUBACK 0x%02x, want success", topic, code)
	}
}

// next returns the next message; it fails the test after timeout.
func (c *v5Client) next(t testing.TB) *paho.Publish { t.Helper(); return receive(t, c.msgs) }

// receive returns the next value from ch; it fails the test after timeout.
func receive[T any](t testing.TB, ch <-chan T) T {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(timeout):
		t.Fatalf("no message within %v", timeout)
		var zero T
		return zero
	}
}

// expectNext fails unless the next message is topic/payload. Because the
// broker delivers one publisher's messages in order, a message published
// before the expected one and wrongly delivered shows up here.
func (c *v5Client) expectNext(t testing.TB, topic, payload string) {
	t.Helper()
	m := c.next(t)
	if m.Topic != topic || string(m.Payload) != payload {
		t.Fatalf("got message %q %q, want %q %q", m.Topic, m.Payload, topic, payload)
	}
}

// expectKicked waits for a server DISCONNECT and checks its reason code.
func (c *v5Client) expectKicked(t testing.TB, code byte) {
	t.Helper()
	select {
	case d := <-c.disc:
		if d.ReasonCode != code {
			t.Fatalf("got DISCONNECT 0x%02x, want 0x%02x", d.ReasonCode, code)
		}
	case <-time.After(timeout):
		t.Fatalf("no DISCONNECT within %v, want 0x%02x", timeout, code)
	}
	select {
	case <-c.Done():
	case <-time.After(timeout):
		t.Fatalf("connection still open %v after DISCONNECT", timeout)
	}
}

// expectAlive fails if the connection ended or reported an error.
func (c *v5Client) expectAlive(t testing.TB) {
	t.Helper()
	select {
	case d := <-c.disc:
		t.Fatalf("got DISCONNECT 0x%02x, want the connection kept", d.ReasonCode)
	case err := <-c.errs:
		t.Fatalf("got connection error %v, want the connection kept", err)
	case <-c.Done():
		t.Fatalf("connection closed, want it kept")
	default:
	}
}

// ---- MQTT 3.1.1 clients (eclipse/paho.mqtt.golang) ----

type v3Client struct {
	mqtt.Client
	msgs chan mqtt.Message
	lost chan error
}

type v3Opts struct {
	id, username, password string
	anonymous              bool
	persistent             bool // clean session false
}

// dialV3 connects an MQTT 3.1.1 client; code is the CONNACK return code.
func dialV3(t testing.TB, addr string, o v3Opts) (*v3Client, byte, error) {
	t.Helper()
	c := &v3Client{msgs: make(chan mqtt.Message, 10000), lost: make(chan error, 1)}
	opts := mqtt.NewClientOptions().
		AddBroker("tcp://" + addr).
		SetClientID(o.id).
		SetProtocolVersion(4).
		SetCleanSession(!o.persistent).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(timeout).
		SetWriteTimeout(timeout).
		SetOrderMatters(true).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			select {
			case c.msgs <- m:
			default:
				t.Errorf("client %s: message buffer full", o.id)
			}
		}).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			select {
			case c.lost <- err:
			default:
			}
		})
	if !o.anonymous {
		opts.SetUsername(o.username).SetPassword(o.password)
	}
	c.Client = mqtt.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(timeout) {
		t.Fatalf("connect %s: no CONNACK within %v", o.id, timeout)
	}
	code := tok.(*mqtt.ConnectToken).ReturnCode()
	if err := tok.Error(); err != nil {
		return nil, code, err
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c, code, nil
}

func mustV3(t testing.TB, addr, id, username string, persistent bool) *v3Client {
	t.Helper()
	c, code, err := dialV3(t, addr, v3Opts{id: id, username: username, password: username + "-pw", persistent: persistent})
	if err != nil {
		t.Fatalf("connect %s as %s: %v (return code %d)", id, username, err, code)
	}
	return c
}

// subscribe returns the SUBACK code for filter.
func (c *v3Client) subscribe(t testing.TB, filter string, qos byte) byte {
	t.Helper()
	tok := c.Subscribe(filter, qos, nil)
	if !tok.WaitTimeout(timeout) {
		t.Fatalf("subscribe %q: no SUBACK within %v", filter, timeout)
	}
	res := tok.(*mqtt.SubscribeToken).Result()
	code, ok := res[filter]
	if !ok {
		t.Fatalf("subscribe %q: SUBACK result %v has no entry for it (err %v)", filter, res, tok.Error())
	}
	return code
}

func (c *v3Client) mustSubscribe(t testing.TB, filter string, qos byte) {
	t.Helper()
	if code := c.subscribe(t, filter, qos); code >= 0x80 {
		t.Fatalf("subscribe %q: got SUBACK 0x%02x, want success", filter, code)
	}
}

func (c *v3Client) publish(t testing.TB, topic string, qos byte, payload string) {
	t.Helper()
	tok := c.Publish(topic, qos, false, payload)
	if !tok.WaitTimeout(timeout) {
		t.Fatalf("publish %q: not acknowledged within %v", topic, timeout)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("publish %q: %v", topic, err)
	}
}

func (c *v3Client) next(t testing.TB) mqtt.Message { t.Helper(); return receive(t, c.msgs) }

func (c *v3Client) expectNext(t testing.TB, topic, payload string) {
	t.Helper()
	m := c.next(t)
	if m.Topic() != topic || string(m.Payload()) != payload {
		t.Fatalf("got message %q %q, want %q %q", m.Topic(), m.Payload(), topic, payload)
	}
}

func (c *v3Client) expectLost(t testing.TB) {
	t.Helper()
	select {
	case <-c.lost:
	case <-time.After(timeout):
		t.Fatalf("connection not closed within %v", timeout)
	}
}
