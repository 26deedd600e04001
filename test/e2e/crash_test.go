package e2e_test

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestBrokerCrash kills a broker process: the pod turns not ready, the
// kubelet restarts the container, the broker comes back with the bundle
// from its mounted Secret, and the clients reconnect with their
// credentials and rules.
func TestBrokerCrash(t *testing.T) {
	tn := newTenant(t, "crash-"+randName())
	c := mustV5(t, tn.mqttAddr, tn.username, tn.password)
	before := tn.admin.auth(t)
	old, _ := pods.Pod(tn.ns, tn.pod)

	if err := pods.Kill(tn.ns, tn.pod); err != nil {
		t.Fatal(err)
	}
	if code := c.waitCut(t, "the broker crash"); code != -1 {
		t.Errorf("a killed broker sent DISCONNECT %#x", code)
	}
	var pod corev1.Pod
	eventually(t, waitTimeout, "the pod restarted and Ready again", func() (bool, string) {
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: tn.ns, Name: tn.pod}, &pod); err != nil {
			return false, err.Error()
		}
		cs := pod.Status.ContainerStatuses
		ok := len(cs) == 1 && cs[0].RestartCount == 1 && cs[0].Ready && podReady(&pod)
		return ok, fmt.Sprintf("%+v", pod.Status)
	})
	if now, _ := pods.Pod(tn.ns, tn.pod); now.PID == old.PID || now.IP != old.IP {
		t.Errorf("after the restart pid %d ip %s, before pid %d ip %s: want a new process on the same pod IP", now.PID, now.IP, old.PID, old.IP)
	}
	waitBrokerReady(t, tn.ns, tn.broker)
	if a := tn.admin.auth(t); a.Revision != before.Revision || a.Hash != before.Hash || a.Source != "file" {
		t.Errorf("restarted broker holds %+v, want revision %d hash %s from the mounted Secret (file)", a, before.Revision, before.Hash)
	}
	c = mustV5(t, tn.mqttAddr, tn.username, tn.password)
	own := "tenants/acme/" + tn.username
	checkAccepted(t, "PUBLISH own subtree after the restart", c.publish(t, own+"/temp", "1"))
	checkCode(t, "PUBLISH under admin/ after the restart", c.publish(t, own+"/admin/x", "1"), codeNotAuthorized)
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
