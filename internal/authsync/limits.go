package authsync

import (
	"github.com/fleetmq/fleetmq/api/v1alpha1"
	"github.com/fleetmq/fleetmq/broker/authz"
)

// bundleLimits is a User's spec.limits as the bundle carries them: an
// absent field is 0 (the broker's own limit applies), an absent burst is
// 0 (the rate). nil when the User sets none, so a User without limits
// contributes exactly what it did before limits existed.
func bundleLimits(l *v1alpha1.UserLimits) *authz.UserLimits {
	if l == nil {
		return nil
	}
	out := &authz.UserLimits{
		MaxConnections:            int64(deref(l.MaxConnections)),
		MaxSubscriptionsPerClient: int64(deref(l.MaxSubscriptionsPerClient)),
	}
	if r := l.PublishRate; r != nil {
		out.PublishRate = &authz.PublishRate{MessagesPerSecond: int64(r.MessagesPerSecond), Burst: int64(deref(r.Burst))}
	}
	if *out == (authz.UserLimits{}) {
		return nil
	}
	return out
}

func deref(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}
