package controllers_test

// The envtest suite: a real kube-apiserver and etcd (built by
// hack/envtest.sh), the operator's three controllers in one manager, and,
// for the tests that need a broker pod, real fleetmq-broker processes on
// loopback that the operator reaches through loopbackResolver.
//
// Envtest has no kubelet, scheduler, StatefulSet controller or garbage
// collector: a test that needs a broker pod creates the Pod object itself
// and sets its status, and one that needs readyReplicas patches the
// StatefulSet's status.
//
// FLEETMQ_TEST_LOG=1 sends the operator's logs to stderr.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	mqttv1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/broker/admin"
	"github.com/fleetmq/fleetmq/broker/authz"
	"github.com/fleetmq/fleetmq/controllers"
	"github.com/fleetmq/fleetmq/internal/authsync"
	"github.com/fleetmq/fleetmq/internal/resource"
	"github.com/fleetmq/fleetmq/internal/testkube"
)

// Suite-wide state, set up once by TestMain.
var (
	// k8s talks to the API server directly (no cache): what a test reads
	// is what the server holds.
	k8s    client.Client
	scheme = testkube.NewScheme()
	// resolver maps broker Pod objects to brokers running on loopback.
	resolver = &loopbackResolver{addrs: map[types.NamespacedName]string{}}
	// pushes counts PUT /v1/auth calls per admin address.
	pushes = &pushCounter{n: map[string]int{}}
	// tmpDir holds the broker binary.
	tmpDir string
)

