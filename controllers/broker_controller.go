package controllers

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	mqttv1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/internal/authsync"
	"github.com/fleetmq/fleetmq/internal/resource"
)

// BrokerReconciler renders a Broker's children and keeps its auth bundle
// in force on every ready broker pod.
type BrokerReconciler struct {
	client.Client
	// APIReader reads what the label-filtered cache does not hold: Secrets
	// (getSecret), PersistentVolumeClaims (progress.go).
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  events.EventRecorder
	// Options are the builders' defaults (the broker image).
	Options resource.Options
	// HashPassword hashes a password for the bundle (authz.HashPassword
	// with the operator's iteration count).
	HashPassword func(password []byte) (string, error)
	// NewAuthClient returns the admin API client for a broker's token and
	// the TLS that verifies its pods.
	NewAuthClient func(token string, tls *authsync.TLS) authsync.Client
	// OperatorNamespace is where the operator runs: the only namespace the
	// NetworkPolicy admits to the admin port. Empty: no NetworkPolicy.
	OperatorNamespace string
	// ForgetAuthClient drops the connections kept for a deleted Broker's
	// admin API (authsync.TLSClients.Forget); nil when the clients keep none.
	ForgetAuthClient func(serverName string)
	// Resolver finds a pod's admin API address.
	Resolver PodResolver
	// PushTimeout bounds one push to one pod.
	PushTimeout time.Duration

	// backoff holds the consecutive push failures per Broker.
	backoff sync.Map // types.NamespacedName → int
	// pushFailingSince holds when each Broker's pushes began to fail.
	pushFailingSince sync.Map // types.NamespacedName → time.Time
	// smAbsentUntil (unix nanoseconds) spares a discovery call per
	// reconcile while the ServiceMonitor CRD is missing.
	smAbsentUntil atomic.Int64
}

