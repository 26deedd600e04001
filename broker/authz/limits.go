package authz

// Per-user limits: the bundle's users[i].limits, their validation and
// decoding. A user without limits (the field absent or null, as in every
// bundle written before limits existed) is bound by the broker-wide limits
// only; so is a limit left at 0.

// maxRate bounds messagesPerSecond and burst: far above what one broker
// takes, low enough that the broker's token arithmetic stays exact.
const maxRate = 1_000_000_000

// UserLimits are what one user may use of a broker, enforced by the broker
// across all of the user's connections.
type UserLimits struct {
	// MaxConnections is how many connections the user may have at once
	// (0: only the broker-wide maxConnections applies).
	MaxConnections int64 `json:"maxConnections,omitempty"`
	// MaxSubscriptionsPerClient replaces the broker-wide limit of the same
	// name for the user's sessions (0: the broker-wide one applies).
	MaxSubscriptionsPerClient int64 `json:"maxSubscriptionsPerClient,omitempty"`
	// PublishRate is a token bucket shared by the user's connections (nil:
	// no rate limit).
	PublishRate *PublishRate `json:"publishRate,omitempty"`
}

// PublishRate is a token bucket: MessagesPerSecond tokens a second, at most
// Burst saved up; each PUBLISH takes one.
type PublishRate struct {
	// MessagesPerSecond is the sustained rate; at least 1.
	MessagesPerSecond int64 `json:"messagesPerSecond"`
	// Burst is how many messages may go at once after a quiet spell (0:
	// MessagesPerSecond).
	Burst int64 `json:"burst,omitempty"`
}

// EffectiveBurst is Burst, or MessagesPerSecond when Burst is 0.
func (r *PublishRate) EffectiveBurst() int64 {
	if r.Burst == 0 {
		return r.MessagesPerSecond
	}
	return r.Burst
}

// Limits are the limits of the identity's user; nil for anonymous clients
// and users without limits.
func (id *Identity) Limits() *UserLimits { return id.limits }

// validateLimits checks users[i].limits.
func validateLimits(v *validator, i int, u *User) {
	l := u.Limits
	if l == nil {
		return
	}
	if l.MaxConnections < 0 {
		v.addf("users[%d] %q: limits.maxConnections %d: must not be negative", i, u.Username, l.MaxConnections)
	}
	if l.MaxSubscriptionsPerClient < 0 {
		v.addf("users[%d] %q: limits.maxSubscriptionsPerClient %d: must not be negative", i, u.Username, l.MaxSubscriptionsPerClient)
	}
	if r := l.PublishRate; r != nil {
		if r.MessagesPerSecond < 1 || r.MessagesPerSecond > maxRate {
			v.addf("users[%d] %q: limits.publishRate.messagesPerSecond %d: must be between 1 and %d", i, u.Username, r.MessagesPerSecond, maxRate)
		}
		if r.Burst < 0 || r.Burst > maxRate {
			v.addf("users[%d] %q: limits.publishRate.burst %d: must be between 0 and %d", i, u.Username, r.Burst, maxRate)
		}
	}
}

// limits extends a user's canonical encoding (Bundle.Hash) with its
// limits. A user without limits encodes as before limits existed, so the
// hash of an older bundle does not change.
func (e *canonEncoder) limits(l *UserLimits) {
	if l == nil {
		return
	}
	e.uint(uint64(l.MaxConnections))
	e.uint(uint64(l.MaxSubscriptionsPerClient))
	if r := l.PublishRate; r != nil {
		e.bool(true)
		e.uint(uint64(r.MessagesPerSecond))
		e.uint(uint64(r.Burst))
	} else {
		e.bool(false)
	}
}

// Decoding (parse.go holds the field names).

var (
	limitsFields      = map[string]field{"maxConnections": fMaxConnections, "maxSubscriptionsPerClient": fMaxSubscriptionsPerClient, "publishRate": fPublishRate}
	publishRateFields = map[string]field{"messagesPerSecond": fMessagesPerSecond, "burst": fBurst}
)

// userLimits decodes a limits object; null is nil, as for encoding/json.
func (d *decoder) userLimits() (*UserLimits, error) {
	return optionalObject(d, "a limits object", limitsFields, func(l *UserLimits, f field) (err error) {
		switch f {
		case fMaxConnections:
			l.MaxConnections, err = d.int64()
		case fMaxSubscriptionsPerClient:
			l.MaxSubscriptionsPerClient, err = d.int64()
		case fPublishRate:
			l.PublishRate, err = optionalObject(d, "a publishRate object", publishRateFields, d.publishRate)
		}
		return err
	})
}

func (d *decoder) publishRate(r *PublishRate, f field) (err error) {
	switch f {
	case fMessagesPerSecond:
		r.MessagesPerSecond, err = d.int64()
	case fBurst:
		r.Burst, err = d.int64()
	}
	return err
}

// optionalObject decodes an object of one kind into a new T, or nil for
// null (a pointer field, as encoding/json leaves it).
func optionalObject[T any](d *decoder, want string, known map[string]field, value func(*T, field) error) (*T, error) {
	null, err := d.objectStart(want)
	if err != nil || null {
		return nil, err
	}
	v := new(T)
	if err := d.members(known, func(f field) error { return value(v, f) }); err != nil {
		return nil, err
	}
	return v, nil
}

// cloneLimits copies l, so a Policy does not keep the bundle (Compile's
// promise) and nobody can change a compiled policy's limits.
func cloneLimits(l *UserLimits) *UserLimits {
	if l == nil {
		return nil
	}
	c := *l
	if l.PublishRate != nil {
		r := *l.PublishRate
		c.PublishRate = &r
	}
	return &c
}