const (
	// waitTimeout bounds every eventually: generous, since the machine is
	// shared and the race detector slows everything down.
	waitTimeout = 30 * time.Second
	// hashIterations keeps PBKDF2 cheap in tests.
	hashIterations = 1000
)

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "controllers envtest suite: "+format+"\n", args...)
		return 1
	}
	testkube.SetLogger()
	var err error
	tmpDir, err = os.MkdirTemp("", "fleetmq-envtest-")
	if err != nil {
		return fail("%v", err)
	}
	defer os.RemoveAll(tmpDir)

	env, err := testkube.Start(scheme, filepath.Join("..", "config", "crd", "bases"))
	if err != nil {
		return fail("%v", err)
	}
	defer env.Stop()
	cfg := env.Config
	k8s = env.Client
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:  scheme,
		Cache:   controllers.CacheOptions(),
		Metrics: metricsserver.Options{BindAddress: "0"},
	})
	if err != nil {
		return fail("manager: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	httpClient := &http.Client{Timeout: 10 * time.Second}
	tlsClients := &authsync.TLSClients{}
	err = controllers.Setup(ctx, mgr, controllers.Config{
		BrokerImage:       "fleetmq-broker:envtest",
		HashIterations:    hashIterations,
		Resolver:          resolver,
		OperatorNamespace: operatorNamespace,
		NewAuthClient: func(token string, tls *authsync.TLS) authsync.Client {
			// Brokers from startBroker serve the admin API over plain HTTP
			// (the tests of auth sync need no certificates); those from
			// startBrokerTLS over HTTPS, reached with the operator's own
			// TLS client, which verifies them against the Broker's CA.
			return countingClient{inner: byScheme{
				plain: &authsync.HTTPClient{Token: token, HTTP: httpClient},
				tls:   tlsClients.Client(token, tls),
			}, counter: pushes}
		},
	})
	if err != nil {
		return fail("controllers.Setup: %v", err)
	}
	mgrDone := make(chan error, 1)
	go func() { mgrDone <- mgr.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-mgrDone; err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}()

	return m.Run()
}

// operatorNamespace is what the suite's operator believes its namespace
// is: the one its Brokers' NetworkPolicies admit to the admin port.
const operatorNamespace = "fleetmq-system"

// loopbackResolver is the operator's PodResolver in tests: it knows only
// the pods a test registered, each backed by a broker on 127.0.0.1, so the
// operator never dials anything else.
type loopbackResolver struct {
	mu    sync.Mutex
	addrs map[types.NamespacedName]string // guarded by mu
	tls   map[string]bool                 // admin addresses served over TLS; guarded by mu
}

func (r *loopbackResolver) setTLS(addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tls == nil {
		r.tls = map[string]bool{}
	}
	r.tls[addr] = true
}

func (r *loopbackResolver) isTLS(addr string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tls[addr]
}

// byScheme sends to a broker with the client its admin API needs.
type byScheme struct{ plain, tls authsync.Client }

func (c byScheme) pick(addr string) authsync.Client {
	if resolver.isTLS(addr) {
		return c.tls
	}
	return c.plain
}

func (c byScheme) GetAuth(ctx context.Context, addr string) (authsync.Applied, error) {
	return c.pick(addr).GetAuth(ctx, addr)
}

func (c byScheme) PutAuth(ctx context.Context, addr string, bundle []byte) (authsync.Applied, error) {
	return c.pick(addr).PutAuth(ctx, addr, bundle)
}

func (r *loopbackResolver) set(ns, pod, addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addrs[types.NamespacedName{Namespace: ns, Name: pod}] = addr
}

func (r *loopbackResolver) AdminAddress(pod *corev1.Pod) (string, bool) {
	ip := net.ParseIP(pod.Status.PodIP)
	if ip == nil || !ip.IsLoopback() {
		return "", false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	addr, ok := r.addrs[types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}]
	return addr, ok
}

// pushCounter counts PutAuth calls by admin address.
type pushCounter struct {
	mu sync.Mutex
	n  map[string]int // guarded by mu
}

func (c *pushCounter) count(addr string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[addr]
}

// countingClient is the real HTTP admin client, counting pushes.
type countingClient struct {
	inner   authsync.Client
	counter *pushCounter
}

func (c countingClient) GetAuth(ctx context.Context, addr string) (authsync.Applied, error) {
	return c.inner.GetAuth(ctx, addr)
}

func (c countingClient) PutAuth(ctx context.Context, addr string, bundle []byte) (authsync.Applied, error) {
	c.counter.mu.Lock()
	c.counter.n[addr]++
	c.counter.mu.Unlock()
	return c.inner.PutAuth(ctx, addr, bundle)
}

// ---- polling ----

// eventually polls check every 100 ms until it reports true.
func eventually(t testing.TB, timeout time.Duration, what string, check func() (bool, string)) {
	t.Helper()
	testkube.Eventually(t, timeout, 100*time.Millisecond, what, check)
}

// ---- objects ----

var ctx = context.Background()

// newNamespace creates a namespace of the test's own. Envtest has no
// namespace controller, so it is never really deleted; names are unique.
func newNamespace(t testing.TB) string {
	t.Helper()
	name := strings.ToLower(t.Name())
	name = strings.NewReplacer("/", "-", "_", "-").Replace(name)
	if len(name) > 40 {
		name = name[:40]
	}
	name = strings.Trim(name, "-") + "-" + strconv.FormatUint(rand.Uint64()%1e8, 36)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := k8s.Create(ctx, ns); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	return name
}

// randName is a short random DNS label.
func randName() string { return testkube.RandName() }

func create(t testing.TB, obj client.Object) { t.Helper(); testkube.Create(t, k8s, obj) }

func get(t testing.TB, obj client.Object) { t.Helper(); testkube.Get(t, k8s, obj) }

// update re-reads obj, applies mutate and writes it, retrying on conflicts.
func update[T client.Object](t testing.TB, obj T, mutate func(T)) {
	t.Helper()
	if err := tryUpdate(t, obj, mutate); err != nil {
		t.Fatalf("update %T %s: %v", obj, obj.GetName(), err)
	}
}

// tryUpdate is update returning the API server's refusal.
func tryUpdate[T client.Object](t testing.TB, obj T, mutate func(T)) error {
	t.Helper()
	var err error
	for range 10 {
		get(t, obj)
		mutate(obj)
		if err = k8s.Update(ctx, obj); !apierrors.IsConflict(err) {
			return err
		}
	}
	return err
}

func newBroker(ns, name string) *mqttv1alpha1.Broker {
	return &mqttv1alpha1.Broker{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
}

// newUser is a User of broker with a generated password (passwordSecret
// empty) or one from Secret passwordSecret, key "password".
func newUser(ns, name, broker, passwordSecret string, groups ...string) *mqttv1alpha1.User {
	u := &mqttv1alpha1.User{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       mqttv1alpha1.UserSpec{BrokerRef: mqttv1alpha1.BrokerReference{Name: broker}, Groups: groups},
	}
	if passwordSecret != "" {
		u.Spec.PasswordSecretRef = &mqttv1alpha1.SecretKeyReference{Name: passwordSecret, Key: "password"}
	}
	return u
}

func newACL(ns, name, broker string, rules ...mqttv1alpha1.ACLRule) *mqttv1alpha1.ACL {
	return &mqttv1alpha1.ACL{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       mqttv1alpha1.ACLSpec{BrokerRef: mqttv1alpha1.BrokerReference{Name: broker}, Rules: rules},
	}
}

func allowUsers(topics []string, users ...string) mqttv1alpha1.ACLRule {
	return mqttv1alpha1.ACLRule{
		Subjects: mqttv1alpha1.ACLSubjects{Users: users},
		Topics:   topics,
		Actions:  []mqttv1alpha1.ACLAction{mqttv1alpha1.ActionPublish, mqttv1alpha1.ActionSubscribe},
		Effect:   mqttv1alpha1.EffectAllow,
	}
}

func passwordSecret(ns, name, password string, labelled bool) *corev1.Secret {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Data:       map[string][]byte{"password": []byte(password)},
	}
	if labelled {
		s.Labels = map[string]string{resource.LabelCredentials: "true"}
	}
	return s
}

// ---- conditions ----

// condState renders conditions for failure messages.
func condState(conds []metav1.Condition) string {
	var b strings.Builder
	for _, c := range conds {
		fmt.Fprintf(&b, "[%s=%s %s gen=%d: %q] ", c.Type, c.Status, c.Reason, c.ObservedGeneration, c.Message)
	}
	return b.String()
}

// hasCond reports whether conds has typ with status and reason, computed
// for generation gen.
func hasCond(conds []metav1.Condition, typ string, status metav1.ConditionStatus, reason string, gen int64) bool {
	c := meta.FindStatusCondition(conds, typ)
	return c != nil && c.Status == status && c.Reason == reason && c.ObservedGeneration == gen
}

// waitUserReady waits for the User's Ready condition to have status and
// reason for its current generation, with observedGeneration current, and
// returns the User.
func waitUserReady(t testing.TB, ns, name string, status metav1.ConditionStatus, reason string) *mqttv1alpha1.User {
	t.Helper()
	u := &mqttv1alpha1.User{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	waitReady(t, "User", u, status, reason, func() ([]metav1.Condition, int64) { return u.Status.Conditions, u.Status.ObservedGeneration })
	return u
}

// waitACLReady is waitUserReady for an ACL.
func waitACLReady(t testing.TB, ns, name string, status metav1.ConditionStatus, reason string) *mqttv1alpha1.ACL {
	t.Helper()
	a := &mqttv1alpha1.ACL{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	waitReady(t, "ACL", a, status, reason, func() ([]metav1.Condition, int64) { return a.Status.Conditions, a.Status.ObservedGeneration })
	return a
}

// waitReady re-reads obj until readyStatus, which reads obj's conditions
// and observedGeneration, shows Ready with status and reason for obj's
// current generation and observedGeneration current.
func waitReady(t testing.TB, kind string, obj client.Object, status metav1.ConditionStatus, reason string, readyStatus func() ([]metav1.Condition, int64)) {
	t.Helper()
	eventually(t, waitTimeout, fmt.Sprintf("%s %s Ready=%s %s", kind, obj.GetName(), status, reason), func() (bool, string) {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return false, err.Error()
		}
		conds, observed := readyStatus()
		gen := obj.GetGeneration()
		ok := hasCond(conds, mqttv1alpha1.ConditionReady, status, reason, gen) && observed == gen
		return ok, fmt.Sprintf("generation %d, observedGeneration %d, %s", gen, observed, condState(conds))
	})
}

// waitBroker waits until check accepts the Broker as the API server holds
// it, and returns it.
func waitBroker(t testing.TB, ns, name, what string, check func(b *mqttv1alpha1.Broker) bool) *mqttv1alpha1.Broker {
	t.Helper()
	b := newBroker(ns, name)
	eventually(t, waitTimeout, fmt.Sprintf("Broker %s: %s", name, what), func() (bool, string) {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(b), b); err != nil {
			return false, err.Error()
		}
		st := b.Status
		return check(b), fmt.Sprintf("generation %d, observedGeneration %d, authRevision %d, authHash %s, readyReplicas %d, pods %+v, %s",
			b.Generation, st.ObservedGeneration, st.AuthRevision, st.AuthHash, st.ReadyReplicas, st.Pods, condState(st.Conditions))
	})
	return b
}

// ---- the auth bundle as the auth Secret holds it ----

// authBundle assembles the bundle the Broker's auth Secret's manifest
// names from its shard Secrets; nil when the Secret or manifest does not
// exist yet.
func authBundle(t testing.TB, ns, broker string) *authz.Bundle {
	t.Helper()
	data, _ := authBundleJSON(t, ns, broker)
	if data == nil {
		return nil
	}
	b, err := authz.Parse(data)
	if err != nil {
		t.Fatalf("auth bundle of %s does not parse: %v", broker, err)
	}
	return b
}

// authBundleJSON is the bundle's JSON as authBundle reads it, with the
// shards by file name; nil while there is none.
func authBundleJSON(t testing.TB, ns, broker string) ([]byte, map[string][]byte) {
	t.Helper()
	var s corev1.Secret
	err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: broker + "-auth"}, &s)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		t.Fatalf("get auth Secret: %v", err)
	}
	manifest := s.Data[resource.AuthManifestKey]
	if len(manifest) == 0 {
		return nil, nil
	}
	files := map[string][]byte{resource.AuthManifestKey: manifest}
	data, _, err := authsync.Unshard(manifest, func(sh authz.Shard) ([]byte, error) {
		var shard corev1.Secret
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: sh.Secret}, &shard); err != nil {
			return nil, err
		}
		files[sh.File] = shard.Data[resource.AuthShardKey]
		return shard.Data[resource.AuthShardKey], nil
	})
	if errors.Is(err, authz.ErrInconsistent) {
		return nil, nil // mid-update: the caller polls again
	}
	if err != nil {
		t.Fatalf("auth Secret %s-auth: %v", broker, err)
	}
	return data, files
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func bundleUser(b *authz.Bundle, username string) *authz.User {
	if b == nil {
		return nil
	}
	for i := range b.Users {
		if b.Users[i].Username == username {
			return &b.Users[i]
		}
	}
	return nil
}

