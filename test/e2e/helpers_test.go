package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	mqttv1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/broker/admin"
	"github.com/fleetmq/fleetmq/internal/resource"
	"github.com/fleetmq/fleetmq/internal/testkube"
)

var ctx = context.Background()

// ---- polling ----

// eventually polls check every 20 ms until it reports true.
func eventually(t testing.TB, timeout time.Duration, what string, check func() (bool, string)) {
	t.Helper()
	testkube.Eventually(t, timeout, 20*time.Millisecond, what, check)
}

func randName() string { return testkube.RandName() }

// ---- the samples, applied as a user would ----

// sample reads config/samples/<file> into obj and moves it to namespace ns.
func sample[T client.Object](t testing.TB, file string, obj T, ns string) T {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "samples", file))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, obj); err != nil {
		t.Fatalf("config/samples/%s: %v", file, err)
	}
	obj.SetNamespace(ns)
	return obj
}

func create(t testing.TB, obj client.Object) { t.Helper(); testkube.Create(t, k8s, obj) }

func get(t testing.TB, obj client.Object) { t.Helper(); testkube.Get(t, k8s, obj) }

// edit is `kubectl edit`: read, change, write back (a merge patch, so a
// status write in between does not conflict).
func edit[T client.Object](t testing.TB, obj T, mutate func(T)) {
	t.Helper()
	get(t, obj)
	orig := obj.DeepCopyObject().(T)
	mutate(obj)
	if err := k8s.Patch(ctx, obj, client.MergeFrom(orig)); err != nil {
		t.Fatalf("edit %T %s/%s: %v", obj, obj.GetNamespace(), obj.GetName(), err)
	}
}

func condState(conds []metav1.Condition) string {
	var b strings.Builder
	for _, c := range conds {
		fmt.Fprintf(&b, "[%s=%s %s gen=%d: %q] ", c.Type, c.Status, c.Reason, c.ObservedGeneration, c.Message)
	}
	return b.String()
}

func hasCond(conds []metav1.Condition, typ string, status metav1.ConditionStatus, reason string, gen int64) bool {
	c := meta.FindStatusCondition(conds, typ)
	return c != nil && c.Status == status && c.Reason == reason && c.ObservedGeneration == gen
}

// waitBrokerReady waits for the Broker to be Ready with every replica
// ready and the current auth revision applied by every pod.
func waitBrokerReady(t testing.TB, ns, name string) *mqttv1alpha1.Broker {
	t.Helper()
	b := &mqttv1alpha1.Broker{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	eventually(t, waitTimeout, fmt.Sprintf("Broker %s/%s Ready", ns, name), func() (bool, string) {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(b), b); err != nil {
			return false, err.Error()
		}
		st, g := b.Status, b.Generation
		want := int32(1)
		if b.Spec.Replicas != nil {
			want = *b.Spec.Replicas
		}
		synced := len(st.Pods) == int(want)
		for _, p := range st.Pods {
			synced = synced && p.Ready && p.AppliedRevision == st.AuthRevision
		}
		ok := st.ObservedGeneration == g && st.ReadyReplicas == want && synced &&
			hasCond(st.Conditions, mqttv1alpha1.ConditionReady, metav1.ConditionTrue, mqttv1alpha1.ReasonReconciled, g) &&
			hasCond(st.Conditions, mqttv1alpha1.ConditionAuthSynced, metav1.ConditionTrue, mqttv1alpha1.ReasonAuthSynced, g)
		return ok, fmt.Sprintf("generation %d, observedGeneration %d, authRevision %d, readyReplicas %d, pods %+v, %s",
			g, st.ObservedGeneration, st.AuthRevision, st.ReadyReplicas, st.Pods, condState(st.Conditions))
	})
	return b
}