// RBAC, least privilege: the operator writes only what it renders.
// +kubebuilder:rbac:groups=mqtt.fleetmq.io,resources=brokers;users;acls,verbs=get;list;watch
// +kubebuilder:rbac:groups=mqtt.fleetmq.io,resources=brokers/status;users/status;acls/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=mqtt.fleetmq.io,resources=brokers/finalizers;users/finalizers,verbs=update
// +kubebuilder:rbac:groups=apps,resources=statefulsets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=services;configmaps;secrets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=get
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=monitoring.coreos.com,resources=servicemonitors,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile brings one Broker to its desired state.
func (r *BrokerReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	logger := log.FromContext(ctx)
	var b mqttv1alpha1.Broker
	if err := r.Get(ctx, req.NamespacedName, &b); err != nil {
		if apierrors.IsNotFound(err) {
			r.backoff.Delete(req.NamespacedName)
			r.pushFailingSince.Delete(req.NamespacedName)
			forgetBroker(req.NamespacedName)
			if r.ForgetAuthClient != nil {
				gone := &mqttv1alpha1.Broker{ObjectMeta: metav1.ObjectMeta{Namespace: req.Namespace, Name: req.Name}}
				r.ForgetAuthClient(resource.AdminServerName(gone))
			}
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if !b.DeletionTimestamp.IsZero() {
		// Children go with the Broker through owner references.
		return ctrl.Result{}, nil
	}

	orig := b.DeepCopy()
	if r.reconcilePause(&b) {
		return ctrl.Result{}, r.patchStatus(ctx, orig, &b)
	}
	st := &brokerState{}
	result, err := r.reconcile(ctx, &b, st)
	r.setConditions(&b, st, err)
	if perr := r.patchStatus(ctx, orig, &b); perr != nil {
		err = errors.Join(err, perr)
	} else {
		r.brokerTransitions(orig, &b)
	}
	observeBroker(&b, st)
	if d := st.deadlineIn; d > 0 && (result.RequeueAfter == 0 || d < result.RequeueAfter) {
		result.RequeueAfter = d // look again when a deadline passes
	}
	if err != nil {
		logger.Error(err, "Reconcile failed")
	}
	return result, err
}

// brokerState is what one reconcile pass learned, for the status.
type brokerState struct {
	sts      *appsv1.StatefulSet
	auth     *authsync.Result
	pods     []mqttv1alpha1.BrokerPodStatus
	readyIPs int
	synced   bool // every ready pod applied the desired revision
	pushErr  error
	tlsErr   error
	channel  *channel
	progress progress
	// deadlineIn is when a progress deadline passes, if one runs.
	deadlineIn time.Duration
}

// reconcile runs auth delivery first and independently of the other
// children: a child the cluster refuses (a LoadBalancer Service, a
// ResourceQuota, a forbidden StatefulSet change) must not stop revocations
// from reaching the pods that already run. Such an error still fails the
// pass, so the Broker's Ready condition says what went wrong.
func (r *BrokerReconciler) reconcile(ctx context.Context, b *mqttv1alpha1.Broker, st *brokerState) (ctrl.Result, error) {
	token, err := r.reconcileAdminSecret(ctx, b)
	if err != nil {
		return ctrl.Result{}, err
	}
	// The admin channel's CA and certificate: pushes need them.
	if st.channel, err = r.reconcileChannel(ctx, b); err != nil {
		return ctrl.Result{}, err
	}
	if st.auth, err = r.reconcileAuthBundle(ctx, b); err != nil {
		return ctrl.Result{}, err
	}
	childErr := r.reconcileChildren(ctx, b, st)
	r.pushAuth(ctx, b, token, st)
	if st.pushErr != nil && pushFailureReason(st.pushErr) == mqttv1alpha1.ReasonAdminCertificateUntrusted {
		r.event(b, corev1.EventTypeWarning, mqttv1alpha1.ReasonAdminCertificateUntrusted, "Auth bundle not sent: %v", st.pushErr)
	}
	// Users' and ACLs' status first: they follow the pushes, whatever
	// else failed.
	if err := r.updateObjectStatuses(ctx, b, st); err != nil {
		return ctrl.Result{}, errors.Join(childErr, err)
	}
	if childErr != nil {
		return ctrl.Result{}, childErr
	}
	if err := r.checkProgress(ctx, b, st); err != nil {
		return ctrl.Result{}, err
	}
	res := r.requeue(b, st)
	// Look again when a certificate falls due.
	if d := max(time.Until(st.channel.renewAt), time.Second); res.RequeueAfter == 0 || d < res.RequeueAfter {
		res.RequeueAfter = d
	}
	return res, nil
}

// reconcileChildren applies everything but the auth and admin Secrets.
func (r *BrokerReconciler) reconcileChildren(ctx context.Context, b *mqttv1alpha1.Broker, st *brokerState) error {
	configHash, err := r.reconcileConfig(ctx, b)
	if err != nil {
		return err
	}
	st.tlsErr = r.checkTLSSecret(ctx, b)
	if err := r.reconcileWorkload(ctx, b, configHash, st); err != nil {
		return err
	}
	return r.reconcileNetworkPolicy(ctx, b)
}

// reconcileAdminSecret makes sure the admin token exists; it is generated
// once and never rotated behind the operator's back.
func (r *BrokerReconciler) reconcileAdminSecret(ctx context.Context, b *mqttv1alpha1.Broker) (string, error) {
	var s corev1.Secret
	err := r.Get(ctx, types.NamespacedName{Namespace: b.Namespace, Name: resource.AdminSecretName(b)}, &s)
	token := ""
	switch {
	case err == nil:
		token = string(s.Data[resource.AdminTokenKey])
	case !apierrors.IsNotFound(err):
		return "", fmt.Errorf("get admin Secret: %w", err)
	}
	if token == "" {
		token = randomToken(32)
		r.event(b, corev1.EventTypeNormal, "AdminTokenGenerated", "Generated the admin API token in Secret %s", resource.AdminSecretName(b))
	}
	if err := apply(ctx, r.Client, r.Scheme, b, resource.AdminSecret(b, token)); err != nil {
		return "", err
	}
	return token, nil
}

func (r *BrokerReconciler) reconcileConfig(ctx context.Context, b *mqttv1alpha1.Broker) (string, error) {
	cm, err := resource.ConfigMap(b)
	if err != nil {
		return "", fmt.Errorf("render config: %w", err)
	}
	if err := apply(ctx, r.Client, r.Scheme, b, cm); err != nil {
		return "", err
	}
	return resource.ConfigHash(cm), nil
}

// checkTLSSecret reports a TLS listener whose Secret is missing; the pod
// would not start without it, so the Broker says why.
func (r *BrokerReconciler) checkTLSSecret(ctx context.Context, b *mqttv1alpha1.Broker) error {
	tls := b.Spec.Listeners.TLS
	if tls == nil {
		return nil
	}
	s, err := getSecret(ctx, r.Client, r.APIReader, b.Namespace, tls.SecretName)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("TLS Secret %s not found", tls.SecretName)
		}
		return err
	}
	for _, k := range []string{corev1.TLSCertKey, corev1.TLSPrivateKeyKey} {
		if len(s.Data[k]) == 0 {
			return fmt.Errorf("TLS Secret %s has no %s", tls.SecretName, k)
		}
	}
	return nil
}