func bundleUsernames(b *authz.Bundle) []string {
	if b == nil {
		return nil
	}
	out := make([]string, len(b.Users))
	for i, u := range b.Users {
		out[i] = u.Username
	}
	return out
}

// waitBundle waits until check accepts the auth Secret's bundle.
func waitBundle(t testing.TB, ns, broker, what string, check func(b *authz.Bundle) bool) *authz.Bundle {
	t.Helper()
	var last *authz.Bundle
	eventually(t, waitTimeout, fmt.Sprintf("auth bundle of %s: %s", broker, what), func() (bool, string) {
		last = authBundle(t, ns, broker)
		if last == nil {
			return false, "no bundle yet"
		}
		return check(last), fmt.Sprintf("revision %d, users %v, %d rules", last.Revision, bundleUsernames(last), len(last.Rules))
	})
	return last
}

// ---- broker processes and pods ----

var (
	buildOnce sync.Once
	brokerBin string
	buildErr  error
)

// brokerBinary builds cmd/broker once per run.
func brokerBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		bin := filepath.Join(tmpDir, "fleetmq-broker")
		cmd := exec.Command("go", "build", "-o", bin, "github.com/fleetmq/fleetmq/cmd/broker")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/broker: %w\n%s", err, out)
			return
		}
		brokerBin = bin
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return brokerBin
}