// waitACLSynced waits for the ACL's current generation to be applied.
func waitACLSynced(t testing.TB, ns, name string) *mqttv1alpha1.ACL {
	t.Helper()
	a := &mqttv1alpha1.ACL{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	eventually(t, waitTimeout, fmt.Sprintf("ACL %s/%s synced", ns, name), func() (bool, string) {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(a), a); err != nil {
			return false, err.Error()
		}
		ok := a.Status.ObservedGeneration == a.Generation &&
			hasCond(a.Status.Conditions, mqttv1alpha1.ConditionReady, metav1.ConditionTrue, mqttv1alpha1.ReasonSynced, a.Generation)
		return ok, fmt.Sprintf("generation %d, observedGeneration %d, %s", a.Generation, a.Status.ObservedGeneration, condState(a.Status.Conditions))
	})
	return a
}

// waitUserSynced is waitACLSynced for a User.
func waitUserSynced(t testing.TB, ns, name string) *mqttv1alpha1.User {
	t.Helper()
	u := &mqttv1alpha1.User{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	eventually(t, waitTimeout, fmt.Sprintf("User %s/%s synced", ns, name), func() (bool, string) {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(u), u); err != nil {
			return false, err.Error()
		}
		ok := u.Status.ObservedGeneration == u.Generation &&
			hasCond(u.Status.Conditions, mqttv1alpha1.ConditionReady, metav1.ConditionTrue, mqttv1alpha1.ReasonSynced, u.Generation)
		return ok, fmt.Sprintf("generation %d, observedGeneration %d, %s", u.Generation, u.Status.ObservedGeneration, condState(u.Status.Conditions))
	})
	return u
}

// ---- a tenant: the three samples in a namespace ----

type tenant struct {
	ns       string
	broker   string
	user     string
	acl      string
	username string
	password string
	// mqttAddr is the pod's IP with the port from the credentials Secret.
	mqttAddr string
	pod      string
	// admin is the pod's admin API (pod IP:8081) with the Broker's token.
	admin *adminAPI
}

// newTenant applies broker.yaml, user.yaml and acl.yaml of config/samples in
// namespace ns, waits for all three to be in force on a running broker,
// and reads what a user reads: the generated credentials and the pod.
func newTenant(t testing.TB, ns string) *tenant {
	t.Helper()
	create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	b := sample(t, "broker.yaml", &mqttv1alpha1.Broker{}, ns)
	u := sample(t, "user.yaml", &mqttv1alpha1.User{}, ns)
	a := sample(t, "acl.yaml", &mqttv1alpha1.ACL{}, ns)
	create(t, b)
	create(t, u)
	create(t, a)
	waitBrokerReady(t, ns, b.Name)
	waitUserSynced(t, ns, u.Name)
	waitACLSynced(t, ns, a.Name)

	tn := &tenant{ns: ns, broker: b.Name, user: u.Name, acl: a.Name, pod: b.Name + "-0"}
	var creds corev1.Secret
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: mqttv1alpha1.CredentialsSecretName(u.Name)}, &creds); err != nil {
		t.Fatalf("generated credentials Secret: %v", err)
	}
	tn.username = string(creds.Data[mqttv1alpha1.CredentialsUsernameKey])
	tn.password = string(creds.Data[mqttv1alpha1.CredentialsPasswordKey])
	port := string(creds.Data[mqttv1alpha1.CredentialsPortKey])
	if tn.username == "" || len(tn.password) < 16 || port == "" {
		t.Fatalf("credentials Secret %s: username %q, password of %d bytes, port %q", creds.Name, tn.username, len(tn.password), port)
	}
	var pod corev1.Pod
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: tn.pod}, &pod); err != nil {
		t.Fatalf("broker pod: %v", err)
	}
	tn.mqttAddr = net.JoinHostPort(pod.Status.PodIP, port)
	var admin corev1.Secret
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: b.Name + "-admin"}, &admin); err != nil {
		t.Fatalf("admin Secret: %v", err)
	}
	tn.admin = &adminAPI{
		addr:   net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(resource.AdminPort)),
		token:  string(admin.Data[resource.AdminTokenKey]),
		client: verifyingClient(t, ns, b.Name),
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("broker %s/%s output:\n%s", ns, tn.pod, tail(pods.Logs(ns, tn.pod), 60))
		}
	})
	return tn
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ---- the broker's admin API, as an administrator reads it ----