// reconcileWorkload applies the StatefulSet, Services, PDB and (when asked
// and installed) the ServiceMonitor.
func (r *BrokerReconciler) reconcileWorkload(ctx context.Context, b *mqttv1alpha1.Broker, configHash string, st *brokerState) error {
	sts := resource.StatefulSet(b, r.Options, configHash)
	objs := []client.Object{resource.HeadlessService(b), resource.Service(b), sts}
	if pdb := resource.PodDisruptionBudget(b); pdb != nil {
		objs = append(objs, pdb)
	} else if err := r.deleteIfOwned(ctx, b, &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: b.Namespace, Name: resource.PodDisruptionBudgetName(b)}}); err != nil {
		return err
	}
	for _, o := range objs {
		if err := apply(ctx, r.Client, r.Scheme, b, o); err != nil {
			return err
		}
	}
	if err := r.reconcileServiceMonitor(ctx, b); err != nil {
		return err
	}
	var cur appsv1.StatefulSet
	if err := r.Get(ctx, client.ObjectKeyFromObject(sts), &cur); err != nil {
		return fmt.Errorf("get StatefulSet: %w", err)
	}
	st.sts = &cur
	return nil
}

func (r *BrokerReconciler) serviceMonitorInstalled() bool {
	_, err := r.RESTMapper().RESTMapping(schema.GroupKind{Group: "monitoring.coreos.com", Kind: "ServiceMonitor"}, "v1")
	return err == nil
}

// deleteIfOwned removes a child the spec no longer asks for.
func (r *BrokerReconciler) deleteIfOwned(ctx context.Context, b *mqttv1alpha1.Broker, obj client.Object) error {
	if err := r.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	if !metav1.IsControlledBy(obj, b) {
		return nil
	}
	if err := r.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete %T %s: %w", obj, obj.GetName(), err)
	}
	return nil
}

