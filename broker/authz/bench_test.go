package authz

import (
	"fmt"
	"sync"
	"testing"
)

const (
	benchUsers  = 10_000
	benchGroups = 100
)

// benchBundle is a realistic large tenant: 10,000 users and 50,000 rules.
//
//   - 4 rules per user (40,000): own device tree with %u, command inbox,
//     a deny on the device's config sub-tree, and a literal telemetry path;
//   - 99 rules per fleet group (9,900), a tenth of them denies, some with
//     '#' and '+';
//   - 100 client-id rules with glob patterns and %c.
var benchBundle = sync.OnceValue(func() *Bundle {
	hash, err := HashPassword([]byte("pw"), 1)
	if err != nil {
		panic(err)
	}
	b := &Bundle{APIVersion: APIVersion, Revision: 1}
	for i := range benchUsers {
		name := fmt.Sprintf("user-%05d", i)
		fleet := fmt.Sprintf("fleet-%03d", i%benchGroups)
		b.Users = append(b.Users, User{
			Username: name, PasswordHash: hash,
			Groups: []string{fleet, fmt.Sprintf("region-%d", i%10), "all"},
		})
		me := Subjects{Users: []string{name}}
		b.Rules = append(b.Rules,
			Rule{Subjects: me, Topics: []string{"tenants/acme/devices/%u/#"}, Actions: []Action{ActionPublish, ActionSubscribe}, Effect: EffectAllow},
			Rule{Subjects: me, Topics: []string{"tenants/acme/commands/%u/+"}, Actions: []Action{ActionSubscribe}, Effect: EffectAllow},
			Rule{Subjects: me, Topics: []string{"tenants/acme/devices/%u/config/#"}, Actions: []Action{ActionPublish}, Effect: EffectDeny},
			Rule{Subjects: me, Topics: []string{fmt.Sprintf("tenants/acme/fleet/%s/%s/+/telemetry", fleet, name)}, Actions: []Action{ActionPublish}, Effect: EffectAllow},
		)
	}
	for g := range benchGroups {
		fleet := fmt.Sprintf("fleet-%03d", g)
		for k := range 99 {
			r := Rule{Subjects: Subjects{Groups: []string{fleet}}, Actions: []Action{ActionSubscribe}, Effect: EffectAllow}
			switch {
			case k%10 == 9:
				r.Effect = EffectDeny
				r.Topics = []string{fmt.Sprintf("tenants/acme/fleet/%s/%d/secret/#", fleet, k)}
			case k%3 == 0:
				r.Topics = []string{fmt.Sprintf("tenants/acme/fleet/%s/%d/#", fleet, k)}
			default:
				r.Topics = []string{fmt.Sprintf("tenants/acme/fleet/%s/%d/+/status", fleet, k)}
				r.Actions = append(r.Actions, ActionPublish)
			}
			b.Rules = append(b.Rules, r)
		}
	}
	for c := range 100 {
		b.Rules = append(b.Rules, Rule{
			Subjects: Subjects{ClientIDs: []string{fmt.Sprintf("gw-%02d-*", c)}},
			Topics:   []string{"gateways/%c/#"}, Actions: []Action{ActionPublish, ActionSubscribe}, Effect: EffectAllow,
		})
	}
	return b
})

func TestBenchBundleSize(t *testing.T) {
	if testing.Short() {
		t.Skip("large bundle")
	}
	b := benchBundle()
	if len(b.Users) != 10_000 || len(b.Rules) != 50_000 {
		t.Fatalf("got %d users, %d rules; want 10000, 50000", len(b.Users), len(b.Rules))
	}
	p := mustCompile(t, b)
	id, r := p.Authenticate("user-00042", true, []byte("pw"), "gw-07-x")
	if r != AuthOK {
		t.Fatal(r)
	}
	for _, c := range []check{
		{pub, "tenants/acme/devices/user-00042/temp", true},
		{pub, "tenants/acme/devices/user-00042/config/x", false},
		{pub, "tenants/acme/devices/user-00043/temp", false},
		{pub, "tenants/acme/fleet/fleet-042/user-00042/s1/telemetry", true},
		{read, "tenants/acme/fleet/fleet-042/3/a/b", true},
		{read, "tenants/acme/fleet/fleet-042/9/secret/x", false},
		{read, "tenants/acme/fleet/fleet-043/3/a/b", false},
		{sub, "tenants/acme/commands/user-00042/+", true},
		{sub, "tenants/acme/fleet/fleet-042/1/+/status", true},
		{pub, "gateways/gw-07-x/up", true},
	} {
		if got := run(id, c); got != c.want {
			t.Errorf("%s %q: got %v, want %v", c.op, c.topic, got, c.want)
		}
	}
}