type adminAPI struct {
	addr, token string
	// client trusts the Broker's CA only and verifies the headless
	// Service's name, as the operator does.
	client *http.Client
}

// verifyingClient is an HTTPS client for broker's admin API that trusts
// only the CA in its metrics Secret (what a scraper gets).
func verifyingClient(t testing.TB, ns, broker string) *http.Client {
	t.Helper()
	var s corev1.Secret
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: broker + "-metrics"}, &s); err != nil {
		t.Fatalf("metrics Secret: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.Data[resource.TLSCAKey]) {
		t.Fatalf("metrics Secret %s: no CA certificate", s.Name)
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, ServerName: broker + "-headless." + ns + ".svc", MinVersion: tls.VersionTLS12,
	}}}
}

func (a *adminAPI) get(t testing.TB, path string) []byte {
	t.Helper()
	mustLoopback(t, a.addr)
	body, err := a.tryGet(path)
	if err != nil {
		t.Fatalf("broker admin API: %v", err)
	}
	return body
}

func (a *adminAPI) tryGet(path string) ([]byte, error) {
	req, err := http.NewRequest(http.MethodGet, "https://"+a.addr+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return body, nil
}

func (a *adminAPI) auth(t testing.TB) admin.Applied {
	t.Helper()
	body := a.get(t, "/v1/auth")
	var out admin.Applied
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("GET /v1/auth: %v: %s", err, body)
	}
	return out
}

// metrics returns the broker's unlabelled and labelled samples by their
// exposition name (e.g. `fleetmq_auth_reloads_total{result="applied"}`).
func (a *adminAPI) metrics(t testing.TB) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(a.get(t, "/metrics")))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// reloads is how many bundles the broker received, from either source.
func (a *adminAPI) reloads(t testing.TB) int {
	t.Helper()
	m := a.metrics(t)
	n := 0
	for _, r := range []string{"applied", "unchanged", "stale", "invalid"} {
		n += int(m[`fleetmq_auth_reloads_total{result="`+r+`"}`])
	}
	return n
}

// ---- MQTT ----

// mustLoopback refuses to let the suite connect anywhere but loopback.
func mustLoopback(t testing.TB, addr string) {
	t.Helper()
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		t.Fatalf("refusing to connect to %s: not a loopback address", addr)
	}
}

// v5 is an MQTT 5 client (paho.golang) that records what the server does
// to it.
type v5 struct {
	*paho.Client
	id string
	// disconnect receives the reason code of a server DISCONNECT.
	disconnect chan byte
	msgs       chan *paho.Publish
}

// dialV5 connects with username and password. A refused CONNECT returns
// the CONNACK reason code and an error.
func dialV5(t testing.TB, addr, username, password string) (*v5, byte, error) {
	t.Helper()
	mustLoopback(t, addr)
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, 0, err
	}
	c := &v5{id: "e2e-v5-" + randName(), disconnect: make(chan byte, 1), msgs: make(chan *paho.Publish, 256)}
	c.Client = paho.NewClient(paho.ClientConfig{
		Conn:          conn,
		PacketTimeout: 10 * time.Second,
		OnServerDisconnect: func(d *paho.Disconnect) {
			select {
			case c.disconnect <- d.ReasonCode:
			default:
			}
		},
		OnClientError: func(error) {},
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			select {
			case c.msgs <- pr.Packet:
			default:
			}
			return true, nil
		}},
	})
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ca, err := c.Connect(cctx, &paho.Connect{
		ClientID: c.id, KeepAlive: 60, CleanStart: true,
		Username: username, UsernameFlag: true, Password: []byte(password), PasswordFlag: true,
	})
	if err != nil {
		conn.Close()
		if ca != nil {
			return nil, ca.ReasonCode, err
		}
		return nil, 0, err
	}
	t.Cleanup(func() { _ = c.Disconnect(&paho.Disconnect{}) })
	return c, 0, nil
}

func mustV5(t testing.TB, addr, username, password string) *v5 {
	t.Helper()
	c, code, err := dialV5(t, addr, username, password)
	if err != nil {
		t.Fatalf("MQTT 5 CONNECT to %s as %s: code %#x: %v", addr, username, code, err)
	}
	return c
}