// setConditions computes Ready, Available and AuthSynced from what the pass
// observed; each carries the generation it was computed for.
func (r *BrokerReconciler) setConditions(b *mqttv1alpha1.Broker, st *brokerState, reconcileErr error) {
	gen := b.Generation
	set := func(t string, ok bool, reason, msg string) {
		status := metav1.ConditionFalse
		if ok {
			status = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&b.Status.Conditions, metav1.Condition{Type: t, Status: status, Reason: reason, Message: msg, ObservedGeneration: gen})
	}
	if st.sts != nil {
		b.Status.ReadyReplicas = st.sts.Status.ReadyReplicas
	}
	b.Status.Endpoints = resource.Endpoints(b)
	if st.auth != nil {
		b.Status.AuthRevision = st.auth.Bundle.Revision
		b.Status.AuthHash = st.auth.State.Hash
	}
	if st.pods != nil || st.sts != nil {
		b.Status.Pods = st.pods
	}

	available := b.Status.ReadyReplicas > 0
	switch {
	case st.tlsErr != nil:
		set(mqttv1alpha1.ConditionAvailable, available, mqttv1alpha1.ReasonTLSSecretNotFound, st.tlsErr.Error())
	case available:
		set(mqttv1alpha1.ConditionAvailable, true, mqttv1alpha1.ReasonPodsReady, fmt.Sprintf("%d of %d pods ready", b.Status.ReadyReplicas, replicas(b)))
	case st.progress.stuck != "":
		set(mqttv1alpha1.ConditionAvailable, false, mqttv1alpha1.ReasonPodsNotReady, fmt.Sprintf("0 of %d pods ready; %s", replicas(b), st.progress.stuck))
	default:
		set(mqttv1alpha1.ConditionAvailable, false, mqttv1alpha1.ReasonPodsNotReady, fmt.Sprintf("0 of %d pods ready", replicas(b)))
	}

	switch {
	case st.auth == nil:
		set(mqttv1alpha1.ConditionAuthSynced, false, mqttv1alpha1.ReasonReconcileFailed, "auth bundle not compiled")
	case st.readyIPs == 0:
		set(mqttv1alpha1.ConditionAuthSynced, false, mqttv1alpha1.ReasonNoReadyPods, fmt.Sprintf("revision %d waits for a ready pod", st.auth.Bundle.Revision))
	case st.synced:
		set(mqttv1alpha1.ConditionAuthSynced, true, mqttv1alpha1.ReasonAuthSynced, fmt.Sprintf("every ready pod applied revision %d", st.auth.Bundle.Revision))
	case st.pushErr != nil:
		set(mqttv1alpha1.ConditionAuthSynced, false, pushFailureReason(st.pushErr), st.pushErr.Error())
	default:
		set(mqttv1alpha1.ConditionAuthSynced, false, mqttv1alpha1.ReasonAuthPending, fmt.Sprintf("revision %d not yet applied by every ready pod", st.auth.Bundle.Revision))
	}

	stuck, deadlineIn := st.progress.exceeded(b, time.Now())
	st.deadlineIn = deadlineIn
	switch {
	case reconcileErr != nil:
		set(mqttv1alpha1.ConditionReady, false, mqttv1alpha1.ReasonReconcileFailed, reconcileErr.Error())
	case stuck != "" && st.pushErr != nil && st.progress.stuck == "":
		set(mqttv1alpha1.ConditionReady, false, mqttv1alpha1.ReasonProgressDeadlineExceeded, stuck+": "+st.pushErr.Error())
	case stuck != "":
		set(mqttv1alpha1.ConditionReady, false, mqttv1alpha1.ReasonProgressDeadlineExceeded, stuck)
	case st.progress.stuck != "":
		set(mqttv1alpha1.ConditionReady, false, mqttv1alpha1.ReasonPodsNotStarting, st.progress.stuck)
	case !available:
		set(mqttv1alpha1.ConditionReady, false, mqttv1alpha1.ReasonPodsNotReady, "no broker pod is ready")
	case !st.synced:
		c := meta.FindStatusCondition(b.Status.Conditions, mqttv1alpha1.ConditionAuthSynced)
		set(mqttv1alpha1.ConditionReady, false, c.Reason, c.Message)
	default:
		set(mqttv1alpha1.ConditionReady, true, mqttv1alpha1.ReasonReconciled, "broker available with the current auth bundle")
	}
	if reconcileErr == nil {
		b.Status.ObservedGeneration = gen
	}
}

// patchStatus writes the status as a diff against orig, the cached Broker,
// under orig's resourceVersion: a diff against a cache that has not seen
// the last status write yet would leave out fields that write changed (a
// pod that went unready and ready again between two reconciles left
// readyReplicas 0 for good, as status writes trigger no reconcile). A stale
// cache is a conflict, and the requeue reads a fresh one.
func (r *BrokerReconciler) patchStatus(ctx context.Context, orig, b *mqttv1alpha1.Broker) error {
	patch := client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})
	if err := r.Status().Patch(ctx, b, patch); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("patch Broker status: %w", err)
	}
	return nil
}

// requeue decides when to look again: with backoff after a failed push,
// soon while pods catch up, otherwise only on events.
func (r *BrokerReconciler) requeue(b *mqttv1alpha1.Broker, st *brokerState) ctrl.Result {
	key := types.NamespacedName{Namespace: b.Namespace, Name: b.Name}
	if st.pushErr == nil {
		r.backoff.Delete(key)
		if !st.synced && st.readyIPs > 0 {
			return ctrl.Result{RequeueAfter: time.Second}
		}
		return ctrl.Result{}
	}
	n := 0
	if v, ok := r.backoff.Load(key); ok {
		n = v.(int)
	}
	r.backoff.Store(key, n+1)
	d := min(time.Second<<min(n, 6), time.Minute)
	return ctrl.Result{RequeueAfter: d}
}

func (r *BrokerReconciler) event(obj runtime.Object, eventType, reason, format string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(obj, nil, eventType, reason, reason, format, args...)
	}
}

func replicas(b *mqttv1alpha1.Broker) int32 {
	if b.Spec.Replicas != nil {
		return *b.Spec.Replicas
	}
	return 1
}

// randomToken returns n random bytes, URL-safe base64 encoded.
func randomToken(n int) string {
	buf := make([]byte, n)
	rand.Read(buf) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(buf)
}
