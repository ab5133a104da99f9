package bench_test

import (
	"testing"

	"tamp/model"
	"tamp/synth"
)

// BenchmarkForward times the forward pass of a stories15M-shaped model
// synthesized into a temporary directory, per weight type: Decode is one
// token appended to a short context (generation), Prefill64 a 64-token
// batch from an empty cache (prompt processing). Metrics are tokens per
// second; with -benchtime the decode context wraps around every 200 tokens.
func BenchmarkForward(b *testing.B) {
	s, err := synth.LookupShape("stories15m")
	if err != nil {
		b.Fatal(err)
	}
	for _, typ := range []string{"F16", "Q8_0", "Q4_0", "Q4_K_M"} {
		b.Run(typ, func(b *testing.B) {
			_, m, _, _ := synthModel(b, b.TempDir(), s, typ)
			tokens := make([]int32, 256)
			for i := range tokens {
				tokens[i] = int32(i*7919) % int32(m.Vocab)
			}
			b.Run("Decode", func(b *testing.B) {
				sess, err := m.NewSession(model.SessionOptions{Context: 256})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := sess.Forward(tokens[:16], false); err != nil {
					b.Fatal(err)
				}
				i := 0
				for b.Loop() {
					if sess.Pos() == 216 {
						sess.Reset()
						if _, err := sess.Forward(tokens[:16], false); err != nil {
							b.Fatal(err)
						}
					}
					if _, err := sess.Forward(tokens[16+i%200:17+i%200], false); err != nil {
						b.Fatal(err)
					}
					i++
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tok/s")
			})
			b.Run("Prefill64", func(b *testing.B) {
				sess, err := m.NewSession(model.SessionOptions{Context: 64, Batch: 64})
				if err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					sess.Reset()
					if _, err := sess.Forward(tokens[:64], false); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(64*float64(b.N)/b.Elapsed().Seconds(), "tok/s")
			})
		})
	}
}
