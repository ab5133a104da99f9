package model_test

import (
	"strings"
	"testing"

	"tamp/gguf"
	"tamp/internal/testdata"
	"tamp/kv"
	"tamp/model"
	"tamp/tensor"
)

// variant copies stories260K.gguf into memory, letting edit change metadata
// and drop or replace tensors.
func variant(t *testing.T, edit func(f *gguf.File)) *gguf.File {
	t.Helper()
	src, err := gguf.Open(testdata.Path(t, "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	f := gguf.New()
	for _, kv := range src.KV {
		f.Set(kv.Key, kv.Value)
	}
	for _, tn := range src.Tensors {
		if err := f.AddTensor(tn.Name, tn.Type, tn.Dims, tn.Data); err != nil {
			t.Fatal(err)
		}
	}
	edit(f)
	return f
}

func dropTensor(f *gguf.File, name string) {
	var kept []*gguf.Tensor
	for _, t := range f.Tensors {
		if t.Name != name {
			kept = append(kept, t)
		}
	}
	f.Tensors = kept
}

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name string
		edit func(f *gguf.File)
		want string
	}{
		{"unknown architecture", func(f *gguf.File) { f.Set("general.architecture", gguf.String("gpt2")) }, `architecture "gpt2" is not supported; supported: llama, qwen2`},
		{"no architecture", func(f *gguf.File) { f.Delete("general.architecture") }, "no general.architecture"},
		{"missing tensor", func(f *gguf.File) { dropTensor(f, "blk.3.attn_k.weight") }, "blk.3.attn_k.weight is missing"},
		{"missing hyperparameter", func(f *gguf.File) { f.Delete("llama.block_count") }, "llama.block_count is missing"},
		{"wrong type of hyperparameter", func(f *gguf.File) { f.Set("llama.block_count", gguf.String("five")) }, "llama.block_count is not a non-negative integer"},
		{"heads do not divide width", func(f *gguf.File) { f.Set("llama.attention.head_count", gguf.Uint32(7)) }, "not a multiple of the head count 7"},
		{"kv heads do not divide heads", func(f *gguf.File) { f.Set("llama.attention.head_count_kv", gguf.Uint32(3)) }, "not a multiple of the KV head count 3"},
		{"zero layers", func(f *gguf.File) { f.Set("llama.block_count", gguf.Uint32(0)) }, "must be positive"},
		{"more layers than tensors", func(f *gguf.File) { f.Set("llama.block_count", gguf.Uint32(6)) }, "blk.5.attn_norm.weight is missing"},
		{"shape mismatch", func(f *gguf.File) { f.Set("llama.feed_forward_length", gguf.Uint32(128)) }, "blk.0.ffn_gate.weight has shape [64 172], want [64 128]"},
		{"experts declared but absent", func(f *gguf.File) {
			f.Set("llama.expert_count", gguf.Uint32(4))
			f.Set("llama.expert_used_count", gguf.Uint32(2))
		}, "lacks expert tensors"},
		{"experts used out of range", func(f *gguf.File) {
			f.Set("llama.expert_count", gguf.Uint32(4))
			f.Set("llama.expert_used_count", gguf.Uint32(5))
		}, "expert_used_count 5 must be in [1, expert_count 4]"},
		{"unsupported rope scaling", func(f *gguf.File) { f.Set("llama.rope.scaling.type", gguf.String("yarn")) }, `rope scaling type "yarn" is not supported`},
		{"qwen2 without biases", func(f *gguf.File) {
			for _, kv := range f.KV {
				if strings.HasPrefix(kv.Key, "llama.") {
					f.Set("qwen2."+strings.TrimPrefix(kv.Key, "llama."), kv.Value)
				}
			}
			f.Set("general.architecture", gguf.String("qwen2"))
		}, "lacks the attn_q/k/v biases qwen2 requires"},
		{"rope wider than head", func(f *gguf.File) { f.Set("llama.rope.dimension_count", gguf.Uint32(16)) }, "rope dimension 16 must be even and at most the head size 8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := model.Load(variant(t, tc.edit))
			if err == nil {
				t.Fatalf("loaded; want error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestUnsupportedTensorType(t *testing.T) {
	f := variant(t, func(f *gguf.File) {
		tn, _ := f.Tensor("blk.0.attn_q.weight")
		// IQ2_XXS: a real ggml type tamp does not compute with; 64 columns do not
		// even fill its 256-wide block, so either check may fire first.
		tn.Type = tensor.IQ2_XXS
	})
	_, err := model.Load(f)
	if err == nil || !strings.Contains(err.Error(), "blk.0.attn_q.weight") {
		t.Fatalf("err = %v, want an error naming blk.0.attn_q.weight", err)
	}
}

func TestForwardErrors(t *testing.T) {
	f := variant(t, func(*gguf.File) {})
	m, err := model.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.NewSession(model.SessionOptions{Context: 8})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Forward([]int32{1, 2, 3, 4, 5, 6, 7, 8, 9}, false); err == nil || !strings.Contains(err.Error(), "exceed the context of 8 tokens") {
		t.Errorf("overlong input: err = %v", err)
	}
	if _, err := s.Forward([]int32{1, 512}, false); err == nil || !strings.Contains(err.Error(), "token 512 at index 1 is outside the vocabulary [0,512)") {
		t.Errorf("bad token: err = %v", err)
	}
	if _, err := s.Forward([]int32{-1}, false); err == nil {
		t.Error("negative token accepted")
	}
	if _, err := s.Forward(nil, false); err == nil {
		t.Error("empty input accepted")
	}
	// Failed calls leave the sequence usable.
	if _, err := s.Forward([]int32{1, 2}, false); err != nil {
		t.Fatalf("valid input after errors: %v", err)
	}
	if s.Pos() != 2 {
		t.Errorf("Pos = %d, want 2", s.Pos())
	}
	if _, err := s.Forward([]int32{1, 2, 3, 4, 5, 6, 7}, false); err == nil {
		t.Error("input past the remaining context accepted")
	}
	if _, err := m.NewSession(model.SessionOptions{Context: -1}); err == nil {
		t.Error("negative context accepted")
	}
}

// TestBatchIndependence: the batch size bounds memory and must not change
// results, and evaluating a prompt at once equals feeding it token by token.
func TestBatchIndependence(t *testing.T) {
	f := variant(t, func(*gguf.File) {})
	m, err := model.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	tokens := []int32{1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 400, 428, 395, 392, 412, 444, 426}
	var ref []float32
	for _, batch := range []int{64, 5, 1} {
		s, err := m.NewSession(model.SessionOptions{Context: 32, Batch: batch, KVStorage: kv.F16})
		if err != nil {
			t.Fatal(err)
		}
		out, err := s.Forward(tokens, true)
		if err != nil {
			t.Fatal(err)
		}
		if ref == nil {
			ref = append([]float32(nil), out...)
			continue
		}
		for i := range ref {
			if out[i] != ref[i] {
				t.Fatalf("batch %d: logit %d = %v, batch 64 gave %v", batch, i, out[i], ref[i])
			}
		}
	}
	s, _ := m.NewSession(model.SessionOptions{Context: 32})
	var last []float32
	for _, tok := range tokens {
		out, err := s.Forward([]int32{tok}, false)
		if err != nil {
			t.Fatal(err)
		}
		last = out
	}
	want := ref[(len(tokens)-1)*m.Vocab:]
	for i := range want {
		if last[i] != want[i] {
			t.Fatalf("token-by-token logit %d = %v, batched %v", i, last[i], want[i])
		}
	}
}

// recorder counts what the forward pass shows an Observer.
type recorder struct {
	rows   map[string]int
	routed map[int]int
}

func (r *recorder) MatMulInput(w *tensor.Tensor, expert int, x []float32, n int) {
	if len(x) < n*w.Cols() {
		panic("observer got a short input")
	}
	r.rows[w.Name] += n
}

func (r *recorder) Routed(layer int, experts []int, weights []float32) {
	var sum float32
	for _, w := range weights {
		sum += w
	}
	if len(experts) != len(weights) || sum < 0.999 || sum > 1.001 {
		panic("routing weights do not sum to 1")
	}
	r.routed[layer]++
}

func TestObserver(t *testing.T) {
	for _, name := range []string{"stories260K.gguf", "golden/tiny-mixtral.gguf"} {
		t.Run(name, func(t *testing.T) {
			f, err := gguf.Open(testdata.Path(t, name))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			m, err := model.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			rec := &recorder{rows: map[string]int{}, routed: map[int]int{}}
			s, err := m.NewSession(model.SessionOptions{Context: 16, Observer: rec})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Forward([]int32{1, 5, 6, 7, 8, 9, 10}, false); err != nil {
				t.Fatal(err)
			}
			if got := rec.rows["blk.0.attn_q.weight"]; got != 7 {
				t.Errorf("attn_q saw %d rows, want 7", got)
			}
			if got := rec.rows["output.weight"]; got != 7 && !(got == 0 && m.Output == m.TokenEmbd) {
				t.Errorf("output saw %d rows, want 7", got)
			}
			if m.Experts > 0 {
				if rec.routed[0] != 7 || rec.routed[m.Layers-1] != 7 {
					t.Errorf("routing decisions per layer: %v, want 7 each", rec.routed)
				}
				if got := rec.rows["blk.0.ffn_gate_exps.weight"]; got != 7*m.ExpertsUsed {
					t.Errorf("expert gate saw %d rows, want %d", got, 7*m.ExpertsUsed)
				}
			} else if got := rec.rows["blk.4.ffn_down.weight"]; got != 7 {
				t.Errorf("ffn_down saw %d rows, want 7", got)
			}
		})
	}
}
