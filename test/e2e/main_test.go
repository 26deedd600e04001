// Package e2e_test is fleetmq's end-to-end suite: a real kube-apiserver and
// etcd (envtest, built by hack/envtest.sh), the operator's manager exactly
// as cmd/operator wires it (controllers.Setup with the default pod
// resolver and admin client), and real fleetmq-broker processes started
// from what the operator rendered by a stand-in kubelet
// (internal/kubelet). Tests drive it only through the API, with the YAML
// of config/samples, and check the result with real MQTT clients.
//
// Each broker pod gets a loopback IP of its own (127.0.0.2, 127.0.0.3, …)
// and binds its ports there, so the operator reaches pod-IP:8081 exactly as
// in a cluster. The suite never connects to anything but loopback.
//
//	go test ./test/e2e -v                 everything (about a minute)
//	go test ./test/e2e -run TestLatency -v the API-to-enforcement latency
//
// FLEETMQ_TEST_LOG=1 sends the operator's and the kubelet's logs to stderr.
package e2e_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/fleetmq/fleetmq/controllers"
	"github.com/fleetmq/fleetmq/internal/kubelet"
	"github.com/fleetmq/fleetmq/internal/testkube"
)

var (
	scheme = testkube.NewScheme()
	// k8s talks to the API server directly, as kubectl does.
	k8s client.Client
	// pods runs the broker pods.
	pods *kubelet.Kubelet
	// op is the operator, restartable.
	op *operator
	// brokerBin is the fleetmq-broker binary the pods run.
	brokerBin string
	// verbose: FLEETMQ_TEST_LOG is set.
	verbose = testkube.Verbose
)

const (
	// waitTimeout bounds every wait: generous, as the machine is shared
	// and the race detector slows the operator down.
	waitTimeout = 30 * time.Second
	// hashIterations keeps PBKDF2 cheap; the hashes are real all the same.
	hashIterations = 1000
)

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "e2e suite: "+format+"\n", args...)
		return 1
	}
	testkube.SetLogger()
	tmp, err := os.MkdirTemp("", "fleetmq-e2e-")
	if err != nil {
		return fail("%v", err)
	}
	defer os.RemoveAll(tmp)

	// The broker builds while the API server starts.
	bin := filepath.Join(tmp, "fleetmq-broker")
	brokerBin = bin
	var buildErr error
	var building sync.WaitGroup
	building.Go(func() {
		cmd := exec.Command("go", "build", "-o", bin, "github.com/fleetmq/fleetmq/cmd/broker")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/broker: %w\n%s", err, out)
		}
	})

	env, err := testkube.Start(scheme, filepath.Join("..", "..", "config", "crd", "bases"))
	building.Wait()
	if err != nil {
		return fail("%v", err)
	}
	defer env.Stop()
	if buildErr != nil {
		return fail("%v", buildErr)
	}
	cfg := env.Config
	k8s = env.Client

	logf := func(string, ...any) {}
	if verbose {
		logf = func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05.000 ")+format+"\n", args...)
		}
	}
	pods, err = kubelet.Start(context.Background(), kubelet.Options{
		Config: cfg, Scheme: scheme, Binary: bin, Dir: filepath.Join(tmp, "pods"), Logf: logf,
	})
	if err != nil {
		return fail("kubelet: %v", err)
	}
	defer pods.Stop()

	op = &operator{cfg: cfg}
	if err := op.start(); err != nil {
		return fail("operator: %v", err)
	}
	defer func() {
		if err := op.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "operator:", err)
		}
	}()
	return m.Run()
}

// operator is the operator's manager, wired as cmd/operator wires it, in a
// context of its own so a test can stop it and start a new one.
type operator struct {
	cfg *rest.Config

	mu     sync.Mutex
	cancel context.CancelFunc // guarded by mu
	done   chan error         // guarded by mu
}

func (o *operator) start() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cancel != nil {
		return fmt.Errorf("operator already running")
	}
	mgr, err := ctrl.NewManager(o.cfg, ctrl.Options{
		Scheme:  scheme,
		Cache:   controllers.CacheOptions(),
		Metrics: metricsserver.Options{BindAddress: "0"},
		// A restarted operator registers the same controller names in this
		// process; in a real restart it is a new process.
		Controller: ctrlconfig.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	// The default Resolver (pod IP : 8081) and admin client: the operator
	// reaches the pods exactly as in a cluster.
	err = controllers.Setup(ctx, mgr, controllers.Config{
		BrokerImage:    "fleetmq-broker:e2e",
		HashIterations: hashIterations,
		// As cmd/operator learns it from POD_NAMESPACE.
		OperatorNamespace: "fleetmq-system",
	})
	if err != nil {
		cancel()
		return fmt.Errorf("controllers.Setup: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	o.cancel, o.done = cancel, done
	return nil
}

// stop cancels the manager and waits for it to return.
func (o *operator) stop() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cancel == nil {
		return nil
	}
	o.cancel()
	err := <-o.done
	o.cancel, o.done = nil, nil
	return err
}