// publish sends a QoS 1 PUBLISH and returns the PUBACK reason code.
func (c *v5) publish(t testing.TB, topic, payload string) byte {
	t.Helper()
	code, err := c.tryPublish(topic, payload)
	if err != nil {
		t.Fatalf("PUBLISH %s: %v", topic, err)
	}
	return code
}

func (c *v5) tryPublish(topic, payload string) (byte, error) {
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	pr, err := c.Publish(pctx, &paho.Publish{QoS: 1, Topic: topic, Payload: []byte(payload)})
	if pr != nil {
		return pr.ReasonCode, nil
	}
	return 0, err
}

// subscribe sends SUBSCRIBE at QoS 1 and returns the SUBACK reason code.
func (c *v5) subscribe(t testing.TB, filter string) byte {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	sa, err := c.Subscribe(sctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1}}})
	if sa != nil && len(sa.Reasons) == 1 {
		return sa.Reasons[0]
	}
	t.Fatalf("SUBSCRIBE %s: %v", filter, err)
	return 0
}

// receive waits for a message on topic with payload.
func (c *v5) receive(t testing.TB, topic, payload string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-c.msgs:
			if m.Topic == topic && string(m.Payload) == payload {
				return
			}
		case <-deadline:
			t.Fatalf("client %s: no message %q on %s within 10s", c.id, payload, topic)
		}
	}
}

// accepted: a PUBACK reason code below 0x80 (0x10 is "no matching
// subscribers", a success).
func accepted(code byte) bool { return code < 0x80 }

// connected reports whether the connection is still up and the server
// sent no DISCONNECT.
func (c *v5) connected() bool {
	select {
	case <-c.Done():
		return false
	default:
	}
	return len(c.disconnect) == 0
}

// waitCut waits for the server to end the connection and returns the
// DISCONNECT reason code (-1 when the connection closed without one).
func (c *v5) waitCut(t testing.TB, what string) int {
	t.Helper()
	select {
	case code := <-c.disconnect:
		<-c.Done()
		return int(code)
	case <-c.Done():
		// paho reports a server DISCONNECT after closing the client.
		select {
		case code := <-c.disconnect:
			return int(code)
		case <-time.After(2 * time.Second):
			return -1
		}
	case <-time.After(waitTimeout):
		t.Fatalf("client %s: connection not cut within %v after %s", c.id, waitTimeout, what)
		return 0
	}
}

// v311 is an MQTT 3.1.1 client (paho.mqtt.golang).
type v311 struct {
	mqtt.Client
	lost chan error
}

func v311Options(addr, username, password string) *mqtt.ClientOptions {
	return mqtt.NewClientOptions().
		AddBroker("tcp://" + addr).
		SetClientID("e2e-v311-" + randName()).
		SetUsername(username).SetPassword(password).
		SetProtocolVersion(4).
		SetConnectTimeout(5 * time.Second).
		SetKeepAlive(60 * time.Second).
		SetAutoReconnect(false).
		SetConnectRetry(false)
}

// dialV311 connects; a refused CONNECT is the error.
func dialV311(t testing.TB, addr, username, password string) (*v311, error) {
	t.Helper()
	mustLoopback(t, addr)
	c := &v311{lost: make(chan error, 1)}
	opts := v311Options(addr, username, password).SetConnectionLostHandler(func(_ mqtt.Client, err error) {
		select {
		case c.lost <- err:
		default:
		}
	})
	c.Client = mqtt.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, fmt.Errorf("CONNECT: no CONNACK in 10s")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c, nil
}

// subscribe returns the SUBACK return code (0x80: refused).
func (c *v311) subscribe(t testing.TB, filter string) byte {
	t.Helper()
	tok := c.Subscribe(filter, 1, nil)
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatalf("SUBSCRIBE %s: no SUBACK in 10s", filter)
	}
	code, ok := tok.(*mqtt.SubscribeToken).Result()[filter]
	if !ok {
		t.Fatalf("SUBACK has no code for %s (err %v)", filter, tok.Error())
	}
	return code
}
