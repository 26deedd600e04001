package e2e_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	mqttv1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/broker/admin"
	"github.com/fleetmq/fleetmq/broker/authz"
	"github.com/fleetmq/fleetmq/internal/resource"
)

// MQTT 5 reason codes the scenario expects.
const (
	codeSuccess        = 0x00
	codeGrantedQoS1    = 0x01
	codeBadCredentials = 0x86
	codeNotAuthorized  = 0x87
)

// TestScenario is the user story, driven only through the API with the
// YAML of config/samples: two tenants each get a Broker, a User with a
// generated password and an ACL; real clients feel every change on the
// live broker of one tenant while the other's is never touched.
func TestScenario(t *testing.T) {
	acme := newTenant(t, "tenant-acme")
	globex := newTenant(t, "tenant-globex")
	if acme.mqttAddr == globex.mqttAddr {
		t.Fatalf("both tenants' pods have address %s", acme.mqttAddr)
	}
	own := "tenants/acme/" + acme.username // the sample ACL's %u subtree

	// ---- the generated credentials work, and only they ----
	if _, code, err := dialV5(t, acme.mqttAddr, acme.username, acme.password+"x"); err == nil || code != codeBadCredentials {
		t.Errorf("CONNECT with a wrong password: code %#x, err %v; want refused with %#x", code, err, codeBadCredentials)
	}
	if _, code, err := dialV5(t, globex.mqttAddr, acme.username, acme.password); err == nil || code != codeBadCredentials {
		t.Errorf("acme's credentials on globex's broker (same username %q): code %#x, err %v; want refused", acme.username, code, err)
	}
	dev := mustV5(t, acme.mqttAddr, acme.username, acme.password)
	legacy, err := dialV311(t, acme.mqttAddr, acme.username, acme.password)
	if err != nil {
		t.Fatalf("MQTT 3.1.1 CONNECT with the generated password: %v", err)
	}
	gdev := mustV5(t, globex.mqttAddr, globex.username, globex.password)

	// ---- the sample ACL is enforced ----
	checkCode(t, "SUBSCRIBE own subtree", dev.subscribe(t, own+"/#"), codeGrantedQoS1)
	checkCode(t, "PUBLISH own subtree", dev.publish(t, own+"/temp", "21.5"), codeSuccess)
	dev.receive(t, own+"/temp", "21.5")
	checkCode(t, "PUBLISH under admin/ (denied by the sample)", dev.publish(t, own+"/admin/reboot", "now"), codeNotAuthorized)
	checkCode(t, "PUBLISH to another user's subtree", dev.publish(t, "tenants/acme/sensor-8/temp", "1"), codeNotAuthorized)
	checkCode(t, "SUBSCRIBE the whole tenant", dev.subscribe(t, "tenants/acme/#"), codeNotAuthorized)
	checkCode(t, "SUBSCRIBE commands (not yet allowed)", dev.subscribe(t, "fleet/commands/#"), codeNotAuthorized)
	checkCode(t, "3.1.1 SUBSCRIBE own subtree", legacy.subscribe(t, own+"/#"), 1)
	checkCode(t, "3.1.1 SUBSCRIBE the whole tenant", legacy.subscribe(t, "tenants/acme/#"), 0x80)
	checkAccepted(t, "globex PUBLISH own subtree", gdev.publish(t, "tenants/acme/"+globex.username+"/temp", "1"))

	// globex as it is now; nothing below may change it.
	globexBefore := settledSnapshot(t, globex)

	// ---- editing the ACL changes enforcement on the live connections ----
	revBefore := acme.admin.auth(t).Revision
	reloadsBefore := acme.admin.reloads(t)
	acl := &mqttv1alpha1.ACL{ObjectMeta: metav1.ObjectMeta{Namespace: acme.ns, Name: acme.acl}}
	edit(t, acl, func(a *mqttv1alpha1.ACL) {
		// The admin/ deny goes; temp readings become read-only; commands
		// may be subscribed.
		a.Spec.Rules = []mqttv1alpha1.ACLRule{
			a.Spec.Rules[0],
			{Subjects: a.Spec.Rules[0].Subjects, Topics: []string{"tenants/acme/%u/temp"},
				Actions: []mqttv1alpha1.ACLAction{mqttv1alpha1.ActionPublish}, Effect: mqttv1alpha1.EffectDeny},
			{Subjects: a.Spec.Rules[0].Subjects, Topics: []string{"fleet/commands/#"},
				Actions: []mqttv1alpha1.ACLAction{mqttv1alpha1.ActionSubscribe}, Effect: mqttv1alpha1.EffectAllow},
		}
	})
	eventually(t, waitTimeout, "PUBLISH under admin/ allowed after the edit", func() (bool, string) {
		code := dev.publish(t, own+"/admin/reboot", "now")
		return accepted(code), fmt.Sprintf("PUBACK %#x", code)
	})
	checkCode(t, "PUBLISH temp after the edit denied it", dev.publish(t, own+"/temp", "22"), codeNotAuthorized)
	checkCode(t, "SUBSCRIBE commands after the edit", dev.subscribe(t, "fleet/commands/#"), codeGrantedQoS1)
	if !dev.connected() {
		t.Fatalf("the MQTT 5 client was disconnected by an ACL edit")
	}
	if !legacy.IsConnectionOpen() || len(legacy.lost) > 0 {
		t.Fatalf("the MQTT 3.1.1 client was disconnected by an ACL edit")
	}
	waitACLSynced(t, acme.ns, acme.acl)
	waitBrokerReady(t, acme.ns, acme.broker)
	a := acme.admin.auth(t)
	if a.Revision != revBefore+1 || a.Rules != 3 {
		t.Errorf("after one ACL edit the broker holds revision %d with %d rules, want %d with 3", a.Revision, a.Rules, revBefore+1)
	}

	// The kubelet wrote the new auth Secret into the pod's volume (atomic
	// ..data swap) and the broker's directory watcher read it: either the
	// file brought the revision first, or it was a second, unchanged
	// reload after the operator's push.
	bundleFile := filepath.Join(podRoot(t, acme), resource.AuthDir, resource.AuthManifestKey)
	var state string
	eventually(t, 10*time.Second, "the broker reloads the bundle file the kubelet swapped in", func() (bool, string) {
		data, err := readPodBundle(bundleFile)
		if err != nil {
			return false, err.Error()
		}
		b, err := authz.Parse(data)
		if err != nil {
			return false, err.Error()
		}
		src, n := acme.admin.auth(t).Source, acme.admin.reloads(t)-reloadsBefore
		state = fmt.Sprintf("file revision %d, broker source %q, %d reloads since the edit", b.Revision, src, n)
		return b.Revision == revBefore+1 && (src == "file" || n >= 2), state
	})
	t.Logf("auth volume update reached the broker: %s", state)
	if target, err := os.Readlink(filepath.Join(filepath.Dir(bundleFile), "..data")); err != nil || !strings.HasPrefix(target, "..") {
		t.Errorf("auth volume is not laid out as the kubelet does: ..data -> %q (%v)", target, err)
	}

	// ---- restarting the operator changes nothing ----
	restartOperator(t, []*tenant{acme, globex})
	checkAccepted(t, "PUBLISH after the operator restart", dev.publish(t, own+"/admin/reboot", "again"))
	checkCode(t, "PUBLISH temp after the operator restart", dev.publish(t, own+"/temp", "23"), codeNotAuthorized)

	// ---- rotating the password cuts the old sessions ----
	newPassword := "rotated-" + randName() + randName() + randName()
	creds := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: acme.ns, Name: mqttv1alpha1.CredentialsSecretName(acme.user)}}
	edit(t, creds, func(s *corev1.Secret) {
		s.Data[mqttv1alpha1.CredentialsPasswordKey] = []byte(newPassword)
	})
	if code := dev.waitCut(t, "the password rotation"); code != codeNotAuthorized {
		t.Errorf("MQTT 5 client cut after the rotation with DISCONNECT %#x, want %#x", code, codeNotAuthorized)
	}
	select {
	case <-legacy.lost:
	case <-time.After(waitTimeout):
		t.Fatalf("MQTT 3.1.1 client still connected %v after the password rotation", waitTimeout)
	}
	if _, code, err := dialV5(t, acme.mqttAddr, acme.username, acme.password); err == nil || code != codeBadCredentials {
		t.Errorf("CONNECT with the old password after the rotation: code %#x, err %v; want refused with %#x", code, err, codeBadCredentials)
	}
	if _, err := dialV311(t, acme.mqttAddr, acme.username, acme.password); err == nil {
		t.Errorf("MQTT 3.1.1 CONNECT with the old password accepted after the rotation")
	}
	dev2 := mustV5(t, acme.mqttAddr, acme.username, newPassword)
	checkAccepted(t, "PUBLISH with the new password", dev2.publish(t, own+"/admin/x", "1"))
	waitUserSynced(t, acme.ns, acme.user)

	// ---- deleting the User disconnects its client ----
	if err := k8s.Delete(ctx, &mqttv1alpha1.User{ObjectMeta: metav1.ObjectMeta{Namespace: acme.ns, Name: acme.user}}); err != nil {
		t.Fatal(err)
	}
	if code := dev2.waitCut(t, "deleting the User"); code != codeNotAuthorized {
		t.Errorf("MQTT 5 client of the deleted User cut with DISCONNECT %#x, want %#x", code, codeNotAuthorized)
	}
	if _, code, err := dialV5(t, acme.mqttAddr, acme.username, newPassword); err == nil || code != codeBadCredentials {
		t.Errorf("CONNECT of the deleted User: code %#x, err %v; want refused with %#x", code, err, codeBadCredentials)
	}
	waitBrokerReady(t, acme.ns, acme.broker)
	if a := acme.admin.auth(t); a.Users != 0 {
		t.Errorf("broker still holds %d users after the User was deleted", a.Users)
	}

	// ---- the other tenant saw none of it ----
	if !gdev.connected() {
		t.Errorf("globex's client was disconnected")
	}
	checkAccepted(t, "globex PUBLISH at the end", gdev.publish(t, "tenants/acme/"+globex.username+"/temp", "2"))
	globexAfter := snapshotTenant(t, globex)
	globexBefore.mustEqual(t, globexAfter, "globex's tenant")
}

