package controllers_test

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	k8sresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	mqttv1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/internal/resource"
)

// A namespace whose ResourceQuota allows no Service: the Broker's Services
// (and so its StatefulSet, applied after them) are refused. Auth delivery
// goes on regardless: Users and ACL edits reach the ready pod and their
// status follows, while the Broker says why it is not Ready.
func TestAuthDeliveryDespiteRefusedChildren(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	quota := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "no-services"},
		Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourceServices: k8sresource.MustParse("0")}},
	}
	create(t, quota)
	// Envtest runs no quota controller: write the status it would, so the
	// admission plugin enforces the quota (without a status it refuses
	// every Service as "status unknown", which would do too but says less).
	quota.Status = corev1.ResourceQuotaStatus{
		Hard: corev1.ResourceList{corev1.ResourceServices: k8sresource.MustParse("0")},
		Used: corev1.ResourceList{corev1.ResourceServices: k8sresource.MustParse("0")},
	}
	if err := k8s.Status().Update(ctx, quota); err != nil {
		t.Fatalf("set ResourceQuota status: %v", err)
	}

	br := newBroker(ns, "quota")
	create(t, br)
	create(t, newUser(ns, "alice", "quota", ""))
	waitBroker(t, ns, "quota", "Ready=False naming the refused Service", func(b *mqttv1alpha1.Broker) bool {
		c := meta.FindStatusCondition(b.Status.Conditions, mqttv1alpha1.ConditionReady)
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == mqttv1alpha1.ReasonReconcileFailed &&
			strings.Contains(c.Message, "quota")
	})

	p := startBroker(t, ns, "quota")
	createPod(t, br, "127.0.0.4", p)
	u := waitUserReady(t, ns, "alice", metav1.ConditionTrue, mqttv1alpha1.ReasonSynced)
	if a := p.auth(t); a.Users != 1 || a.Revision != u.Status.AppliedRevision {
		t.Errorf("broker holds %+v, want alice's revision %d with 1 user", a, u.Status.AppliedRevision)
	}

	create(t, newACL(ns, "alice-own", "quota", allowUsers([]string{"tenants/%u/#"}, "alice")))
	a := waitACLReady(t, ns, "alice-own", metav1.ConditionTrue, mqttv1alpha1.ReasonSynced)
	if got := p.auth(t); got.Rules != 1 || got.Revision < a.Status.AppliedRevision {
		t.Errorf("broker holds %+v, want the ACL's revision %d with 1 rule", got, a.Status.AppliedRevision)
	}
	b := waitBroker(t, ns, "quota", "pod status at the ACL's revision, still not Ready", func(b *mqttv1alpha1.Broker) bool {
		return len(b.Status.Pods) == 1 && b.Status.Pods[0].AppliedRevision == a.Status.AppliedRevision &&
			meta.IsStatusConditionTrue(b.Status.Conditions, mqttv1alpha1.ConditionAuthSynced) &&
			meta.IsStatusConditionFalse(b.Status.Conditions, mqttv1alpha1.ConditionReady)
	})
	if b.Status.ObservedGeneration == b.Generation {
		t.Errorf("observedGeneration %d set although the pass failed", b.Status.ObservedGeneration)
	}
}

// createPod creates broker's pod <broker>-0 with the labels of the pod
// template (those the operator's Pod cache and selector go by), backed by p and Ready at ip; unlike createReadyPod it
// needs no StatefulSet.
func createPod(t testing.TB, b *mqttv1alpha1.Broker, ip string, p *brokerProc) *corev1.Pod {
	t.Helper()
	name := b.Name + "-0"
	resolver.set(b.Namespace, name, p.AdminAddr)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: b.Namespace, Name: name, Labels: resource.ObjectLabels(b)},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: resource.ContainerName, Image: "fleetmq-broker:envtest"}}},
	}
	create(t, pod)
	setPodReady(t, pod, ip, corev1.ConditionTrue)
	return pod
}

// setPodReady writes pod's status as the kubelet would: running at ip,
// with Ready set to ready.
func setPodReady(t testing.TB, pod *corev1.Pod, ip string, ready corev1.ConditionStatus) {
	t.Helper()
	get(t, pod)
	pod.Status = corev1.PodStatus{
		Phase:      corev1.PodRunning,
		PodIP:      ip,
		PodIPs:     []corev1.PodIP{{IP: ip}},
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: ready, LastTransitionTime: metav1.Now()}},
	}
	if err := k8s.Status().Update(ctx, pod); err != nil {
		t.Fatalf("set status of Pod %s: %v", pod.Name, err)
	}
}

// statusWriteUsers is how many Users TestStatusWritesPerEdit puts on its
// Broker: enough that writes proportional to it would stand out.
const statusWriteUsers = 150

