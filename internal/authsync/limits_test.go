package authsync

import (
	"reflect"
	"testing"

	"github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/broker/authz"
)

func ptr32(v int32) *int32 { return &v }

// TestCompileUserLimits: spec.limits reach the bundle's user entry (an
// absent burst is 0, the broker's "same as the rate"); a User without
// limits has none there; changing limits bumps the revision and the
// User's own revision only.
func TestCompileUserLimits(t *testing.T) {
	withLimits := func(l *v1alpha1.UserLimits) func(*v1alpha1.User) {
		return func(u *v1alpha1.User) { u.Spec.Limits = l }
	}
	in := Input{Broker: newBroker(false), HashPassword: (&hasher{}).hash,
		Users: []v1alpha1.User{
			newUser("all", 0, withLimits(&v1alpha1.UserLimits{MaxConnections: ptr32(3), MaxSubscriptionsPerClient: ptr32(50),
				PublishRate: &v1alpha1.PublishRate{MessagesPerSecond: 10, Burst: ptr32(100)}})),
			newUser("rate", 1, withLimits(&v1alpha1.UserLimits{PublishRate: &v1alpha1.PublishRate{MessagesPerSecond: 5}})),
			newUser("none", 2),
			newUser("empty", 3, withLimits(&v1alpha1.UserLimits{})),
		},
		Secrets: secrets(generated("all", "a"), generated("rate", "r"), generated("none", "n"), generated("empty", "e")),
	}
	res := mustCompile(t, in)
	for _, tc := range []struct {
		username string
		want     *authz.UserLimits
	}{
		{"all", &authz.UserLimits{MaxConnections: 3, MaxSubscriptionsPerClient: 50, PublishRate: &authz.PublishRate{MessagesPerSecond: 10, Burst: 100}}},
		{"rate", &authz.UserLimits{PublishRate: &authz.PublishRate{MessagesPerSecond: 5}}},
		{"none", nil},
		{"empty", nil},
	} {
		if got := bundleUser(t, res, tc.username).Limits; !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: limits %+v, want %+v", tc.username, got, tc.want)
		}
	}
	if _, err := authz.Compile(res.Bundle); err != nil {
		t.Fatalf("the broker refuses the bundle: %v", err)
	}

	in.Previous = res.State
	in.Users[1].Spec.Limits.PublishRate.MessagesPerSecond = 6
	next := mustCompile(t, in)
	if !next.Changed || next.Bundle.Revision != res.Bundle.Revision+1 {
		t.Fatalf("after a limit change: changed=%v revision %d, want a new revision", next.Changed, next.Bundle.Revision)
	}
	if got := next.Users["rate"].IncludedRevision; got != next.Bundle.Revision {
		t.Errorf("User rate: revision %d, want %d", got, next.Bundle.Revision)
	}
	if got := next.Users["all"].IncludedRevision; got != res.Bundle.Revision {
		t.Errorf("User all: revision %d, want the unchanged %d", got, res.Bundle.Revision)
	}
}
