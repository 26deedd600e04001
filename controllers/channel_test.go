package controllers_test

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	mqttv1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/broker/config"
	"github.com/fleetmq/fleetmq/internal/pki"
	"github.com/fleetmq/fleetmq/internal/resource"
)

func init() {
	// The ServiceMonitor test installs the Prometheus Operator's CRD.
	utilruntime.Must(apiextensionsv1.AddToScheme(scheme))
}

// channelSecrets waits for the CA, admin TLS and metrics Secrets of broker.
func channelSecrets(t *testing.T, ns, broker string) (ca, adminTLS, metrics *corev1.Secret) {
	t.Helper()
	ca, adminTLS, metrics = &corev1.Secret{}, &corev1.Secret{}, &corev1.Secret{}
	eventually(t, waitTimeout, "channel Secrets of "+broker, func() (bool, string) {
		e1 := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: broker + "-ca"}, ca)
		e2 := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: broker + "-admin-tls"}, adminTLS)
		e3 := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: broker + "-metrics"}, metrics)
		return e1 == nil && e2 == nil && e3 == nil, fmt.Sprintf("ca: %v, admin-tls: %v, metrics: %v", e1, e2, e3)
	})
	return ca, adminTLS, metrics
}

// The operator issues each Broker a CA and an admin serving certificate
// for its headless Service and pod names; it pushes over HTTPS to a broker
// presenting it, and refuses, with a condition and an Event, a broker
// presenting a certificate of another Broker's CA.
func TestAdminChannelTLS(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, newBroker(ns, "acme"))
	create(t, newBroker(ns, "other"))
	create(t, newUser(ns, "alice", "acme", ""))
	create(t, newUser(ns, "bob", "other", ""))
	ca, adminTLS, metrics := channelSecrets(t, ns, "acme")
	_, otherTLS, _ := channelSecrets(t, ns, "other")

	now := time.Now()
	for _, name := range []string{"acme-headless." + ns + ".svc", "acme-0.acme-headless." + ns + ".svc"} {
		if err := pki.VerifyServer(adminTLS.Data["tls.crt"], ca.Data["ca.crt"], name, now); err != nil {
			t.Errorf("serving certificate for %s: %v", name, err)
		}
	}
	if err := pki.VerifyServer(otherTLS.Data["tls.crt"], ca.Data["ca.crt"], "acme-headless."+ns+".svc", now); err == nil {
		t.Error("another Broker's certificate verifies against acme's CA")
	}
	if _, err := pki.ParseCA(ca.Data["ca.crt"], ca.Data["ca.key"]); err != nil {
		t.Errorf("CA Secret: %v", err)
	}
	for _, s := range []*corev1.Secret{adminTLS, metrics} {
		if _, ok := s.Data["ca.key"]; ok {
			t.Errorf("Secret %s holds the CA key", s.Name)
		}
		if !bytes.Equal(s.Data["ca.crt"], ca.Data["ca.crt"]) {
			t.Errorf("Secret %s ca.crt is not the CA in force", s.Name)
		}
	}
	if len(metrics.Data["token"]) < 32 {
		t.Errorf("metrics token %q too short", metrics.Data["token"])
	}
	var admin corev1.Secret
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "acme-admin"}, &admin); err == nil &&
		bytes.Equal(admin.Data["token"], metrics.Data["token"]) {
		t.Error("the metrics token is the admin token")
	}

	// What the pod gets: the certificate and key, the metrics token, never
	// the CA key; the config serves the admin API with them.
	var sts appsv1.StatefulSet
	eventually(t, waitTimeout, "StatefulSet acme", func() (bool, string) {
		err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "acme"}, &sts)
		return err == nil, fmt.Sprint(err)
	})
	for _, v := range sts.Spec.Template.Spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == "acme-ca" {
			t.Errorf("volume %s mounts the CA Secret", v.Name)
		}
	}
	var cm corev1.ConfigMap
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "acme-config"}, &cm); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cm.Data["broker.yaml"], "adminTLS:") || !strings.Contains(cm.Data["broker.yaml"], "metricsTokenFile: /etc/fleetmq/metrics/token") {
		t.Errorf("broker config does not serve the admin API over TLS with the metrics token:\n%s", cm.Data["broker.yaml"])
	}

	// A broker with acme's certificate: pushed over HTTPS, in sync.
	p := startBrokerTLS(t, ns, "acme", adminTLS.Data["tls.crt"], adminTLS.Data["tls.key"])
	createReadyPod(t, ns, "acme", "127.0.0.2", p)
	waitBroker(t, ns, "acme", "AuthSynced over HTTPS", func(b *mqttv1alpha1.Broker) bool {
		return hasCond(b.Status.Conditions, mqttv1alpha1.ConditionAuthSynced, metav1.ConditionTrue, mqttv1alpha1.ReasonAuthSynced, b.Generation) &&
			len(b.Status.Pods) == 1 && b.Status.Pods[0].AppliedRevision == b.Status.AuthRevision
	})

	// A broker at other's pod presenting acme's certificate (another CA,
	// another name): the operator sends it nothing and says why.
	impostor := startBrokerTLS(t, ns, "other", adminTLS.Data["tls.crt"], adminTLS.Data["tls.key"])
	createReadyPod(t, ns, "other", "127.0.0.3", impostor)
	b := waitBroker(t, ns, "other", "AuthSynced False: certificate untrusted", func(b *mqttv1alpha1.Broker) bool {
		return hasCond(b.Status.Conditions, mqttv1alpha1.ConditionAuthSynced, metav1.ConditionFalse, mqttv1alpha1.ReasonAdminCertificateUntrusted, b.Generation)
	})
	msg := ""
	for _, c := range b.Status.Conditions {
		if c.Type == mqttv1alpha1.ConditionAuthSynced {
			msg = c.Message
		}
	}
	if !strings.Contains(msg, "other-0") || !strings.Contains(msg, "certificate") {
		t.Errorf("AuthSynced message %q does not name the pod and the certificate problem", msg)
	}
	if n := pushes.count(impostor.AdminAddr); n != 0 {
		t.Errorf("%d bundles sent to the impostor, want none", n)
	}
	eventually(t, waitTimeout, "Warning Event AdminCertificateUntrusted", func() (bool, string) {
		var evs eventsv1.EventList
		if err := k8s.List(ctx, &evs, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		for _, e := range evs.Items {
			if e.Reason == mqttv1alpha1.ReasonAdminCertificateUntrusted && e.Regarding.Name == "other" && e.Type == corev1.EventTypeWarning {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d events, none for other", len(evs.Items))
	})
}

// A lost or tampered serving certificate is reissued from the Broker's CA.
func TestAdminCertificateReissued(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, newBroker(ns, "acme"))
	ca, adminTLS, _ := channelSecrets(t, ns, "acme")
	foreign, err := pki.Ensure(pki.Material{}, "foreign", []string{"acme-headless." + ns + ".svc"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	update(t, adminTLS, func(s *corev1.Secret) {
		s.Data["tls.crt"], s.Data["tls.key"] = foreign.Material.ServerCert, foreign.Material.ServerKey
	})
	eventually(t, waitTimeout, "serving certificate reissued from acme's CA", func() (bool, string) {
		var s corev1.Secret
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(adminTLS), &s); err != nil {
			return false, err.Error()
		}
		err := pki.VerifyServer(s.Data["tls.crt"], ca.Data["ca.crt"], "acme-headless."+ns+".svc", time.Now())
		return err == nil, fmt.Sprint(err)
	})
	var cur corev1.Secret
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(ca), &cur); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cur.Data["ca.key"], ca.Data["ca.key"]) {
		t.Error("the CA was replaced although it was fine")
	}
}

