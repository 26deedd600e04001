package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	mqttv1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/internal/authsync"
	"github.com/fleetmq/fleetmq/internal/resource"
)

// usersAndACLs lists the Users and ACLs that refer to b, from the cache.
func (r *BrokerReconciler) usersAndACLs(ctx context.Context, b *mqttv1alpha1.Broker) ([]mqttv1alpha1.User, []mqttv1alpha1.ACL, error) {
	var users mqttv1alpha1.UserList
	if err := r.List(ctx, &users, client.InNamespace(b.Namespace), client.MatchingFields{indexBrokerRef: b.Name}); err != nil {
		return nil, nil, fmt.Errorf("list Users: %w", err)
	}
	var acls mqttv1alpha1.ACLList
	if err := r.List(ctx, &acls, client.InNamespace(b.Namespace), client.MatchingFields{indexBrokerRef: b.Name}); err != nil {
		return nil, nil, fmt.Errorf("list ACLs: %w", err)
	}
	return users.Items, acls.Items, nil
}

// reconcileAuthBundle compiles every User and ACL of b into the bundle and
// writes the auth Secret when its content changed. The Secret is the
// durable copy: a pod that restarts while the operator is down starts with
// the right users.
func (r *BrokerReconciler) reconcileAuthBundle(ctx context.Context, b *mqttv1alpha1.Broker) (*authsync.Result, error) {
	users, acls, err := r.usersAndACLs(ctx, b)
	if err != nil {
		return nil, err
	}
	secrets, err := passwordSecrets(ctx, r.Client, r.APIReader, b.Namespace, users)
	if err != nil {
		return nil, err
	}

	stored, prev, err := r.loadAuthState(ctx, b)
	if err != nil {
		return nil, err
	}

	res, err := authsync.Compile(authsync.Input{
		Broker: b, Users: users, ACLs: acls, Secrets: secrets,
		Previous: prev, HashPassword: r.HashPassword,
	})
	if err != nil {
		return nil, fmt.Errorf("compile auth bundle: %w", err)
	}
	state, err := res.State.Marshal()
	if err != nil {
		return nil, fmt.Errorf("encode auth state: %w", err)
	}
	if err := r.storeAuth(ctx, b, stored, res, state); err != nil {
		return nil, err
	}
	if res.Changed {
		r.event(b, corev1.EventTypeNormal, "AuthBundleCompiled", "Compiled auth bundle revision %d: %d users, %d rules",
			res.Bundle.Revision, len(res.Bundle.Users), len(res.Bundle.Rules))
	}
	return res, nil
}

// pushAuth brings every ready pod to the desired revision over the admin
// API and records what each pod reports. A pod that is down gets a short
// timeout; the Broker is requeued with backoff, other Brokers go on.
func (r *BrokerReconciler) pushAuth(ctx context.Context, b *mqttv1alpha1.Broker, token string, st *brokerState) {
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(b.Namespace), client.MatchingLabels(resource.Labels(b))); err != nil {
		st.pushErr = fmt.Errorf("list pods: %w", err)
		return
	}
	slices.SortFunc(pods.Items, func(a, c corev1.Pod) int { return strings.Compare(a.Name, c.Name) })
	desired := st.auth.Bundle.Revision
	ac := r.NewAuthClient(token, st.channel.tls)
	st.pods = []mqttv1alpha1.BrokerPodStatus{}
	st.synced = true
	var errs []error
	var ahead int64
	for i := range pods.Items {
		pod := &pods.Items[i]
		ps := mqttv1alpha1.BrokerPodStatus{Name: pod.Name, Ready: podReady(pod)}
		if !ps.Ready || !pod.DeletionTimestamp.IsZero() {
			ps.Ready = false
			st.pods = append(st.pods, ps)
			continue
		}
		st.readyIPs++
		addr, ok := r.Resolver.AdminAddress(pod)
		if !ok {
			ps.LastError = "pod has no address yet"
			st.synced = false
			st.pods = append(st.pods, ps)
			continue
		}
		applied, podAhead, err := r.pushPod(ctx, ac, addr, st.auth)
		ps.AppliedRevision = applied
		ahead = max(ahead, podAhead)
		if err != nil {
			ps.LastError = err.Error()
			errs = append(errs, fmt.Errorf("pod %s: %w", pod.Name, err))
		}
		if applied < desired {
			st.synced = false
		}
		st.pods = append(st.pods, ps)
	}
	if st.readyIPs == 0 {
		st.synced = false
	}
	if ahead > 0 {
		if err := r.rebase(ctx, b, st.auth, ahead); err != nil {
			errs = append(errs, err)
		}
	}
	st.pushErr = errors.Join(errs...)
	if st.pushErr != nil {
		log.FromContext(ctx).Info("Auth push failed; will retry", "err", st.pushErr)
	}
}

// pushPod reads the pod's revision and sends the bundle when it is behind.
// A pod that holds our revision number (or a higher one) with other
// content was pushed by an operator whose bookkeeping is lost; ahead is
// then that revision, and the caller recompiles above it.
func (r *BrokerReconciler) pushPod(ctx context.Context, ac authsync.Client, addr string, res *authsync.Result) (applied, ahead int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, pushTimeout(r.PushTimeout, len(res.BundleJSON)))
	defer cancel()
	desired, hash := res.Bundle.Revision, res.State.Hash
	cur, err := ac.GetAuth(ctx, addr)
	if err != nil {
		return 0, 0, err
	}
	switch {
	case cur.HasBundle() && cur.Revision == desired && cur.Hash == hash:
		return cur.Revision, 0, nil
	case cur.HasBundle() && cur.Revision >= desired:
		return 0, cur.Revision, fmt.Errorf("pod holds revision %d with other content; recompiling above it", cur.Revision)
	}
	got, err := ac.PutAuth(ctx, addr, res.BundleJSON)
	var stale *authsync.StaleError
	if errors.As(err, &stale) {
		return 0, stale.Current.Revision, err
	}
	if err != nil {
		return cur.Revision, 0, err
	}
	return got.Revision, 0, nil
}

// rebase moves the auth state's revision above what a pod holds, so the
// next compile (triggered by the Secret update) outranks it.
func (r *BrokerReconciler) rebase(ctx context.Context, b *mqttv1alpha1.Broker, res *authsync.Result, ahead int64) error {
	res.State.Rebase(ahead)
	state, err := res.State.Marshal()
	if err != nil {
		return fmt.Errorf("encode auth state: %w", err)
	}
	log.FromContext(ctx).Info("Broker pod is ahead of the operator's auth state; recompiling above it", "podRevision", ahead)
	// stored is left empty, so the write is never skipped as unchanged.
	return r.storeAuth(ctx, b, &storedAuth{}, res, state)
}

// pushTimeout is base plus a second per MiB of bundle JSON: a broker
// parses, validates and compiles the whole bundle before it answers, and
// a 100,000-user bundle (~25 MB) takes seconds where a small one takes
// milliseconds.
func pushTimeout(base time.Duration, bundleBytes int) time.Duration {
	return base + time.Duration(bundleBytes>>20)*time.Second
}

// podReady reports the pod's Ready condition: only a ready pod is pushed to.
func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// revisionOf reads the revision out of a bundle, 0 when unreadable.
func revisionOf(bundle []byte) int64 {
	var v struct {
		Revision int64 `json:"revision"`
	}
	_ = json.Unmarshal(bundle, &v)
	return v.Revision
}