// brokerProc is a fleetmq-broker process on loopback.
type brokerProc struct {
	MQTTAddr, AdminAddr string
	Token               string
	cmd                 *exec.Cmd
	scheme              string // of the admin API: http or https
}

// harnessHTTP is the test harness's own client for health checks and
// reads of a broker's admin API. Like a kubelet's probe it does not verify
// the certificate: verifying is the operator's job, under test.
var harnessHTTP = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
	TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // see above
}}

// freeAddr returns a 127.0.0.1 address with a port free right now.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// lockedBuffer is a bytes.Buffer safe for the process's writes and the
// test's reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startBroker runs fleetmq-broker as the operator rendered it: the admin
// token from <broker>-admin and the bundle from <broker>-auth, both read
// from the API server, written to files the broker reads (and watches).
func startBroker(t testing.TB, ns, broker string) *brokerProc {
	t.Helper()
	return startBrokerTLS(t, ns, broker, nil, nil)
}

// startBrokerTLS is startBroker with the admin API over TLS with cert and
// key (PEM) when they are given.
func startBrokerTLS(t testing.TB, ns, broker string, cert, key []byte) *brokerProc {
	t.Helper()
	bin := brokerBinary(t)
	var admin corev1.Secret
	var files map[string][]byte
	eventually(t, waitTimeout, "admin and auth Secrets of "+broker, func() (bool, string) {
		err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: broker + "-admin"}, &admin)
		_, files = authBundleJSON(t, ns, broker)
		return err == nil && files != nil, fmt.Sprintf("admin: %v, auth shards: %d files", err, len(files))
	})
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	authDir := filepath.Join(dir, "auth")
	authFile := filepath.Join(authDir, resource.AuthManifestKey)
	if err := os.WriteFile(tokenFile, admin.Data[resource.AdminTokenKey], 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(authDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(authDir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var tlsArgs []string
	if cert != nil {
		certFile, keyFile := filepath.Join(dir, "admin-tls.crt"), filepath.Join(dir, "admin-tls.key")
		if err := os.WriteFile(certFile, cert, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyFile, key, 0o600); err != nil {
			t.Fatal(err)
		}
		tlsArgs = []string{"--admin-tls-cert", certFile, "--admin-tls-key", keyFile}
	}

	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a free port can be taken before the broker binds it
		p := &brokerProc{MQTTAddr: freeAddr(t), AdminAddr: freeAddr(t), Token: string(admin.Data[resource.AdminTokenKey]), scheme: "http"}
		if cert != nil {
			p.scheme = "https"
		}
		out := &lockedBuffer{}
		cmd := exec.Command(bin, append([]string{
			"--mqtt-addr", p.MQTTAddr, "--admin-addr", p.AdminAddr,
			"--admin-token-file", tokenFile, "--auth-file", authFile,
			"--data-dir", filepath.Join(dir, "data"), "--log-format", "text", "--log-level", "info"}, tlsArgs...)...)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", bin, err)
		}
		p.cmd = cmd
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		if err := waitHealthy(p, exited); err != nil {
			_ = cmd.Process.Kill()
			<-exited
			lastErr = fmt.Errorf("%w\nbroker output:\n%s", err, out.String())
			continue
		}
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
			if t.Failed() {
				t.Logf("broker %s output:\n%s", broker, out.String())
			}
		})
		return p
	}
	t.Fatalf("fleetmq-broker did not start: %v", lastErr)
	return nil
}