func checkCode(t testing.TB, what string, got, want byte) {
	t.Helper()
	if got != want {
		t.Errorf("%s: reason code %#x, want %#x", what, got, want)
	}
}

func checkAccepted(t testing.TB, what string, code byte) {
	t.Helper()
	if !accepted(code) {
		t.Errorf("%s: refused with reason code %#x", what, code)
	}
}

func podRoot(t testing.TB, tn *tenant) string {
	t.Helper()
	info, ok := pods.Pod(tn.ns, tn.pod)
	if !ok {
		t.Fatalf("kubelet runs no pod %s/%s", tn.ns, tn.pod)
	}
	return info.Root
}

// ---- "nothing changed" ----

// tenantState is everything of a tenant that must not move when nothing
// happens to it: every object's resourceVersion, the broker process and the
// bundle it holds.
type tenantState struct {
	objects  map[string]string // "Kind name" → resourceVersion
	pid      int
	restarts int
	ip       string
	auth     admin.Applied
	adminErr string
	reloads  int
}

func snapshotTenant(t testing.TB, tn *tenant) tenantState {
	t.Helper()
	st := tenantState{objects: map[string]string{}}
	lists := map[string]client.ObjectList{
		"Broker": &mqttv1alpha1.BrokerList{}, "User": &mqttv1alpha1.UserList{}, "ACL": &mqttv1alpha1.ACLList{},
		"StatefulSet": &appsv1.StatefulSetList{}, "ConfigMap": &corev1.ConfigMapList{}, "Secret": &corev1.SecretList{},
		"Service": &corev1.ServiceList{}, "PodDisruptionBudget": &policyv1.PodDisruptionBudgetList{}, "Pod": &corev1.PodList{},
	}
	for kind, l := range lists {
		if err := k8s.List(ctx, l, client.InNamespace(tn.ns)); err != nil {
			t.Fatalf("list %s: %v", kind, err)
		}
		items, err := meta.ExtractList(l)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			o := it.(client.Object)
			st.objects[kind+" "+o.GetName()] = o.GetResourceVersion()
		}
	}
	info, ok := pods.Pod(tn.ns, tn.pod)
	if !ok {
		t.Fatalf("kubelet runs no pod %s/%s", tn.ns, tn.pod)
	}
	st.pid, st.restarts, st.ip = info.PID, info.Restarts, info.IP
	// The admin API at the address the tenant started with: a replaced
	// pod (new IP) shows as an error here, not as a test abort.
	if body, err := tn.admin.tryGet("/v1/auth"); err != nil {
		st.adminErr = err.Error()
	} else if err := json.Unmarshal(body, &st.auth); err != nil {
		st.adminErr = err.Error()
	}
	if st.adminErr == "" {
		st.reloads = tn.admin.reloads(t)
	}
	return st
}

