package authsync

import (
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/broker/authz"
)

const (
	testNamespace = "tenant-a"
	testBroker    = "b1"
	// testIterations keeps PBKDF2 cheap (production uses
	// authz.DefaultIterations).
	testIterations = 100
)

// t0 is the creation time of the oldest fixture.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// hasher wraps the real authz.HashPassword and counts its calls: not a
// mock, instrumentation.
type hasher struct{ calls atomic.Int64 }

func (h *hasher) hash(p []byte) (string, error) {
	h.calls.Add(1)
	return authz.HashPassword(p, testIterations)
}

func newBroker(allowAnonymous bool) *v1alpha1.Broker {
	return &v1alpha1.Broker{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: testBroker},
		Spec:       v1alpha1.BrokerSpec{AllowAnonymous: allowAnonymous},
	}
}

// newUser is a User of testBroker created age seconds after t0.
func newUser(name string, age int, mods ...func(*v1alpha1.User)) v1alpha1.User {
	u := v1alpha1.User{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: name, CreationTimestamp: metav1.NewTime(t0.Add(time.Duration(age) * time.Second))},
		Spec:       v1alpha1.UserSpec{BrokerRef: v1alpha1.BrokerReference{Name: testBroker}},
	}
	for _, m := range mods {
		m(&u)
	}
	return u
}

func withUsername(n string) func(*v1alpha1.User) {
	return func(u *v1alpha1.User) { u.Spec.Username = n }
}

func withSecretRef(name, key string) func(*v1alpha1.User) {
	return func(u *v1alpha1.User) { u.Spec.PasswordSecretRef = &v1alpha1.SecretKeyReference{Name: name, Key: key} }
}

func withGroups(g ...string) func(*v1alpha1.User) {
	return func(u *v1alpha1.User) { u.Spec.Groups = g }
}

func deleting(u *v1alpha1.User) {
	now := metav1.NewTime(t0.Add(time.Hour))
	u.DeletionTimestamp = &now
	u.Finalizers = []string{"mqtt.fleetmq.io/auth"}
}

func newSecret(name string, kv ...string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: name}, Data: map[string][]byte{}}
	for i := 0; i+1 < len(kv); i += 2 {
		s.Data[kv[i]] = []byte(kv[i+1])
	}
	return s
}

// generated is the operator-generated Secret of user holding password.
func generated(user, password string) *corev1.Secret {
	return newSecret(v1alpha1.CredentialsSecretName(user), v1alpha1.CredentialsUsernameKey, user, v1alpha1.CredentialsPasswordKey, password)
}

func secrets(list ...*corev1.Secret) map[string]*corev1.Secret {
	m := make(map[string]*corev1.Secret, len(list))
	for _, s := range list {
		m[s.Name] = s
	}
	return m
}

func newACL(name string, rules ...v1alpha1.ACLRule) v1alpha1.ACL {
	return v1alpha1.ACL{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: name, CreationTimestamp: metav1.NewTime(t0)},
		Spec:       v1alpha1.ACLSpec{BrokerRef: v1alpha1.BrokerReference{Name: testBroker}, Rules: rules},
	}
}

// aclRule allows or denies (effect "" leaves the default) actions on topics
// to users.
func aclRule(effect v1alpha1.ACLEffect, users []string, actions []v1alpha1.ACLAction, topics ...string) v1alpha1.ACLRule {
	return v1alpha1.ACLRule{
		Subjects: v1alpha1.ACLSubjects{Users: users, Groups: []string{}, ClientIDs: []string{}},
		Topics:   topics,
		Actions:  actions,
		Effect:   effect,
	}
}

var (
	pub    = []v1alpha1.ACLAction{v1alpha1.ActionPublish}
	pubSub = []v1alpha1.ACLAction{v1alpha1.ActionSubscribe, v1alpha1.ActionPublish}
)

// mustCompile compiles and fails the test on error.
func mustCompile(t *testing.T, in Input) *Result {
	t.Helper()
	res, err := Compile(in)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	checkNoHashLeak(t, res)
	return res
}

// checkNoHashLeak fails when a status message carries a password hash of
// the fixtures (all made with testIterations; the scheme name alone, "$7$",
// may appear in a message).
func checkNoHashLeak(t *testing.T, res *Result) {
	t.Helper()
	prefix := "$7$" + strconv.Itoa(testIterations) + "$"
	for kind, m := range map[string]map[string]ObjectStatus{"User": res.Users, "ACL": res.ACLs} {
		for name, st := range m {
			if strings.Contains(st.Message, prefix) {
				t.Errorf("%s %s: message leaks a password hash: %s", kind, name, st.Message)
			}
		}
	}
}

// bundleUser returns the bundle's user with username, or fails.
func bundleUser(t *testing.T, res *Result, username string) authz.User {
	t.Helper()
	for _, u := range res.Bundle.Users {
		if u.Username == username {
			return u
		}
	}
	t.Fatalf("bundle has no user %q (users %v)", username, usernames(res))
	return authz.User{}
}

func usernames(res *Result) []string {
	var out []string
	for _, u := range res.Bundle.Users {
		out = append(out, u.Username)
	}
	return out
}