// BenchmarkCheck runs checks of 1,000 connected identities, cycling through
// them, against the 50,000-rule policy.
func BenchmarkCheck(b *testing.B) {
	p, err := Compile(benchBundle())
	if err != nil {
		b.Fatal(err)
	}
	type conn struct {
		id                          *Identity
		own, config, fleet, gateway []byte
		read, readDenied            []byte
		inbox, fleetFilter          string
	}
	conns := make([]conn, 1000)
	for i := range conns {
		u := i * 7 % benchUsers
		name := fmt.Sprintf("user-%05d", u)
		fleet := fmt.Sprintf("fleet-%03d", u%benchGroups)
		cid := fmt.Sprintf("gw-%02d-%d", i%100, i)
		id, r := p.Authenticate(name, true, []byte("pw"), cid)
		if r != AuthOK {
			b.Fatal(r)
		}
		conns[i] = conn{
			id:          id,
			own:         []byte("tenants/acme/devices/" + name + "/sensors/temp"),
			config:      []byte("tenants/acme/devices/" + name + "/config/wifi"),
			fleet:       []byte("tenants/acme/fleet/" + fleet + "/" + name + "/s1/telemetry"),
			gateway:     []byte("gateways/" + cid + "/up"),
			read:        []byte("tenants/acme/fleet/" + fleet + "/12/x/y"),
			readDenied:  []byte("tenants/acme/fleet/" + fleet + "/19/secret/z"),
			inbox:       "tenants/acme/commands/" + name + "/+",
			fleetFilter: "tenants/acme/fleet/" + fleet + "/14/+/status",
		}
	}
	b.Run("publish", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			c := &conns[i%len(conns)]
			if !c.id.CanPublish(c.own) || c.id.CanPublish(c.config) {
				b.Fatal("wrong decision")
			}
			i++
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N), "ns/check")
	})
	b.Run("publish-literal", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			c := &conns[i%len(conns)]
			if !c.id.CanPublish(c.fleet) || !c.id.CanPublish(c.gateway) {
				b.Fatal("wrong decision")
			}
			i++
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N), "ns/check")
	})
	b.Run("read", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			c := &conns[i%len(conns)]
			if !c.id.CanRead(c.read) || c.id.CanRead(c.readDenied) {
				b.Fatal("wrong decision")
			}
			i++
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N), "ns/check")
	})
	b.Run("subscribe", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			c := &conns[i%len(conns)]
			if !c.id.CanSubscribe(c.inbox) || !c.id.CanSubscribe(c.fleetFilter) {
				b.Fatal("wrong decision")
			}
			i++
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N), "ns/check")
	})
}

func BenchmarkCompile(b *testing.B) {
	bundle := benchBundle()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(bundle); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBundleHash(b *testing.B) {
	bundle := benchBundle()
	b.ReportAllocs()
	for b.Loop() {
		bundle.Hash()
	}
}

func BenchmarkAuthenticate(b *testing.B) {
	hash, err := HashPassword([]byte("pw"), DefaultIterations)
	if err != nil {
		b.Fatal(err)
	}
	bundle := &Bundle{APIVersion: APIVersion, Users: []User{{Username: "u", PasswordHash: hash, Groups: []string{"g"}}}}
	p, err := Compile(bundle)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, r := p.Authenticate("u", true, []byte("pw"), "c"); r != AuthOK {
				b.Fatal(r)
			}
		}
	})
	b.Run("uncached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p.cache.mu.Lock()
			clear(p.cache.ok)
			p.cache.mu.Unlock()
			if _, r := p.Authenticate("u", true, []byte("pw"), "c"); r != AuthOK {
				b.Fatal(r)
			}
		}
	})
	b.Run("unknown-user", func(b *testing.B) {
		for b.Loop() {
			if _, r := p.Authenticate("nobody", true, []byte("pw"), "c"); r != AuthBadCredentials {
				b.Fatal(r)
			}
		}
	})
}

func BenchmarkHashPassword(b *testing.B) {
	for b.Loop() {
		if _, err := HashPassword([]byte("correct horse battery staple"), DefaultIterations); err != nil {
			b.Fatal(err)
		}
	}
}
