package controllers_test

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	mqttv1alpha1 "github.com/fleetmq/fleetmq/api/v1alpha1"
	fmresource "github.com/fleetmq/fleetmq/internal/resource"
)

// The API server refuses listener ports that clash with the admin port and
// persistence changes the StatefulSet could not apply, with messages that
// say why.
func TestBrokerValidationCEL(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	admin := int32(fmresource.AdminPort)
	created := []struct {
		name   string
		mutate func(b *mqttv1alpha1.Broker)
		want   string
	}{
		{"mqtt on the admin port", func(b *mqttv1alpha1.Broker) { b.Spec.Listeners.MQTT.Port = admin },
			"listeners.mqtt.port must differ from the admin port 8081"},
		{"tls on the admin port", func(b *mqttv1alpha1.Broker) {
			b.Spec.Listeners.TLS = &mqttv1alpha1.TLSListener{Port: admin, SecretName: "tls"}
		}, "listeners.tls.port must differ from the admin port 8081"},
		{"websocket on the admin port", func(b *mqttv1alpha1.Broker) {
			b.Spec.Listeners.WebSocket = &mqttv1alpha1.WebSocketListener{Port: admin}
		}, "listeners.websocket.port must differ from the admin port 8081"},
		{"websocket on the tls port", func(b *mqttv1alpha1.Broker) {
			b.Spec.Listeners.TLS = &mqttv1alpha1.TLSListener{Port: 9000, SecretName: "tls"}
			b.Spec.Listeners.WebSocket = &mqttv1alpha1.WebSocketListener{Port: 9000}
		}, "listeners.websocket.port must differ from listeners.tls.port"},
	}
	for _, tc := range created {
		t.Run(tc.name, func(t *testing.T) {
			b := newBroker(ns, "b-"+randName())
			tc.mutate(b)
			err := k8s.Create(ctx, b)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("create: err = %v, want it refused with %q", err, tc.want)
			}
		})
	}

	withPVC := newBroker(ns, "persistent")
	withPVC.Spec.Persistence = &mqttv1alpha1.PersistenceSpec{Size: resource.MustParse("1Gi"), StorageClassName: ptr.To("fast")}
	create(t, withPVC)
	without := newBroker(ns, "ephemeral")
	create(t, without)
	updates := []struct {
		name   string
		obj    *mqttv1alpha1.Broker
		mutate func(b *mqttv1alpha1.Broker)
		want   string
	}{
		{"enable persistence", without, func(b *mqttv1alpha1.Broker) {
			b.Spec.Persistence = &mqttv1alpha1.PersistenceSpec{Size: resource.MustParse("1Gi")}
		}, "persistence cannot be added or removed after creation"},
		{"disable persistence", withPVC, func(b *mqttv1alpha1.Broker) { b.Spec.Persistence = nil },
			"persistence cannot be added or removed after creation"},
		{"resize", withPVC, func(b *mqttv1alpha1.Broker) { b.Spec.Persistence.Size = resource.MustParse("2Gi") },
			"persistence.size is immutable"},
		{"change storage class", withPVC, func(b *mqttv1alpha1.Broker) { b.Spec.Persistence.StorageClassName = ptr.To("slow") },
			"persistence.storageClassName is immutable"},
		{"drop storage class", withPVC, func(b *mqttv1alpha1.Broker) { b.Spec.Persistence.StorageClassName = nil },
			"persistence.storageClassName is immutable"},
		{"websocket on the admin port", without, func(b *mqttv1alpha1.Broker) {
			b.Spec.Listeners.WebSocket = &mqttv1alpha1.WebSocketListener{Port: admin}
		}, "listeners.websocket.port must differ from the admin port 8081"},
	}
	for _, tc := range updates {
		t.Run(tc.name, func(t *testing.T) {
			err := tryUpdate(t, tc.obj.DeepCopy(), tc.mutate)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("update: err = %v, want it refused with %q", err, tc.want)
			}
		})
	}
	// What can change still does.
	update(t, withPVC, func(b *mqttv1alpha1.Broker) { b.Spec.LogLevel = mqttv1alpha1.LogLevelDebug })
}

// The user-facing template cannot be combined with a referenced Secret.
func TestUserValidationCredentialsSecret(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	u := newUser(ns, "both", "acme", "pw")
	u.Spec.CredentialsSecret = &mqttv1alpha1.CredentialsSecretTemplate{Name: "x"}
	err := k8s.Create(ctx, u)
	if err == nil || !strings.Contains(err.Error(), "cannot be set with passwordSecretRef") {
		t.Fatalf("create: err = %v, want it refused", err)
	}
}