// settledSnapshot waits until the operator has finished with the tenant
// (two snapshots 500 ms apart agree) and returns the state.
func settledSnapshot(t testing.TB, tn *tenant) tenantState {
	t.Helper()
	cur := snapshotTenant(t, tn)
	var diff string
	eventually(t, waitTimeout, "tenant "+tn.ns+" settles", func() (bool, string) {
		time.Sleep(500 * time.Millisecond)
		next := snapshotTenant(t, tn)
		diff = cur.diff(next)
		cur = next
		return diff == "", diff
	})
	return cur
}

func (a tenantState) mustEqual(t testing.TB, b tenantState, what string) {
	t.Helper()
	if d := a.diff(b); d != "" {
		t.Errorf("%s changed:\n  %s", what, d)
	}
}

// diff describes how b differs from a ("" when it does not).
func (a tenantState) diff(b tenantState) string {
	var diffs []string
	for k, v := range a.objects {
		switch w, ok := b.objects[k]; {
		case !ok:
			diffs = append(diffs, k+" deleted")
		case w != v:
			diffs = append(diffs, fmt.Sprintf("%s written (resourceVersion %s → %s)", k, v, w))
		}
	}
	for k := range b.objects {
		if _, ok := a.objects[k]; !ok {
			diffs = append(diffs, k+" created")
		}
	}
	if a.pid != b.pid || a.restarts != b.restarts {
		diffs = append(diffs, fmt.Sprintf("broker restarted (pid %d → %d, restarts %d → %d)", a.pid, b.pid, a.restarts, b.restarts))
	}
	if a.ip != b.ip {
		diffs = append(diffs, fmt.Sprintf("pod IP %s → %s", a.ip, b.ip))
	}
	if a.adminErr != b.adminErr {
		diffs = append(diffs, fmt.Sprintf("broker admin API error %q → %q", a.adminErr, b.adminErr))
	}
	if a.auth != b.auth {
		diffs = append(diffs, fmt.Sprintf("broker auth %+v → %+v", a.auth, b.auth))
	}
	if a.reloads != b.reloads {
		diffs = append(diffs, fmt.Sprintf("broker received %d more auth bundles", b.reloads-a.reloads))
	}
	slices.Sort(diffs)
	return strings.Join(diffs, "\n  ")
}