// A User's or ACL's status is written only when its own state changes: an
// ACL edit writes that ACL and no User, and a broker pod going unready and
// ready again (a restart re-serving the same revision) writes nothing.
// Every write bumps an object's resourceVersion, so unchanged
// resourceVersions prove no write happened.
func TestStatusWritesPerEdit(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	br := newBroker(ns, "storm")
	create(t, br)
	for i := range statusWriteUsers {
		create(t, newUser(ns, fmt.Sprintf("dev-%03d", i), "storm", "", "devices"))
	}
	acl := newACL(ns, "devices", "storm", mqttv1alpha1.ACLRule{
		Subjects: mqttv1alpha1.ACLSubjects{Groups: []string{"devices"}},
		Topics:   []string{"devices/%u/#"},
		Actions:  []mqttv1alpha1.ACLAction{mqttv1alpha1.ActionPublish},
		Effect:   mqttv1alpha1.EffectAllow,
	})
	create(t, acl)
	other := newACL(ns, "other", "storm", allowUsers([]string{"other/#"}, "dev-000"))
	create(t, other)

	p := startBroker(t, ns, "storm")
	pod := createReadyPod(t, ns, "storm", "127.0.0.5", p)
	eventually(t, 3*waitTimeout, "every User Ready", func() (bool, string) {
		n := notReadyUsers(t, ns)
		return n == 0, fmt.Sprintf("%d of %d Users not Ready", n, statusWriteUsers)
	})
	waitACLReady(t, ns, "other", metav1.ConditionTrue, mqttv1alpha1.ReasonSynced)
	a := waitACLReady(t, ns, "devices", metav1.ConditionTrue, mqttv1alpha1.ReasonSynced)
	waitBroker(t, ns, "storm", "the pod at the Broker's revision", func(b *mqttv1alpha1.Broker) bool {
		return len(b.Status.Pods) == 1 && b.Status.Pods[0].AppliedRevision == b.Status.AuthRevision &&
			meta.IsStatusConditionTrue(b.Status.Conditions, mqttv1alpha1.ConditionAuthSynced)
	})
	users := userVersions(t, ns)
	get(t, other)
	otherRV := other.ResourceVersion

	// One ACL edit: that ACL's status moves to the new revision; no User's
	// and no other ACL's status is written.
	update(t, acl, func(a *mqttv1alpha1.ACL) { a.Spec.Rules[0].Topics = append(a.Spec.Rules[0].Topics, "fleet/%u") })
	edited := &mqttv1alpha1.ACL{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "devices"}}
	eventually(t, waitTimeout, "the edited ACL Ready at a later revision", func() (bool, string) {
		get(t, edited)
		c := meta.FindStatusCondition(edited.Status.Conditions, mqttv1alpha1.ConditionReady)
		ok := c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == edited.Generation &&
			edited.Status.AppliedRevision > a.Status.AppliedRevision
		return ok, fmt.Sprintf("generation %d, appliedRevision %d (before the edit %d), %s",
			edited.Generation, edited.Status.AppliedRevision, a.Status.AppliedRevision, condState(edited.Status.Conditions))
	})
	waitBroker(t, ns, "storm", "pod at the edit's revision", func(b *mqttv1alpha1.Broker) bool {
		return len(b.Status.Pods) == 1 && b.Status.Pods[0].AppliedRevision == edited.Status.AppliedRevision
	})
	if n := changedVersions(t, ns, users); n != 0 {
		t.Errorf("one ACL edit wrote %d of %d Users; want 0", n, statusWriteUsers)
	}
	get(t, other)
	if other.ResourceVersion != otherRV {
		t.Errorf("one ACL edit wrote the other ACL (resourceVersion %s → %s)", otherRV, other.ResourceVersion)
	}

	// The pod goes unready and comes back with the same revision: nothing
	// to write for any User or ACL.
	get(t, edited)
	aclRV := edited.ResourceVersion
	setPodReady(t, pod, "127.0.0.5", corev1.ConditionFalse)
	waitBroker(t, ns, "storm", "no ready pod", func(b *mqttv1alpha1.Broker) bool {
		return len(b.Status.Pods) == 1 && !b.Status.Pods[0].Ready &&
			meta.IsStatusConditionFalse(b.Status.Conditions, mqttv1alpha1.ConditionAuthSynced)
	})
	setPodReady(t, pod, "127.0.0.5", corev1.ConditionTrue)
	waitBroker(t, ns, "storm", "pod ready and synced again", func(b *mqttv1alpha1.Broker) bool {
		return len(b.Status.Pods) == 1 && b.Status.Pods[0].Ready && b.Status.Pods[0].AppliedRevision == edited.Status.AppliedRevision &&
			meta.IsStatusConditionTrue(b.Status.Conditions, mqttv1alpha1.ConditionAuthSynced)
	})
	if n := changedVersions(t, ns, users); n != 0 {
		t.Errorf("a pod going unready and ready again wrote %d of %d Users; want 0", n, statusWriteUsers)
	}
	get(t, edited)
	if edited.ResourceVersion != aclRV {
		t.Errorf("a pod going unready and ready again wrote the ACL (resourceVersion %s → %s)", aclRV, edited.ResourceVersion)
	}
}

// notReadyUsers counts the Users in ns whose Ready is not True.
func notReadyUsers(t testing.TB, ns string) int {
	t.Helper()
	var list mqttv1alpha1.UserList
	if err := k8s.List(ctx, &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	n := statusWriteUsers - len(list.Items)
	for _, u := range list.Items {
		if !meta.IsStatusConditionTrue(u.Status.Conditions, mqttv1alpha1.ConditionReady) {
			n++
		}
	}
	return n
}

// userVersions maps each User in ns to its resourceVersion.
func userVersions(t testing.TB, ns string) map[string]string {
	t.Helper()
	var list mqttv1alpha1.UserList
	if err := k8s.List(ctx, &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	m := make(map[string]string, len(list.Items))
	for _, u := range list.Items {
		m[u.Name] = u.ResourceVersion
	}
	return m
}

// changedVersions counts the Users whose resourceVersion is not the one in
// before (each status write changes it).
func changedVersions(t testing.TB, ns string, before map[string]string) int {
	t.Helper()
	n := 0
	for name, rv := range userVersions(t, ns) {
		if before[name] != rv {
			n++
		}
	}
	return n
}
