package kveval

import (
	"context"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"tamp/eval"
	"tamp/kv"
	"tamp/model"
)

// countingLocker counts how often it was taken.
type countingLocker struct {
	sync.Mutex
	n int
}

func (l *countingLocker) Lock() { l.Mutex.Lock(); l.n++ }

// TestStepScorer checks the scorer's contract: with a full cache its scored
// rows are a batched prefill's up to rounding; a policy that compresses after
// the prefill changes them (it could not, were the chunk prefilled whole); the
// rows before the scored half are zero; cache sizes are recorded.
func TestStepScorer(t *testing.T) {
	m, _, ids := load(t)
	const n = 96
	chunk := ids[:n]
	v := m.Vocab
	ref, err := m.NewScorer(model.SessionOptions{Context: n})
	if err != nil {
		t.Fatal(err)
	}
	want := make([]float32, n*v)
	if err := ref.Logits(chunk, want); err != nil {
		t.Fatal(err)
	}
	run := func(spec kv.Spec) ([]float32, StepStats) {
		t.Helper()
		s, err := NewStepScorer(m, model.SessionOptions{Context: n, Batch: 16, KV: spec})
		if err != nil {
			t.Fatal(err)
		}
		var lock countingLocker
		s.Lock = &lock
		got := make([]float32, n*v)
		for i := range got {
			got[i] = float32(math.NaN()) // must all be overwritten
		}
		for range 2 {
			if err := s.Logits(chunk, got); err != nil {
				t.Fatal(err)
			}
		}
		if lock.n != 2 {
			t.Errorf("%s: lock taken %d times for 2 chunks", spec, lock.n)
		}
		if s.VocabSize() != v {
			t.Errorf("vocab %d, want %d", s.VocabSize(), v)
		}
		for i, x := range got[:(n/2-1)*v] {
			if x != 0 {
				t.Fatalf("%s: unscored row value %d is %v, want 0", spec, i, x)
			}
		}
		return got, s.Stats()
	}
	maxDiff := func(a, b []float32) float64 {
		d := 0.0
		for i := range a {
			d = max(d, math.Abs(float64(a[i]-b[i])))
		}
		return d
	}
	scored := (n/2 - 1) * v

	full, st := run(kv.Spec{})
	if d := maxDiff(full[scored:], want[scored:]); d > 1e-3 {
		t.Errorf("full cache step by step differs from the batched prefill by %g", d)
	}
	if st.Chunks != 2 || st.MeanBytes != st.FullBytes || st.PeakBytes != st.FullBytes || st.FullBytes <= 0 {
		t.Errorf("full cache stats %+v: want 2 chunks, mean = peak = full > 0", st)
	}

	snap, st := run(kv.Spec{Policy: "snapkv", Budget: 12})
	if d := maxDiff(snap[scored:], want[scored:]); d < 1e-2 {
		t.Errorf("snapkv@12 after a 48-token prefill changed the scored logits by only %g", d)
	}
	if !(st.MeanBytes < st.FullBytes) || st.PeakBytes < st.MeanBytes {
		t.Errorf("snapkv stats %+v: want mean below full and peak at least mean", st)
	}
	// The prefill's last row predicts the first scored token.
	if !slices.Equal(snap[scored:scored+v], full[scored:scored+v]) {
		t.Error("the row from the prefill depends on the policy, which has not acted yet")
	}
}

func TestStepScorerErrors(t *testing.T) {
	m, _, ids := load(t)
	s, err := NewStepScorer(m, model.SessionOptions{Context: 16})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		toks []int32
		out  int
		want string
	}{
		{ids[:1], m.Vocab, "no second half"},
		{ids[:8], 7 * m.Vocab, "logits buffer"},
		{ids[:32], 32 * m.Vocab, "exceed the context"},
	} {
		if err := s.Logits(tc.toks, make([]float32, tc.out)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d tokens: error %v, want %q", len(tc.toks), err, tc.want)
		}
	}
	if _, err := NewStepScorer(m, model.SessionOptions{Context: 16, KV: kv.Spec{Policy: "snapkv"}}); err == nil {
		t.Error("snapkv without a budget accepted")
	}
}

// ExampleStepScorer shows the scorer in eval.Perplexity: a chunk's first half
// is the prompt, compressed by SnapKV to 32 entries per head, and the second
// half is decoded from the compressed cache.
func ExampleStepScorer() {
	var m *model.Model // from model.Load
	var tokens []int32 // the tokenized text
	s, err := NewStepScorer(m, model.SessionOptions{Context: 256, KV: kv.Spec{Policy: "snapkv", Budget: 32}})
	if err != nil {
		panic(err)
	}
	res, err := eval.Perplexity(context.Background(), s, tokens, eval.Options{Ctx: 256})
	if err != nil {
		panic(err)
	}
	_ = res.PPL
}
