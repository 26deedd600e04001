// Command fleetmq-operator runs the fleetmq Kubernetes operator: it turns
// Broker, User and ACL objects into running brokers and keeps every user
// and permission in force on them.
package main

import (
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	mqttv1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/broker/authz"
	"github.com/fleetmq/fleetmq/controllers"
)

// version is set by the build (-ldflags "-X main.version=...").
var version = "dev"

// defaultBrokerImage is the broker image of this operator's release.
const defaultBrokerImage = "ghcr.io/fleetmq/fleetmq-broker"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "fleetmq-operator:", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageError struct{ error }

func run(args []string) error {
	fs := flag.NewFlagSet("fleetmq-operator", flag.ContinueOnError)
	metricsAddr := fs.String("metrics-bind-address", ":8080", "address of the operator's metrics endpoint (0 disables)")
	probeAddr := fs.String("health-probe-bind-address", ":8082", "address of /healthz and /readyz")
	leaderElect := fs.Bool("leader-elect", true, "elect a leader so only one replica reconciles")
	leaderNamespace := fs.String("leader-election-namespace", "", "namespace of the leader election Lease (default: the pod's)")
	watchNamespaces := fs.String("watch-namespaces", "", "comma-separated namespaces to watch (default: all)")
	brokerImage := fs.String("broker-image", defaultBrokerImage+":"+version, "broker image for Brokers that do not set spec.image")
	iterations := fs.Int("password-hash-iterations", authz.DefaultIterations, "PBKDF2-SHA512 iterations of password hashes in auth bundles")
	pushTimeout := fs.Duration("push-timeout", 3*time.Second, "timeout of one auth push to one broker pod")
	operatorNamespace := fs.String("operator-namespace", os.Getenv("POD_NAMESPACE"),
		"the operator's namespace, admitted to brokers' admin port by their NetworkPolicy (default $POD_NAMESPACE; empty: no NetworkPolicy)")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *iterations < 1000 {
		return usageError{fmt.Errorf("--password-hash-iterations %d: at least 1000", *iterations)}
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	logger := ctrl.Log.WithName("setup")

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(mqttv1alpha1.AddToScheme(scheme))

	cacheOpts := controllers.CacheOptions()
	if *watchNamespaces != "" {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range strings.Split(*watchNamespaces, ",") {
			if ns = strings.TrimSpace(ns); ns != "" {
				cacheOpts.DefaultNamespaces[ns] = cache.Config{}
			}
		}
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Cache:                   cacheOpts,
		Metrics:                 metricsserver.Options{BindAddress: *metricsAddr},
		HealthProbeBindAddress:  *probeAddr,
		LeaderElection:          *leaderElect,
		LeaderElectionID:        "fleetmq-operator.mqtt.fleetmq.io",
		LeaderElectionNamespace: *leaderNamespace,
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}
	ctx := ctrl.SetupSignalHandler()
	if err := controllers.Setup(ctx, mgr, controllers.Config{
		BrokerImage: *brokerImage, HashIterations: *iterations, PushTimeout: *pushTimeout,
		OperatorNamespace: *operatorNamespace,
		Namespaces:        slices.Collect(maps.Keys(cacheOpts.DefaultNamespaces)),
	}); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	if *operatorNamespace == "" {
		logger.Info("Operator namespace unknown (no POD_NAMESPACE or --operator-namespace): Brokers get no NetworkPolicy")
	}
	logger.Info("Starting operator", "version", version, "brokerImage", *brokerImage, "watchNamespaces", *watchNamespaces, "operatorNamespace", *operatorNamespace)
	return mgr.Start(ctx)
}
