package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"tamp/gguf"
	"tamp/kv"
	"tamp/tensor"
)

// synthShape is the geometry of a random llama model for speed measurements.
type synthShape struct {
	dim, layers, heads, kvHeads, ffn, vocab int
}

// tinyLlama is the shape of TinyLlama-1.1B (and of tamp synth's 1.1B preset).
var tinyLlama = synthShape{dim: 2048, layers: 22, heads: 32, kvHeads: 4, ffn: 5632, vocab: 32000}

// randomModel builds a llama model with random Q4_0 matrices: attention and
// cache costs depend only on the shape, not on what the weights say.
func randomModel(tb testing.TB, s synthShape, ctx int) *Model {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	f := gguf.New()
	f.Set("general.architecture", gguf.String("llama"))
	set := func(k string, v int) { f.Set("llama."+k, gguf.Uint32(uint32(v))) }
	set("embedding_length", s.dim)
	set("block_count", s.layers)
	set("feed_forward_length", s.ffn)
	set("attention.head_count", s.heads)
	set("attention.head_count_kv", s.kvHeads)
	set("context_length", ctx)
	add := func(name string, typ tensor.Type, cols, rows int) {
		info, _ := typ.Info()
		n := cols / info.BlockSize * info.BlockBytes * rows
		data := make([]byte, n)
		if typ == tensor.F32 {
			for i := 0; i < len(data); i += 4 {
				putF32(data[i:], 1)
			}
		} else {
			for i := range data {
				data[i] = byte(rng.Uint32())
			}
			// Q4_0 blocks: an F16 scale, then 16 bytes of nibbles.
			for b := 0; b < len(data); b += 18 {
				h := tensor.F32ToF16(0.002 + 0.002*rng.Float32())
				data[b], data[b+1] = byte(h), byte(h>>8)
			}
		}
		dims := []uint64{uint64(cols), uint64(rows)}
		if rows == 1 {
			dims = dims[:1]
		}
		if err := f.AddTensor(name, typ, dims, data); err != nil {
			tb.Fatal(err)
		}
	}
	hd := s.dim / s.heads
	add("token_embd.weight", tensor.Q4_0, s.dim, s.vocab)
	add("output_norm.weight", tensor.F32, s.dim, 1)
	add("output.weight", tensor.Q4_0, s.dim, s.vocab)
	for l := range s.layers {
		p := fmt.Sprintf("blk.%d.", l)
		add(p+"attn_norm.weight", tensor.F32, s.dim, 1)
		add(p+"ffn_norm.weight", tensor.F32, s.dim, 1)
		add(p+"attn_q.weight", tensor.Q4_0, s.dim, s.heads*hd)
		add(p+"attn_k.weight", tensor.Q4_0, s.dim, s.kvHeads*hd)
		add(p+"attn_v.weight", tensor.Q4_0, s.dim, s.kvHeads*hd)
		add(p+"attn_output.weight", tensor.Q4_0, s.heads*hd, s.dim)
		add(p+"ffn_gate.weight", tensor.Q4_0, s.dim, s.ffn)
		add(p+"ffn_up.weight", tensor.Q4_0, s.dim, s.ffn)
		add(p+"ffn_down.weight", tensor.Q4_0, s.ffn, s.dim)
	}
	m, err := Load(f)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func putF32(b []byte, v float32) {
	u := math.Float32bits(v)
	b[0], b[1], b[2], b[3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
}

// fillCache stands in for a prefill of ctx tokens that left n entries per
// head (n = ctx for a full cache): random keys and values at positions spread
// over [0, ctx), always including the first and the last. The session is left
// at position ctx, ready to decode.
func fillCache(tb testing.TB, s *Session, n, ctx int) {
	tb.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	c := s.m.Config
	w := c.KVHeads * c.HeadDim
	k, v := make([]float32, w), make([]float32, w)
	for i := range n {
		pos := i
		if n < ctx {
			pos = int(int64(i) * int64(ctx-1) / int64(n-1))
		}
		for l := range c.Layers {
			for j := range k {
				k[j], v[j] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
			}
			if err := s.cache.Append(l, int32(pos), k, v); err != nil {
				tb.Fatal(err)
			}
		}
	}
	s.pos = ctx
}

// BenchmarkDecodeKV measures generation speed at long context with a full
// cache and with a 512-entry budget (snapkv after its prefill compression,
// and h2o, which records attention and evicts at every step). The cache is
// filled with random entries instead of running an 8k-token prefill, which
// pure Go would take many minutes for: a decoding step's cost depends only
// on the model and on how many entries each head holds.
//
// The model is TAMP_BENCH_MODEL (a GGUF file, e.g. from tamp synth --shape
// tinyllama-1.1b), else a random model of TinyLlama-1.1B's width: 2 layers,
// or all 22 with TAMP_BENCH_FULL=1. Each iteration is one decoding step; the
// cache grows by one entry per step. Besides wall time per step it reports
// the process's CPU time per step (cpu-ms/tok), which stays meaningful on a
// machine busy with other work, and the cache's size.
func BenchmarkDecodeKV(b *testing.B) {
	var m *Model
	if path := os.Getenv("TAMP_BENCH_MODEL"); path != "" {
		f, err := gguf.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if m, err = Load(f); err != nil {
			b.Fatal(err)
		}
	} else {
		shape := tinyLlama
		if os.Getenv("TAMP_BENCH_FULL") == "" {
			shape.layers = 2
		}
		m = randomModel(b, shape, 8192+1024)
	}
	for _, ctx := range []int{2048, 8192} {
		for _, pol := range []struct {
			name string
			spec kv.Spec
			n    int
		}{
			{"full", kv.Spec{}, ctx},
			{"snapkv-512", kv.Spec{Policy: "snapkv", Budget: 512}, 512},
			{"h2o-512", kv.Spec{Policy: "h2o", Budget: 512}, 512},
		} {
			b.Run(fmt.Sprintf("ctx=%d/%s", ctx, pol.name), func(b *testing.B) {
				s, err := m.NewSession(SessionOptions{Context: ctx + 1024, KV: pol.spec})
				if err != nil {
					b.Fatal(err)
				}
				fillCache(b, s, pol.n, ctx)
				tok := []int32{1}
				cpu0 := cpuTime()
				for b.Loop() {
					if _, err := s.Forward(tok, false); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(cpuTime()-cpu0)/1e6/float64(b.N), "cpu-ms/tok")
				b.ReportMetric(float64(s.cache.Bytes())/(1<<20), "KV-MiB")
				b.ReportMetric(float64(s.cache.MaxLen()), "entries")
			})
		}
	}
}
