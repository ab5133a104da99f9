package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"tamp/engine"
	"tamp/internal/testdata"
	"tamp/kv"
	"tamp/model"
	"tamp/sample"
)

func openStories(t testing.TB) *engine.Engine {
	t.Helper()
	e, err := engine.Open(testdata.Path(t, "stories260K.gguf"), engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// generate runs Engine.Generate and returns its text and stats.
func generate(t *testing.T, e *engine.Engine, prompt string, o engine.GenerateOptions) (string, engine.Stats) {
	t.Helper()
	var sb strings.Builder
	o.OnText = func(s string) error { sb.WriteString(s); return nil }
	st, err := e.Generate(context.Background(), prompt, o)
	if err != nil {
		t.Fatal(err)
	}
	return sb.String(), st
}

func run(t *testing.T, s *engine.Slot, tokens []int32, o engine.RunOptions) (string, engine.Stats) {
	t.Helper()
	var sb strings.Builder
	o.OnText = func(s string) error { sb.WriteString(s); return nil }
	st, err := s.Run(context.Background(), tokens, o)
	if err != nil {
		t.Fatal(err)
	}
	return sb.String(), st
}

// TestSlotMatchesGenerate checks that a slot, reused across runs, generates
// what Engine.Generate does for the same prompt and sampling: prompts longer
// than one prefill chunk, greedy and seeded sampling, both cache types.
func TestSlotMatchesGenerate(t *testing.T) {
	e := openStories(t)
	slot, err := e.NewSlot(512)
	if err != nil {
		t.Fatal(err)
	}
	greedy := sample.DefaultParams()
	greedy.Temperature = 0
	seeded := sample.DefaultParams()
	seeded.Seed = 42
	long := strings.Repeat("The cat sat on the mat. ", 20) // > 64 tokens: several prefill chunks
	tests := []struct {
		name    string
		prompt  string
		params  sample.Params
		storage kv.Storage
		max     int
	}{
		{"greedy", "Once upon a time", greedy, kv.F16, 64},
		{"seeded", "Once upon a time", seeded, kv.F16, 64},
		{"long prompt", long, greedy, kv.F16, 32},
		{"f32 cache", "Zoo", greedy, kv.F32, 48},
		{"again greedy", "Once upon a time", greedy, kv.F16, 64},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want, wst := generate(t, e, tc.prompt, engine.GenerateOptions{MaxTokens: tc.max, Context: 512, KVStorage: tc.storage, Sampling: tc.params})
			got, gst := run(t, slot, e.Encode(tc.prompt), engine.RunOptions{MaxTokens: tc.max, KVStorage: tc.storage, Sampling: tc.params})
			if got != want {
				t.Errorf("slot generated\n%q\nGenerate gave\n%q", got, want)
			}
			if gst.PromptTokens != wst.PromptTokens || gst.GeneratedTokens != wst.GeneratedTokens || gst.FinishReason != wst.FinishReason {
				t.Errorf("stats %+v, want %+v", gst, wst)
			}
			if slot.KVBytes() != 0 {
				t.Errorf("KVBytes = %d after the run, want 0", slot.KVBytes())
			}
		})
	}
}