// restartOperator stops the manager, starts a new one, lets it reconcile
// everything, and checks that it changed nothing: no object written, no
// broker restarted or re-pushed, every client still connected.
func restartOperator(t *testing.T, tenants []*tenant) {
	t.Helper()
	before := make([]tenantState, len(tenants))
	for i, tn := range tenants {
		before[i] = settledSnapshot(t, tn)
	}
	var brokers mqttv1alpha1.BrokerList
	var users mqttv1alpha1.UserList
	var acls mqttv1alpha1.ACLList
	for _, l := range []client.ObjectList{&brokers, &users, &acls} {
		if err := k8s.List(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	counts := reconcileCounts(t)

	if err := op.stop(); err != nil {
		t.Fatalf("stop the operator: %v", err)
	}
	if err := op.start(); err != nil {
		t.Fatalf("start the operator again: %v", err)
	}
	want := map[string]int{"broker": len(brokers.Items), "user": len(users.Items), "acl": len(acls.Items)}
	eventually(t, waitTimeout, "the new operator reconciles every object once", func() (bool, string) {
		now := reconcileCounts(t)
		ok := true
		for c, n := range want {
			ok = ok && now[c]-counts[c] >= n && workqueueDepth(t, c) == 0
		}
		return ok, fmt.Sprintf("reconciles before %v, now %v, want %v more", counts, now, want)
	})
	t.Logf("operator restarted; reconciles before %v, after %v", counts, reconcileCounts(t))
	// Whatever a reconcile would write (a status, a push, a requeue after
	// 1 s) has happened by now.
	time.Sleep(2 * time.Second)
	for i, tn := range tenants {
		before[i].mustEqual(t, snapshotTenant(t, tn), "after the operator restart, tenant "+tn.ns)
	}
}

// reconcileCounts sums controller_runtime_reconcile_total by controller,
// across managers (the registry is the process's).
func reconcileCounts(t testing.TB) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, m := range gather(t, "controller_runtime_reconcile_total") {
		out[label(m, "controller")] += int(m.GetCounter().GetValue())
	}
	return out
}

func workqueueDepth(t testing.TB, name string) int {
	t.Helper()
	n := 0
	for _, m := range gather(t, "workqueue_depth") {
		if label(m, "name") == name {
			n += int(m.GetGauge().GetValue())
		}
	}
	return n
}

func gather(t testing.TB, family string) []*dto.Metric {
	t.Helper()
	fams, err := crmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == family {
			return f.GetMetric()
		}
	}
	return nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