func waitHealthy(p *brokerProc, exited <-chan error) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("fleetmq-broker exited: %w", err)
		default:
		}
		resp, err := harnessHTTP.Get(p.scheme + "://" + p.AdminAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("fleetmq-broker: /healthz not OK within 15s")
}

// adminGet GETs path from the broker's admin API with its token.
func (p *brokerProc) adminGet(path string) ([]byte, error) {
	req, err := http.NewRequest(http.MethodGet, p.scheme+"://"+p.AdminAddr+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+p.Token)
	resp, err := harnessHTTP.Do(req)
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

func (p *brokerProc) auth(t testing.TB) admin.Applied {
	t.Helper()
	body, err := p.adminGet("/v1/auth")
	if err != nil {
		t.Fatalf("broker admin API: %v", err)
	}
	var a admin.Applied
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatalf("GET /v1/auth: %v: %s", err, body)
	}
	return a
}

// appliedReloads reads fleetmq_auth_reloads_total{result="applied"}.
func (p *brokerProc) appliedReloads(t testing.TB) int {
	t.Helper()
	body, err := p.adminGet("/metrics")
	if err != nil {
		t.Fatalf("broker metrics: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, `fleetmq_auth_reloads_total{result="applied"} `); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			return int(f)
		}
	}
	return 0
}

// createReadyPod creates the broker's pod <broker>-0 as the StatefulSet
// would (its template's labels), backed by p, and marks it Ready with IP
// ip (127.0.0.N). The resolver maps it to p's real admin address.
func createReadyPod(t testing.TB, ns, broker, ip string, p *brokerProc) *corev1.Pod {
	t.Helper()
	var sts appsv1.StatefulSet
	eventually(t, waitTimeout, "StatefulSet "+broker, func() (bool, string) {
		err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: broker}, &sts)
		return err == nil, fmt.Sprint(err)
	})
	name := broker + "-0"
	if p.scheme == "https" {
		resolver.setTLS(p.AdminAddr)
	}
	resolver.set(ns, name, p.AdminAddr)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: sts.Spec.Template.Labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: resource.ContainerName, Image: sts.Spec.Template.Spec.Containers[0].Image,
		}}},
	}
	create(t, pod)
	pod.Status = corev1.PodStatus{
		Phase:  corev1.PodRunning,
		PodIP:  ip,
		PodIPs: []corev1.PodIP{{IP: ip}},
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()},
		},
	}
	if err := k8s.Status().Update(ctx, pod); err != nil {
		t.Fatalf("set status of Pod %s: %v", name, err)
	}
	return pod
}

// setReadyReplicas does the StatefulSet controller's part: status.
func setReadyReplicas(t testing.TB, ns, name string, ready int32) {
	t.Helper()
	var sts appsv1.StatefulSet
	for range 10 {
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &sts); err != nil {
			t.Fatal(err)
		}
		sts.Status = appsv1.StatefulSetStatus{
			ObservedGeneration: sts.Generation,
			Replicas:           ready, ReadyReplicas: ready, CurrentReplicas: ready, UpdatedReplicas: ready, AvailableReplicas: ready,
		}
		err := k8s.Status().Update(ctx, &sts)
		if err == nil {
			return
		}
		if !apierrors.IsConflict(err) {
			t.Fatalf("set StatefulSet %s status: %v", name, err)
		}
	}
	t.Fatalf("set StatefulSet %s status: conflicts did not stop", name)
}
