package model_test

import (
	"math"
	"os"
	"slices"
	"testing"

	"tamp/gguf"
	"tamp/internal/testdata"
	"tamp/kv"
	"tamp/model"
	"tamp/tokenizer"
)

// storyTokens loads stories260K and the first n tokens of tinystories-sample.txt.
func storyTokens(t *testing.T, n int) (*model.Model, []int32) {
	t.Helper()
	f, err := gguf.Open(testdata.Path(t, "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	m, err := model.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(testdata.Path(t, "tinystories-sample.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ids := tok.Encode(string(text[:8000]), true, false)
	if len(ids) < n {
		t.Fatalf("only %d tokens", len(ids))
	}
	return m, ids[:n]
}

// runSeq prefills prompt, then feeds next token by token, returning every
// logits row: the prompt's last row, then one per decoding step.
func runSeq(t *testing.T, m *model.Model, opts model.SessionOptions, prompt, next []int32) ([]float32, *model.Session) {
	t.Helper()
	s, err := m.NewSession(opts)
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Forward(prompt, false)
	if err != nil {
		t.Fatal(err)
	}
	rows := slices.Clone(out)
	for _, tok := range next {
		out, err := s.Forward([]int32{tok}, false)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, out...)
	}
	return rows, s
}

func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// TestKVPoliciesWithinBudgetAreExact: a policy whose budget is never reached
// must not change a single bit — recording scores and surprisal, and the
// hooks themselves, leave the arithmetic alone. full is checked the same way.
func TestKVPoliciesWithinBudgetAreExact(t *testing.T) {
	m, ids := storyTokens(t, 96)
	prompt, next := ids[:84], ids[84:]
	base, _ := runSeq(t, m, model.SessionOptions{Context: 128, Batch: 32}, prompt, next)
	for _, pol := range []string{"full", "streaming", "h2o", "snapkv", "pyramidkv", "graphkv", "chunked", "adaptive", "snapkv:decode=4,score=knorm", "streaming:rerotate=1"} {
		got, s := runSeq(t, m, model.SessionOptions{Context: 128, Batch: 32, KV: kv.Spec{Policy: pol, Budget: 128}}, prompt, next)
		if !sameBits(got, base) {
			t.Errorf("%s with an unreached budget changed the logits", pol)
		}
		if s.Cache().Len(0, 0) != len(ids) {
			t.Errorf("%s: %d entries, want %d", pol, s.Cache().Len(0, 0), len(ids))
		}
	}
}

// TestKVCompressionKeepsBudgetAndPositions runs each policy with a small
// budget: heads end at their budget (plus what decoding appended for the
// prefill-time policies), the newest token is always cached at its true
// position, and the logits stay finite and close to the full cache's.
func TestKVCompressionKeepsBudgetAndPositions(t *testing.T) {
	m, ids := storyTokens(t, 112)
	prompt, next := ids[:100], ids[100:]
	base, _ := runSeq(t, m, model.SessionOptions{Context: 128, Batch: 32}, prompt, next)
	for _, tc := range []struct {
		pol     string
		maxLen  int
		quant   kv.Quant
		table   *kv.Table
		perHead bool
	}{
		{pol: "streaming", maxLen: 32},
		{pol: "streaming:rerotate=1", maxLen: 32},
		{pol: "h2o", maxLen: 32},
		{pol: "snapkv", maxLen: 32 + 12},
		{pol: "pyramidkv", maxLen: 2*32 + 12}, // the bottom layer keeps up to twice the mean
		{pol: "graphkv", maxLen: 32 + 12},
		{pol: "chunked", maxLen: 32 + 12},
		{pol: "adaptive", maxLen: 32 + 12},
		{pol: "snapkv:decode=4", maxLen: 32 + 4},
		{pol: "h2o", maxLen: 32, quant: kv.Quant{Bits: 4, Group: 8, Residual: 8}},
		{pol: "snapkv", maxLen: 48 + 12, table: &kv.Table{Kind: kv.TableLayers, Budget: 32, Layers: []int{48, 40, 32, 24, 16}}},
	} {
		opts := model.SessionOptions{Context: 128, Batch: 32, KV: kv.Spec{Policy: tc.pol, Budget: 32, Quant: tc.quant, Table: tc.table}}
		got, s := runSeq(t, m, opts, prompt, next)
		c := s.Cache()
		if l := c.MaxLen(); l > tc.maxLen {
			t.Errorf("%s: a head holds %d entries, want at most %d", tc.pol, l, tc.maxLen)
		}
		for l := range m.Layers {
			for h := range m.KVHeads {
				pos := c.Positions(l, h)
				if last := pos[len(pos)-1]; int(last) != len(ids)-1 {
					t.Fatalf("%s: layer %d head %d: newest entry at %d, want %d", tc.pol, l, h, last, len(ids)-1)
				}
			}
		}
		var kl float64
		for r := 0; r < len(got)/m.Vocab; r++ {
			kl += klDiv(base[r*m.Vocab:(r+1)*m.Vocab], got[r*m.Vocab:(r+1)*m.Vocab])
		}
		kl /= float64(len(got) / m.Vocab)
		if !(kl > 0 && kl < 1) {
			t.Errorf("%s: mean KL to the full cache %v, want small and positive", tc.pol, kl)
		}
		if c.Bytes() >= c.FullBytes(len(ids)) {
			t.Errorf("%s: %d bytes, not below the full cache's %d", tc.pol, c.Bytes(), c.FullBytes(len(ids)))
		}
		t.Logf("%-16s KL %.4f, %d entries max, %d bytes (full %d), peak %d", tc.pol, kl, c.MaxLen(), c.Bytes(), c.FullBytes(len(ids)), c.PeakBytes())
	}
}

func klDiv(p, q []float32) float64 {
	lp, lq := logSoftmax(p), logSoftmax(q)
	var s float64
	for i := range lp {
		s += math.Exp(lp[i]) * (lp[i] - lq[i])
	}
	return s
}

func logSoftmax(x []float32) []float64 {
	m := float64(slices.Max(x))
	var s float64
	for _, v := range x {
		s += math.Exp(float64(v) - m)
	}
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v) - m - math.Log(s)
	}
	return out
}