// A CA Secret that loses its label is found and relabelled, not replaced:
// a new CA would leave pods without the old one's overlap.
func TestCASecretLabelRemoved(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	create(t, newBroker(ns, "acme"))
	ca, _, _ := channelSecrets(t, ns, "acme")
	labels := maps.Clone(ca.Labels)
	update(t, ca, func(s *corev1.Secret) { s.Labels = nil })
	cur := waitSecret(t, ns, ca.Name, "CA Secret relabelled", func(s *corev1.Secret) bool {
		for k, v := range labels {
			if s.Labels[k] != v {
				return false
			}
		}
		return true
	})
	if !bytes.Equal(cur.Data["ca.key"], ca.Data["ca.key"]) || !bytes.Equal(cur.Data["ca.crt"], ca.Data["ca.crt"]) {
		t.Error("the CA was replaced when its Secret lost its label")
	}
}

// The NetworkPolicy admits the operator's namespace (and adminFrom) to the
// admin port, clients (or clientFrom) to the MQTT ports, and goes when
// disabled.
func TestNetworkPolicy(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	b := newBroker(ns, "acme")
	b.Spec.Listeners.TLS = &mqttv1alpha1.TLSListener{SecretName: "acme-tls"}
	create(t, b)
	np := &networkingv1.NetworkPolicy{}
	eventually(t, waitTimeout, "NetworkPolicy acme", func() (bool, string) {
		err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "acme"}, np)
		return err == nil, fmt.Sprint(err)
	})
	if len(np.Spec.Ingress) != 2 {
		t.Fatalf("ingress rules = %+v, want admin and clients", np.Spec.Ingress)
	}
	admin, clients := np.Spec.Ingress[0], np.Spec.Ingress[1]
	if len(admin.Ports) != 1 || admin.Ports[0].Port.StrVal != "admin" || len(admin.From) != 1 ||
		admin.From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != operatorNamespace {
		t.Errorf("admin rule = %+v, want port admin from namespace %s only", admin, operatorNamespace)
	}
	if got := portNames(clients.Ports); got != "mqtt,mqtts" || len(clients.From) != 0 {
		t.Errorf("client rule ports %s from %+v, want mqtt,mqtts from everywhere", got, clients.From)
	}

	prom := networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "monitoring"}}}
	lan := networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "192.0.2.0/24"}}
	update(t, b, func(b *mqttv1alpha1.Broker) {
		b.Spec.NetworkPolicy.AdminFrom = []networkingv1.NetworkPolicyPeer{prom}
		b.Spec.NetworkPolicy.ClientFrom = []networkingv1.NetworkPolicyPeer{lan}
	})
	eventually(t, waitTimeout, "peers in the NetworkPolicy", func() (bool, string) {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(np), np); err != nil {
			return false, err.Error()
		}
		in := np.Spec.Ingress
		ok := len(in) == 2 && len(in[0].From) == 2 && in[0].From[1].NamespaceSelector != nil &&
			len(in[1].From) == 1 && in[1].From[0].IPBlock != nil && in[1].From[0].IPBlock.CIDR == "192.0.2.0/24"
		return ok, fmt.Sprintf("%+v", in)
	})

	update(t, b, func(b *mqttv1alpha1.Broker) { b.Spec.NetworkPolicy.Enabled = ptr.To(false) })
	eventually(t, waitTimeout, "NetworkPolicy deleted", func() (bool, string) {
		err := k8s.Get(ctx, client.ObjectKeyFromObject(np), &networkingv1.NetworkPolicy{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
}

func portNames(ps []networkingv1.NetworkPolicyPort) string {
	var names []string
	for _, p := range ps {
		names = append(names, p.Port.String())
	}
	return strings.Join(names, ",")
}

// listeners.mqtt.enabled: false takes the plain port off the Services, the
// pod and the config, and out of the credentials Secret, which advertises
// the listeners in use; a Broker left with no listener is refused.
func TestPlainListenerSwitch(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	bad := newBroker(ns, "none")
	bad.Spec.Listeners.MQTT.Enabled = ptr.To(false)
	if err := k8s.Create(ctx, bad); err == nil || !strings.Contains(err.Error(), "listeners.mqtt.enabled") {
		t.Fatalf("Broker with no listener: %v, want refused naming listeners.mqtt.enabled", err)
	}

	newListeners := func(name string, plain bool) {
		b := newBroker(ns, name)
		b.Spec.Listeners.MQTT.Enabled = ptr.To(plain)
		b.Spec.Listeners.TLS = &mqttv1alpha1.TLSListener{SecretName: name + "-tls", ClientAuth: "Required", UseCommonNameAsUsername: true}
		b.Spec.Listeners.WebSocket = &mqttv1alpha1.WebSocketListener{}
		create(t, b)
	}
	newListeners("all", true)
	newListeners("acme", false)
	create(t, newUser(ns, "alice", "all", ""))
	create(t, newUser(ns, "bob", "acme", ""))
	waitCreds := func(user, what string, check func(d map[string][]byte) bool) {
		t.Helper()
		eventually(t, waitTimeout, what, func() (bool, string) {
			var creds corev1.Secret
			err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: mqttv1alpha1.CredentialsSecretName(user)}, &creds)
			if err != nil {
				return false, err.Error()
			}
			return check(creds.Data), fmt.Sprintf("%q", creds.Data)
		})
	}
	waitCreds("alice", "credentials with every listener", func(d map[string][]byte) bool {
		return string(d["port"]) == "1883" && string(d["tlsPort"]) == "8883" && string(d["websocketURL"]) == "ws://all."+ns+".svc:8080/mqtt"
	})
	waitCreds("bob", "credentials without port", func(d map[string][]byte) bool {
		_, plain := d["port"]
		return !plain && string(d["tlsPort"]) == "8883" && string(d["websocketURL"]) == "ws://acme."+ns+".svc:8080/mqtt"
	})
	for _, name := range []string{"acme", "acme-headless"} {
		var svc corev1.Service
		eventually(t, waitTimeout, "Service "+name+" without mqtt", func() (bool, string) {
			if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &svc); err != nil {
				return false, err.Error()
			}
			for _, p := range svc.Spec.Ports {
				if p.Name == "mqtt" {
					return false, fmt.Sprintf("%+v", svc.Spec.Ports)
				}
			}
			return true, ""
		})
	}
	var cm corev1.ConfigMap
	eventually(t, waitTimeout, "config with mqttDisabled", func() (bool, string) {
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "acme-config"}, &cm); err != nil {
			return false, err.Error()
		}
		return strings.Contains(cm.Data["broker.yaml"], "mqttDisabled: true"), cm.Data["broker.yaml"]
	})
	var sts appsv1.StatefulSet
	eventually(t, waitTimeout, "pod template without the mqtt port", func() (bool, string) {
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "acme"}, &sts); err != nil {
			return false, err.Error()
		}
		for _, p := range sts.Spec.Template.Spec.Containers[0].Ports {
			if p.Name == "mqtt" {
				return false, fmt.Sprintf("%+v", sts.Spec.Template.Spec.Containers[0].Ports)
			}
		}
		return true, ""
	})
	// The rendered file is one the broker accepts.
	path := t.TempDir() + "/broker.yaml"
	if err := os.WriteFile(path, []byte(cm.Data["broker.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil || !cfg.Listeners.MQTTDisabled {
		t.Errorf("rendered config: %v, mqttDisabled %v", err, cfg.Listeners.MQTTDisabled)
	}
}

// The ServiceMonitor (with the Prometheus Operator's CRD installed) scrapes
// over HTTPS with the metrics Secret's CA and token, never the admin token.
func TestServiceMonitorUsesMetricsToken(t *testing.T) {
	t.Parallel()
	ns, _, sm := createMonitoredBroker(t)
	eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if len(eps) != 1 {
		t.Fatalf("endpoints = %v", eps)
	}
	ep := eps[0].(map[string]any)
	scheme, _, _ := unstructured.NestedString(ep, "scheme")
	credName, _, _ := unstructured.NestedString(ep, "authorization", "credentials", "name")
	caName, _, _ := unstructured.NestedString(ep, "tlsConfig", "ca", "secret", "name")
	serverName, _, _ := unstructured.NestedString(ep, "tlsConfig", "serverName")
	if scheme != "https" || credName != "acme-metrics" || caName != "acme-metrics" || serverName != "acme-headless."+ns+".svc" {
		t.Errorf("endpoint scheme %q credentials %q ca %q serverName %q, want https from acme-metrics verifying acme-headless.%s.svc",
			scheme, credName, caName, serverName, ns)
	}
}

func installServiceMonitorCRD(t *testing.T) {
	t.Helper()
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "servicemonitors.monitoring.coreos.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "monitoring.coreos.com",
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "servicemonitors", Singular: "servicemonitor", Kind: "ServiceMonitor", ListKind: "ServiceMonitorList"},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: ptr.To(true),
				}},
			}},
		},
	}
	if err := k8s.Create(ctx, crd); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("install ServiceMonitor CRD: %v", err)
	}
	eventually(t, waitTimeout, "ServiceMonitor CRD established", func() (bool, string) {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(crd), crd); err != nil {
			return false, err.Error()
		}
		for _, c := range crd.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", crd.Status.Conditions)
	})
}

// createMonitoredBroker creates Broker acme with its ServiceMonitor enabled
// (the Prometheus Operator's CRD installed) in a namespace of its own, and
// waits for the operator to make the ServiceMonitor.
func createMonitoredBroker(t *testing.T) (string, *mqttv1alpha1.Broker, *unstructured.Unstructured) {
	t.Helper()
	installServiceMonitorCRD(t)
	ns := newNamespace(t)
	b := newBroker(ns, "acme")
	b.Spec.Monitoring.ServiceMonitor = &mqttv1alpha1.ServiceMonitorSpec{Enabled: true}
	create(t, b)
	sm := &unstructured.Unstructured{}
	sm.SetGroupVersionKind(resource.ServiceMonitorGVK)
	key := client.ObjectKey{Namespace: ns, Name: resource.ServiceMonitorName(b)}
	eventually(t, waitTimeout, "ServiceMonitor created", func() (bool, string) {
		err := k8s.Get(ctx, key, sm)
		return err == nil, fmt.Sprint(err)
	})
	return ns, b, sm
}
