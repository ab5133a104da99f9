package quant

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"tamp/gguf"
	"tamp/model"
	"tamp/tensor"
)

// synthLlama builds a random llama model whose rows hold whole K-quant
// blocks (256), with stories260K's tokenizer: 8 layers, 4 heads sharing one
// KV head (GQA 4), so llama.cpp's layer-dependent rules all come into play.
func synthLlama(t *testing.T) *gguf.File {
	t.Helper()
	src := openTB(t, "stories260K.gguf")
	const dim, ffn, layers, heads, kvHeads, vocab = 256, 256, 8, 4, 1, 512
	f := gguf.New()
	f.Set("general.architecture", gguf.String("llama"))
	for _, kv := range src.KV {
		if strings.HasPrefix(kv.Key, "tokenizer.") {
			f.Set(kv.Key, kv.Value)
		}
	}
	set := func(k string, v uint32) { f.Set("llama."+k, gguf.Uint32(v)) }
	set("embedding_length", dim)
	set("feed_forward_length", ffn)
	set("block_count", layers)
	set("attention.head_count", heads)
	set("attention.head_count_kv", kvHeads)
	set("context_length", 256)
	f.Set("llama.attention.layer_norm_rms_epsilon", gguf.Float32(1e-5))
	r := rand.New(rand.NewPCG(41, 42))
	add := func(name string, scale float64, dims ...uint64) {
		n := uint64(1)
		for _, d := range dims {
			n *= d
		}
		data := make([]byte, 4*n)
		for i := uint64(0); i < n; i++ {
			v := float32(r.NormFloat64() * scale)
			if len(dims) == 1 {
				v = float32(1 + 0.1*r.NormFloat64())
			}
			binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(v))
		}
		if err := f.AddTensor(name, tensor.F32, dims, data); err != nil {
			t.Fatal(err)
		}
	}
	add("token_embd.weight", 1, dim, vocab)
	add("output_norm.weight", 0, dim)
	add("output.weight", 0.05, dim, vocab)
	for l := 0; l < layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		add(p+"attn_norm.weight", 0, dim)
		add(p+"attn_q.weight", 0.06, dim, dim)
		add(p+"attn_k.weight", 0.06, dim, dim/heads*kvHeads)
		add(p+"attn_v.weight", 0.06, dim, dim/heads*kvHeads)
		add(p+"attn_output.weight", 0.06, dim, dim)
		add(p+"ffn_norm.weight", 0, dim)
		add(p+"ffn_gate.weight", 0.06, dim, ffn)
		add(p+"ffn_down.weight", 0.06, ffn, dim)
		add(p+"ffn_up.weight", 0.06, dim, ffn)
	}
	return f
}

// TestPresetRules checks llama-quantize's per-tensor rules for its mixtures
// on a model where every K-quant fits: the type of each tensor by layer.
func TestPresetRules(t *testing.T) {
	f := synthLlama(t)
	// use_more_bits(i, 8) holds for layers 0, 3, 6, 7.
	more := func(l int) bool { return l == 0 || l == 3 || l == 6 || l == 7 }
	for _, tc := range []struct {
		target string
		want   func(kind string, layer int) tensor.Type
	}{
		{"Q4_K_M", func(kind string, l int) tensor.Type {
			switch {
			case kind == "output":
				return tensor.Q6_K
			case (kind == "attn_v" || kind == "ffn_down") && more(l):
				return tensor.Q6_K
			}
			return tensor.Q4_K
		}},
		{"Q5_K_M", func(kind string, l int) tensor.Type {
			switch {
			case kind == "output":
				return tensor.Q6_K
			case (kind == "attn_v" || kind == "ffn_down") && more(l):
				return tensor.Q6_K
			}
			return tensor.Q5_K
		}},
		{"Q4_K_S", func(kind string, l int) tensor.Type {
			switch {
			case kind == "output":
				return tensor.Q6_K
			case kind == "attn_v" && l < 4, kind == "ffn_down" && l < 1:
				return tensor.Q5_K
			}
			return tensor.Q4_K
		}},
		{"Q3_K_M", func(kind string, l int) tensor.Type {
			switch {
			case kind == "output":
				return tensor.Q6_K
			case kind == "attn_v" && l < 2:
				return tensor.Q5_K
			case kind == "attn_v", kind == "ffn_down", kind == "attn_output":
				return tensor.Q4_K
			}
			return tensor.Q3_K
		}},
		{"Q2_K", func(kind string, l int) tensor.Type {
			switch {
			case kind == "output":
				return tensor.Q6_K
			case kind == "attn_v": // GQA 4
				return tensor.Q4_K
			case kind == "ffn_down", kind == "attn_output":
				return tensor.Q3_K
			}
			return tensor.Q2_K
		}},
		{"Q8_0", func(string, int) tensor.Type { return tensor.Q8_0 }},
		{"Q6_K", func(string, int) tensor.Type { return tensor.Q6_K }},
		{"Q4_K", func(kind string, l int) tensor.Type {
			if kind == "output" {
				return tensor.Q6_K
			}
			return tensor.Q4_K
		}},
	} {
		t.Run(tc.target, func(t *testing.T) {
			tg, err := ParseTarget(tc.target)
			if err != nil {
				t.Fatal(err)
			}
			rs := newRuleState(f, false)
			for _, gt := range f.Tensors {
				if !Quantizable(gt) {
					continue
				}
				got, _ := rs.tensorType(tg, gt.Name, int(gt.Dims[0]))
				kind := strings.TrimSuffix(gt.Name, ".weight")
				l := layerOf(gt.Name)
				if l >= 0 {
					kind = strings.TrimPrefix(kind, fmt.Sprintf("blk.%d.", l))
				}
				if want := tc.want(kind, l); got != want {
					t.Errorf("%s: %s, want %s", gt.Name, got, want)
				}
			}
		})
	}
}

