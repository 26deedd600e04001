package authz

import (
	"encoding/json"
	"sync"
	"testing"
)

// benchBundleJSON is benchBundle encoded as the operator would send it.
var benchBundleJSON = sync.OnceValue(func() []byte {
	data, err := json.Marshal(benchBundle())
	if err != nil {
		panic(err)
	}
	return data
})

// BenchmarkParse decodes the 10,000-user, 50,000-rule bundle with Parse,
// and with encoding/json (what Parse used to be) for comparison.
func BenchmarkParse(b *testing.B) {
	data := benchBundleJSON()
	b.Logf("bundle: %.1f MB of JSON", float64(len(data))/1e6)
	for _, p := range []struct {
		name  string
		parse func([]byte) (*Bundle, error)
	}{{"Parse", Parse}, {"stdlib", parseStdlib}} {
		b.Run(p.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.parse(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
