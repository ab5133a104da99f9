package synth

import (
	"context"
	"io"
	"testing"
)

// BenchmarkWrite measures synthesis speed per type, in weights per second,
// writing to io.Discard.
func BenchmarkWrite(b *testing.B) {
	s, err := LookupShape("stories15m")
	if err != nil {
		b.Fatal(err)
	}
	s.Vocab = 4096 // the layers dominate, as in big models
	for _, typ := range []string{"F16", "Q8_0", "Q4_0", "Q4_K_M"} {
		b.Run(typ, func(b *testing.B) {
			opts := Options{Shape: s, Type: typ, Seed: 1}
			for b.Loop() {
				if _, err := Write(context.Background(), io.Discard, opts); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(s.Params())*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mweights/s")
		})
	}
}
