package e2e_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	mqttv1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/internal/pki"
	"github.com/fleetmq/fleetmq/internal/resource"
)

// TestAdminChannel: the operator reaches real broker pods over HTTPS,
// verifying them against each Broker's own CA; Prometheus's token reads
// /metrics only; and a pod that carries the Broker's labels but presents a
// certificate from another CA (an impostor after the password hashes) gets
// nothing, and the Broker says why.
func TestAdminChannel(t *testing.T) {
	ns := "channel-" + randName()
	acme := newTenant(t, ns) // Ready: the operator read each pod's revision over HTTPS

	// The admin port speaks TLS only, with a certificate naming the
	// headless Service and verifying against the Broker's CA.
	req, _ := http.NewRequest(http.MethodGet, "http://"+acme.admin.addr+"/v1/auth", nil)
	req.Header.Set("Authorization", "Bearer "+acme.admin.token)
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK { // a TLS server answers plain HTTP with 400
			t.Fatal("the admin API answers plain HTTP")
		}
	}
	a := acme.admin.auth(t)
	br := waitBrokerReady(t, ns, acme.broker)
	if a.Revision != br.Status.AuthRevision || br.Status.Pods[0].AppliedRevision != a.Revision {
		t.Errorf("pod holds revision %d, Broker status %d / pod %d", a.Revision, br.Status.AuthRevision, br.Status.Pods[0].AppliedRevision)
	}

	// Prometheus's credentials: the metrics token reads /metrics, never
	// the auth endpoint; the admin token is not in its Secret.
	var metrics, admin corev1.Secret
	get(t, secretRef(&metrics, ns, acme.broker+"-metrics"))
	get(t, secretRef(&admin, ns, acme.broker+"-admin"))
	if string(metrics.Data["token"]) == string(admin.Data["token"]) {
		t.Fatal("the metrics token is the admin token")
	}
	scraper := &adminAPI{addr: acme.admin.addr, token: string(metrics.Data["token"]), client: acme.admin.client}
	if m := scraper.metrics(t); m["fleetmq_auth_revision"] != float64(a.Revision) {
		t.Errorf("scraped fleetmq_auth_revision %v, want %d", m["fleetmq_auth_revision"], a.Revision)
	}
	if _, err := scraper.tryGet("/v1/auth"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("GET /v1/auth with the metrics token: %v, want 401", err)
	}

	// The impostor: a real broker on a pod IP of its own, serving a
	// certificate for the right names from another CA, behind a Ready pod
	// with the Broker's labels.
	foreign, err := pki.Ensure(pki.Material{}, "impostor CA", resource.AdminDNSNames(&mqttv1alpha1.Broker{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: acme.broker}}), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ip, err := pods.ReserveIP(resource.AdminPort)
	if err != nil {
		t.Fatal(err)
	}
	impostorAdmin := startImpostor(t, ip, foreign.Material.ServerCert, foreign.Material.ServerKey)
	pod := impostorPod(t, ns, acme.broker, ip)

	b := waitBroker(t, ns, acme.broker, "AuthSynced False: AdminCertificateUntrusted", func(b *mqttv1alpha1.Broker) bool {
		return hasCond(b.Status.Conditions, mqttv1alpha1.ConditionAuthSynced, metav1.ConditionFalse, mqttv1alpha1.ReasonAdminCertificateUntrusted, b.Generation)
	})
	for _, c := range b.Status.Conditions {
		if c.Type == mqttv1alpha1.ConditionAuthSynced && (!strings.Contains(c.Message, pod.Name) || !strings.Contains(c.Message, "certificate")) {
			t.Errorf("AuthSynced message %q: want the pod and the certificate named", c.Message)
		}
	}
	if got := impostorAuth(t, impostorAdmin); !strings.Contains(got, `"loaded": false`) {
		t.Errorf("the impostor received a bundle: %s", got)
	}

	// Without the impostor the Broker is whole again.
	if err := k8s.Delete(ctx, pod); err != nil {
		t.Fatal(err)
	}
	waitBrokerReady(t, ns, acme.broker)
}

func secretRef(s *corev1.Secret, ns, name string) *corev1.Secret {
	s.Namespace, s.Name = ns, name
	return s
}

// waitBroker waits for check to hold on the Broker.
func waitBroker(t testing.TB, ns, name, what string, check func(*mqttv1alpha1.Broker) bool) *mqttv1alpha1.Broker {
	t.Helper()
	var b mqttv1alpha1.Broker
	eventually(t, waitTimeout, what, func() (bool, string) {
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &b); err != nil {
			return false, err.Error()
		}
		return check(&b), condState(b.Status.Conditions)
	})
	return &b
}

const impostorToken = "impostor-token"

// startImpostor runs fleetmq-broker with its admin API on ip:8081 over TLS
// with cert and key, ready at once (anonymous), and returns that address.
func startImpostor(t *testing.T, ip string, cert, key []byte) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string][]byte{"tls.crt": cert, "tls.key": key, "token": []byte(impostorToken)}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	addr := net.JoinHostPort(ip, strconv.Itoa(resource.AdminPort))
	mustLoopback(t, addr)
	cmd := exec.Command(brokerBin, "--mqtt-addr", net.JoinHostPort(ip, "0"), "--admin-addr", addr, "--allow-anonymous",
		"--admin-tls-cert", filepath.Join(dir, "tls.crt"), "--admin-tls-key", filepath.Join(dir, "tls.key"),
		"--admin-token-file", filepath.Join(dir, "token"), "--log-format", "text")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if verbose {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	eventually(t, waitTimeout, "impostor serving", func() (bool, string) {
		_, err := impostorGet(addr)
		return err == nil, fmt.Sprint(err)
	})
	return addr
}

// impostorGet reads the impostor's /v1/auth (as its own owner would).
func impostorGet(addr string) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the impostor's own view
	}}
	req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/v1/auth", nil)
	req.Header.Set("Authorization", "Bearer "+impostorToken)
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = errors.New(resp.Status)
	}
	return string(body), err
}

func impostorAuth(t *testing.T, addr string) string {
	t.Helper()
	body, err := impostorGet(addr)
	if err != nil {
		t.Fatalf("impostor /v1/auth: %v", err)
	}
	return body
}

// impostorPod creates a Ready pod with the broker pods' labels at ip, as
// anyone allowed to create pods in the namespace could.
func impostorPod(t *testing.T, ns, broker, ip string) *corev1.Pod {
	t.Helper()
	var sts appsv1.StatefulSet
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: broker}, &sts); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: broker + "-impostor", Labels: sts.Spec.Template.Labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: resource.ContainerName, Image: "impostor"}}},
	}
	create(t, pod)
	pod.Status = corev1.PodStatus{
		Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}},
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}},
	}
	if err := k8s.Status().Update(ctx, pod); err != nil {
		t.Fatalf("impostor pod status: %v", err)
	}
	return pod
}
