// Package testkube is what fleetmq's suites against a real kube-apiserver
// share: the scheme, the envtest control plane started from the binaries
// hack/envtest.sh builds, the operator's logger, and the create/get/wait
// helpers every suite needs. The controllers envtest suite, the e2e suite,
// the chart test and the scale harness each keep only what is theirs.
package testkube

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	mqttv1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/internal/testtools"
)

// Verbose is set when FLEETMQ_TEST_LOG asks for the operator's logs.
var Verbose = os.Getenv("FLEETMQ_TEST_LOG") != ""

// NewScheme knows the built-in kinds and fleetmq's.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(mqttv1alpha1.AddToScheme(s))
	return s
}

// SetLogger sends controller-runtime's logs to stderr when Verbose, and
// nowhere otherwise.
func SetLogger() {
	out := io.Discard
	if Verbose {
		out = os.Stderr
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(out), zap.UseDevMode(true)))
}

// Env is a running control plane and a client that talks to it directly
// (no cache): what a test reads is what the server holds.
type Env struct {
	Config *rest.Config
	Client client.Client
	env    *envtest.Environment
}

// Start starts kube-apiserver and etcd with the CRDs of crdDirs installed.
// The binaries must exist (CI builds them): a missing one is an error, so
// a suite fails rather than skips.
func Start(scheme *runtime.Scheme, crdDirs ...string) (*Env, error) {
	assets, err := testtools.Assets("kube-apiserver", "etcd")
	if err != nil {
		return nil, fmt.Errorf("envtest binaries: %w", err)
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     crdDirs,
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("start envtest (assets %s): %w", assets, err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("client: %w", err)
	}
	return &Env{Config: cfg, Client: c, env: env}, nil
}

// Stop stops the control plane, reporting a failure on stderr: it runs
// after the tests, when nothing can fail any more.
func (e *Env) Stop() {
	if err := e.env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop envtest:", err)
	}
}

// Eventually polls check every interval until it reports true, and fails
// the test with check's last description of the state when timeout passes.
func Eventually(t testing.TB, timeout, interval time.Duration, what string, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := check()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %v; last state: %s", what, timeout, state)
		}
		time.Sleep(interval)
	}
}

// RandName is a short random DNS label.
func RandName() string { return strconv.FormatUint(rand.Uint64()%1e10, 36) }

// RandomGroups is n random group names of the longest kind, so a bundle
// built from them is as large as real ones get.
func RandomGroups(n int) []string {
	groups := make([]string, n)
	for i := range groups {
		groups[i] = fmt.Sprintf("g-%016x%016x%016x%016x%016x%016x%016x", rand.Uint64(), rand.Uint64(), rand.Uint64(), rand.Uint64(), rand.Uint64(), rand.Uint64(), rand.Uint64())
	}
	return groups
}

// Create creates obj or fails the test.
func Create(t testing.TB, c client.Client, obj client.Object) {
	t.Helper()
	if err := c.Create(context.Background(), obj); err != nil {
		t.Fatalf("create %T %s/%s: %v", obj, obj.GetNamespace(), obj.GetName(), err)
	}
}

// Get reads obj back by its key or fails the test.
func Get(t testing.TB, c client.Client, obj client.Object) {
	t.Helper()
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
		t.Fatalf("get %T %s/%s: %v", obj, obj.GetNamespace(), obj.GetName(), err)
	}
}

// CreateAll creates n objects, made by build(i), with workers requests in
// flight (a fleet of Users goes in at the API server's pace, not one round
// trip at a time). It fails the test on the first refusal.
func CreateAll(t testing.TB, c client.Client, n, workers int, build func(i int) client.Object) {
	t.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				obj := build(i)
				if err := c.Create(context.Background(), obj); err != nil {
					errs <- fmt.Errorf("create %T %s/%s: %w", obj, obj.GetNamespace(), obj.GetName(), err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}