func TestSlotStop(t *testing.T) {
	e := openStories(t)
	slot, err := e.NewSlot(256)
	if err != nil {
		t.Fatal(err)
	}
	p := sample.DefaultParams()
	p.Temperature = 0
	n := 0
	st, err := slot.Run(context.Background(), e.Encode("Once upon a time"), engine.RunOptions{MaxTokens: 100, Sampling: p,
		OnText: func(string) error {
			n++
			if n == 5 {
				return engine.ErrStop
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if st.FinishReason != "stop" || st.GeneratedTokens != 5 {
		t.Errorf("FinishReason %q after %d tokens, want stop after 5", st.FinishReason, st.GeneratedTokens)
	}
	boom := errors.New("boom")
	if _, err := slot.Run(context.Background(), e.Encode("Once"), engine.RunOptions{MaxTokens: 10, Sampling: p,
		OnText: func(string) error { return boom }}); !errors.Is(err, boom) {
		t.Errorf("err = %v, want the callback's error", err)
	}
}

func TestSlotCancel(t *testing.T) {
	e := openStories(t)
	slot, err := e.NewSlot(256)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := sample.DefaultParams()
	n := 0
	st, err := slot.Run(ctx, e.Encode("Once upon a time"), engine.RunOptions{Sampling: p, OnText: func(string) error {
		if n++; n == 3 {
			cancel()
		}
		return nil
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if st.GeneratedTokens > 4 {
		t.Errorf("%d tokens generated after cancelling at the third", st.GeneratedTokens)
	}
	if _, err := slot.Run(ctx, e.Encode("Once"), engine.RunOptions{Sampling: p}); !errors.Is(err, context.Canceled) {
		t.Errorf("a run on a cancelled context: err = %v", err)
	}
}

func TestSlotErrors(t *testing.T) {
	e := openStories(t)
	slot, err := e.NewSlot(16)
	if err != nil {
		t.Fatal(err)
	}
	p := sample.DefaultParams()
	if _, err := slot.Run(context.Background(), e.Encode(strings.Repeat("long prompt ", 20)), engine.RunOptions{Sampling: p}); !errors.Is(err, engine.ErrPromptTooLong) {
		t.Errorf("err = %v, want ErrPromptTooLong", err)
	}
	bad := p
	bad.TopP = 2
	if _, err := slot.Run(context.Background(), e.Encode("x"), engine.RunOptions{Sampling: bad}); !errors.Is(err, sample.ErrInvalidParams) {
		t.Errorf("err = %v, want ErrInvalidParams", err)
	}
	if _, err := slot.Run(context.Background(), []int32{1, 9999}, engine.RunOptions{Sampling: p}); err == nil {
		t.Error("a token outside the vocabulary was accepted")
	}
	cfgErr := errors.New("no such policy")
	if _, err := slot.Run(context.Background(), e.Encode("x"), engine.RunOptions{Sampling: p,
		Configure: func(*model.SessionOptions) error { return cfgErr }}); !errors.Is(err, cfgErr) {
		t.Errorf("err = %v, want the Configure error", err)
	}
	// A context of 16 tokens ends generation with "length" once it is full;
	// the last token sampled is returned without being evaluated.
	p.Temperature = 0
	_, st := run(t, slot, e.Encode("Once upon a time"), engine.RunOptions{Sampling: p})
	if st.FinishReason != "length" || st.PromptTokens+st.GeneratedTokens != 16+1 {
		t.Errorf("stats %+v: want the context filled to 16 tokens and finish reason length", st)
	}
}

// TestSlotsConcurrent runs slots of one engine at once (go test -race checks
// that they share only read-only state) and compares with serial runs.
func TestSlotsConcurrent(t *testing.T) {
	e := openStories(t)
	p := sample.DefaultParams()
	prompts := []string{"Once upon a time", "Zoo", "The dog", "Lily and Tom"}
	want := make([]string, len(prompts))
	for i, pr := range prompts {
		p.Seed = uint64(i)
		want[i], _ = generate(t, e, pr, engine.GenerateOptions{MaxTokens: 40, Context: 128, Sampling: p})
	}
	var wg sync.WaitGroup
	got := make([]string, len(prompts))
	errs := make([]error, len(prompts))
	for i, pr := range prompts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slot, err := e.NewSlot(128)
			if err != nil {
				errs[i] = err
				return
			}
			q := p
			q.Seed = uint64(i)
			var sb strings.Builder
			_, errs[i] = slot.Run(context.Background(), e.Encode(pr), engine.RunOptions{MaxTokens: 40, Sampling: q,
				OnText: func(s string) error { sb.WriteString(s); return nil }})
			got[i] = sb.String()
		}()
	}
	wg.Wait()
	for i := range prompts {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if got[i] != want[i] {
			t.Errorf("prompt %q: concurrent slot gave %q, serial %q", prompts[i], got[i], want[i])
		}
	}
}

func ExampleSlot_Run() {
	e, err := engine.Open("../../shared/testdata/stories260K.gguf", engine.Options{})
	if err != nil {
		panic(err)
	}
	defer e.Close()
	slot, err := e.NewSlot(128)
	if err != nil {
		panic(err)
	}
	p := sample.DefaultParams()
	p.Temperature = 0 // greedy
	var sb strings.Builder
	st, err := slot.Run(context.Background(), e.Encode("Once upon a time"), engine.RunOptions{
		MaxTokens: 8,
		Sampling:  p,
		OnText:    func(s string) error { sb.WriteString(s); return nil },
	})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%q %s\n", sb.String(), st.FinishReason)
	// Output: ", there was a little girl" length
}