// TestQuantizeKQuantModel quantizes the synthetic model with K-quant
// mixtures, with and without an importance matrix, and runs the result.
func TestQuantizeKQuantModel(t *testing.T) {
	f := synthLlama(t)
	base, err := model.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	col := &ImatrixCollector{}
	sess, _ := base.NewSession(model.SessionOptions{Context: 32, Observer: col})
	toks := make([]int32, 32)
	for i := range toks {
		toks[i] = int32(1 + 7*i%500)
	}
	if _, err := sess.Forward(toks, false); err != nil {
		t.Fatal(err)
	}
	im := col.Imatrix("synthetic", 1, 32)
	baseLogits := make([]float32, 32*base.Vocab)
	bs, _ := base.NewScorer(model.SessionOptions{Context: 32})
	bs.Logits(toks, baseLogits)
	prev := 2.0
	for _, tc := range []struct {
		name   string
		withIm bool
		limit  float64
	}{
		// Relative logit error of this random 8-layer model shrinks by
		// about half a bit; a broken layout gives about sqrt(2).
		{"Q2_K", true, 0.9}, {"Q3_K_M", false, 0.5}, {"Q4_K_M", true, 0.3}, {"Q5_K_S", false, 0.18}, {"Q6_K", true, 0.1},
	} {
		name, withIm := tc.name, tc.withIm
		{
			tg, _ := ParseTarget(name)
			opts := Options{Target: &tg}
			if withIm {
				opts.Imatrix = im
			}
			out, rep, err := Quantize(f, opts)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Fallbacks != 0 {
				t.Errorf("%s: %d fallbacks on a model where every block fits", name, rep.Fallbacks)
			}
			if ft, _ := out.Uint("general.file_type"); int(ft) != tg.FileType {
				t.Errorf("%s: file type %d, want %d", name, ft, tg.FileType)
			}
			m, err := model.Load(out)
			if err != nil {
				t.Fatal(err)
			}
			sc, _ := m.NewScorer(model.SessionOptions{Context: 32})
			logits := make([]float32, 32*m.Vocab)
			if err := sc.Logits(toks, logits); err != nil {
				t.Fatal(err)
			}
			var se, ss float64
			for i, v := range logits {
				d := float64(v - baseLogits[i])
				se += d * d
				ss += float64(baseLogits[i]) * float64(baseLogits[i])
			}
			rel := math.Sqrt(se / ss)
			if rel > tc.limit || rel >= prev {
				t.Errorf("%s (imatrix %v): relative logit error %.3f (limit %.2f, previous type %.3f)", name, withIm, rel, tc.limit, prev)
			}
			prev = rel
		}
	}
}

func TestFallbacks(t *testing.T) {
	for _, tc := range []struct {
		t    tensor.Type
		cols int
		want tensor.Type
	}{
		{tensor.Q4_K, 64, tensor.Q5_0},
		{tensor.Q5_K, 64, tensor.Q5_1},
		{tensor.Q6_K, 64, tensor.Q8_0},
		{tensor.Q2_K, 96, tensor.Q4_0}, // llama.cpp: IQ4_NL, which tamp cannot compute with
		{tensor.Q3_K, 32, tensor.Q4_0},
		{tensor.Q4_0, 172, tensor.F16},
		{tensor.Q6_K, 172, tensor.F16},
		{SQ4_8, 96, tensor.Q5_1}, // the next standard type at least as wide
		{SQ2_8, 160, tensor.Q4_0},
		{tensor.Q4_K, 256, tensor.Q4_K},
	} {
		t.Run(fmt.Sprintf("%s/%d", tc.t, tc.cols), func(t *testing.T) {
			rs := &ruleState{}
			got, note := rs.fallback(tc.t, tc.cols, "w", "")
			if got != tc.want {
				t.Errorf("fallback %s, want %s", got, tc.want)
			}
			if (got != tc.t) != strings.HasPrefix(note, "fallback") {
				t.Errorf("note %q", note)
			}
		})
	}
}

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		name string
		typ  tensor.Type
		ft   int
		err  bool
	}{
		{"q4_k_m", tensor.Q4_K, 15, false},
		{"Q8_0", tensor.Q8_0, 7, false},
		{"Q4_K", tensor.Q4_K, 14, false},
		{"sq4_8", SQ4_8, -1, false},
		{"IQ2_XXS", 0, 0, true},
		{"", 0, 0, true},
	} {
		tg, err := ParseTarget(tc.name)
		if (err != nil) != tc.err {
			t.Errorf("%q: error %v", tc.name, err)
			continue
		}
		if !tc.err && (tg.Type != tc.typ || tg.FileType != tc.ft) {
			t.Errorf("%q: %s file type %d, want %s %d", tc.name, tg.Type, tg.FileType, tc.typ, tc.ft)
		}
	}
}