// Disabling the ServiceMonitor deletes the one the operator made.
func TestServiceMonitorDisabled(t *testing.T) {
	t.Parallel()
	ns, b, sm := createMonitoredBroker(t)
	key := client.ObjectKeyFromObject(sm)
	if owner := metav1.GetControllerOf(sm); owner == nil || owner.UID != b.UID {
		t.Fatalf("ServiceMonitor controller = %+v, want the Broker", owner)
	}
	update(t, b, func(b *mqttv1alpha1.Broker) { b.Spec.Monitoring.ServiceMonitor.Enabled = false })
	eventually(t, waitTimeout, "ServiceMonitor deleted", func() (bool, string) {
		err := k8s.Get(ctx, key, sm)
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})

	// One the operator does not own stays.
	other := newBroker(ns, "other")
	create(t, other)
	mine := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"endpoints": []any{}}}}
	mine.SetGroupVersionKind(fmresource.ServiceMonitorGVK)
	mine.SetNamespace(ns)
	mine.SetName(fmresource.ServiceMonitorName(other))
	create(t, mine)
	waitBroker(t, ns, "other", "reconciled", func(b *mqttv1alpha1.Broker) bool { return b.Status.ObservedGeneration == b.Generation })
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(mine), mine); err != nil {
		t.Errorf("a ServiceMonitor the operator does not own was removed: %v", err)
	}
}

// A paused Broker keeps its children as they are and its Users' Secrets
// ungenerated; resuming applies what changed meanwhile.
func TestBrokerPaused(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	b := newBroker(ns, "acme")
	create(t, b)
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acme"}}
	eventually(t, waitTimeout, "Service", func() (bool, string) {
		err := k8s.Get(ctx, client.ObjectKeyFromObject(svc), svc)
		return err == nil, fmt.Sprint(err)
	})

	update(t, b, func(b *mqttv1alpha1.Broker) {
		b.Annotations = map[string]string{mqttv1alpha1.AnnotationPaused: "true"}
	})
	waitBroker(t, ns, "acme", "Paused", func(b *mqttv1alpha1.Broker) bool {
		return meta.IsStatusConditionTrue(b.Status.Conditions, mqttv1alpha1.ConditionPaused)
	})
	waitEvent(t, ns, "acme", mqttv1alpha1.ReasonPaused)

	update(t, b, func(b *mqttv1alpha1.Broker) { b.Spec.Service.Annotations = map[string]string{"paused-change": "yes"} })
	create(t, newUser(ns, "late", "acme", ""))
	// Let the operator see both, then check that it changed nothing: a
	// paused Broker's status still follows its generation in the Paused
	// condition.
	waitBroker(t, ns, "acme", "Paused for the new generation", func(b *mqttv1alpha1.Broker) bool {
		c := meta.FindStatusCondition(b.Status.Conditions, mqttv1alpha1.ConditionPaused)
		return c != nil && c.ObservedGeneration == b.Generation
	})
	get(t, svc)
	if svc.Annotations["paused-change"] != "" {
		t.Errorf("Service changed while paused: annotations %v", svc.Annotations)
	}
	var s corev1.Secret
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: mqttv1alpha1.CredentialsSecretName("late")}, &s); !apierrors.IsNotFound(err) {
		t.Errorf("credentials Secret of a paused Broker's User: err = %v, want NotFound", err)
	}

	update(t, b, func(b *mqttv1alpha1.Broker) { delete(b.Annotations, mqttv1alpha1.AnnotationPaused) })
	waitBroker(t, ns, "acme", "resumed", func(b *mqttv1alpha1.Broker) bool {
		return meta.FindStatusCondition(b.Status.Conditions, mqttv1alpha1.ConditionPaused) == nil && b.Status.ObservedGeneration == b.Generation
	})
	waitEvent(t, ns, "acme", "Resumed")
	eventually(t, waitTimeout, "Service updated after resume", func() (bool, string) {
		get(t, svc)
		return svc.Annotations["paused-change"] == "yes", fmt.Sprint(svc.Annotations)
	})
	waitSecret(t, ns, mqttv1alpha1.CredentialsSecretName("late"), "Secret generated after resume", func(*corev1.Secret) bool { return true })
}