// TestChunkedPrefillPeak: evicting after every chunk bounds the cache at the
// budget plus one chunk however long the prompt.
func TestChunkedPrefillPeak(t *testing.T) {
	m, ids := storyTokens(t, 200)
	s, err := m.NewSession(model.SessionOptions{Context: 256, Batch: 16, KV: kv.Spec{Policy: "chunked", Budget: 32}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Forward(ids, false); err != nil {
		t.Fatal(err)
	}
	c := s.Cache()
	// Each entry also carries the policy's score and fixed importance (8 bytes).
	bound := c.FullBytes(32+16) + int64((32+16)*m.Layers*m.KVHeads*8)
	if peak := c.PeakBytes(); peak > bound {
		t.Errorf("peak %d bytes over the bound %d (budget + one chunk)", peak, bound)
	}
	if c.MaxLen() != 32 {
		t.Errorf("after the prefill heads hold %d, want 32", c.MaxLen())
	}
}

// probe records the moments the forward pass calls a policy at.
type probe struct {
	calls []string
	surp  map[int]float32
}

func (p *probe) Name() string         { return "probe" }
func (p *probe) Needs() kv.Needs      { return kv.Needs{Surprisal: true} }
func (p *probe) Observe(kv.Event) int { return math.MaxInt32 }
func (p *probe) AfterChunk(_ *kv.Cache, ev kv.Event) error {
	p.note("chunk", ev)
	return nil
}
func (p *probe) AfterPrefill(_ *kv.Cache, ev kv.Event) error {
	p.calls = append(p.calls, "prefill")
	return nil
}
func (p *probe) AfterStep(_ *kv.Cache, ev kv.Event) error {
	p.note("step", ev)
	return nil
}
func (p *probe) Reset() { p.calls = append(p.calls, "reset") }
func (p *probe) note(kind string, ev kv.Event) {
	p.calls = append(p.calls, kind)
	for i, s := range ev.Surprisal {
		p.surp[ev.Start+i] = s
	}
}

var lastProbe *probe

func init() {
	kv.Register("probe-test", func(kv.Setup) (kv.Policy, error) {
		lastProbe = &probe{surp: map[int]float32{}}
		return lastProbe, nil
	})
}

// TestPolicyMoments checks when the forward pass calls a policy and the
// surprisal it hands over.
func TestPolicyMoments(t *testing.T) {
	m, ids := storyTokens(t, 40)
	s, err := m.NewSession(model.SessionOptions{Context: 64, Batch: 16, KV: kv.Spec{Policy: "probe-test"}})
	if err != nil {
		t.Fatal(err)
	}
	p := lastProbe
	if _, err := s.Forward(ids[:36], false); err != nil {
		t.Fatal(err)
	}
	for _, tok := range ids[36:39] {
		if _, err := s.Forward([]int32{tok}, false); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"chunk", "chunk", "chunk", "prefill", "step", "step", "step"}
	if !slices.Equal(p.calls, want) {
		t.Errorf("calls %v, want %v", p.calls, want)
	}
	// Surprisal equals −ln p from a plain all-logits run.
	ref, err := m.NewSession(model.SessionOptions{Context: 64})
	if err != nil {
		t.Fatal(err)
	}
	all, err := ref.Forward(ids[:39], true)
	if err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(float64(p.surp[0])) {
		t.Errorf("first token's surprisal %v, want NaN", p.surp[0])
	}
	for pos := 1; pos < 39; pos++ {
		lp := logSoftmax(all[(pos-1)*m.Vocab : pos*m.Vocab])
		want := -lp[ids[pos]]
		if got := p.surp[pos]; math.Abs(float64(got)-want) > 1e-4 {
			t.Errorf("surprisal of token %d: %v, want %v", pos, got, want)
		}
	}
	s.Reset()
	if p.calls[len(p.calls)-1] != "reset" {
		t.Error("Reset did not reach the policy")
	}
}
