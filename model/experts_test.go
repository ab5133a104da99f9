package model_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"tamp/gguf"
	"tamp/internal/testdata"
	"tamp/model"
	"tamp/tensor"
)

// mixtral copies golden/tiny-mixtral.gguf into memory. Stacked expert
// tensors are stored as typ (F32 keeps them as they are); split, if set,
// says which of them to store per expert instead (blk.N.ffn_gate.E.weight …),
// each expert's tensor holding exactly the bytes of its slice.
func mixtral(t *testing.T, typ tensor.Type, split func(name string) bool) *gguf.File {
	t.Helper()
	src, err := gguf.Open(testdata.Path(t, "golden/tiny-mixtral.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	f := gguf.New()
	for _, kv := range src.KV {
		f.Set(kv.Key, kv.Value)
	}
	for _, tn := range src.Tensors {
		if !strings.Contains(tn.Name, "_exps.") {
			if err := f.AddTensor(tn.Name, tn.Type, tn.Dims, tn.Data); err != nil {
				t.Fatal(err)
			}
			continue
		}
		data := tn.Data
		if typ != tn.Type {
			vals, err := tensor.DequantizeTensor(tn.Tensor())
			if err != nil {
				t.Fatal(err)
			}
			rb, err := tensor.RowBytes(typ, int(tn.Dims[0]))
			if err != nil {
				t.Fatal(err)
			}
			data = make([]byte, rb*len(vals)/int(tn.Dims[0]))
			if err := tensor.Quantize(typ, vals, data); err != nil {
				t.Fatal(err)
			}
		}
		if split == nil || !split(tn.Name) {
			if err := f.AddTensor(tn.Name, typ, tn.Dims, data); err != nil {
				t.Fatal(err)
			}
			continue
		}
		kind := strings.TrimSuffix(strings.SplitN(tn.Name, ".", 3)[2], "_exps.weight")
		var layer int
		fmt.Sscanf(tn.Name, "blk.%d.", &layer)
		size := len(data) / int(tn.Dims[2])
		for e := range int(tn.Dims[2]) {
			name := model.ExpertTensorName(layer, kind, e)
			if err := f.AddTensor(name, typ, tn.Dims[:2], data[e*size:(e+1)*size]); err != nil {
				t.Fatal(err)
			}
		}
	}
	return f
}

func mixtralLogits(t *testing.T, f *gguf.File, obs model.Observer) ([]float32, *model.Model) {
	t.Helper()
	m, err := model.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.NewSession(model.SessionOptions{Context: 32, Batch: 8, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	tokens := make([]int32, 20)
	for i := range tokens {
		tokens[i] = int32(1 + (i*37)%(m.Vocab-1))
	}
	logits, err := s.Forward(tokens, true)
	if err != nil {
		t.Fatal(err)
	}
	return append([]float32(nil), logits...), m
}

// TestPerExpertTensors stores tiny-mixtral's experts per tensor (all of
// them, or some kinds of some layers) and checks that the model computes
// the same logits, bit for bit, as from the stacked tensors: the same bytes
// go through the same kernels. Quantized experts exercise the quantized
// kernels on the per-expert path.
func TestPerExpertTensors(t *testing.T) {
	all := func(string) bool { return true }
	mixed := func(name string) bool {
		return strings.HasPrefix(name, "blk.0.ffn_up") || strings.HasPrefix(name, "blk.1.ffn_gate") || strings.HasPrefix(name, "blk.1.ffn_down")
	}
	for _, typ := range []tensor.Type{tensor.F32, tensor.Q8_0, tensor.Q4_0} {
		want, wm := mixtralLogits(t, mixtral(t, typ, nil), nil)
		for _, c := range []struct {
			name  string
			split func(string) bool
		}{{"all per expert", all}, {"mixed layouts", mixed}} {
			t.Run(typ.String()+"/"+c.name, func(t *testing.T) {
				f := mixtral(t, typ, c.split)
				if _, ok := f.Tensor("blk.1.ffn_gate.3.weight"); !ok {
					t.Fatal("the per-expert file has no blk.1.ffn_gate.3.weight")
				}
				got, m := mixtralLogits(t, f, nil)
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("logit %d = %v, stacked %v", i, got[i], want[i])
					}
				}
				if m.WeightBytes() != wm.WeightBytes() {
					t.Errorf("weight bytes %d, stacked %d", m.WeightBytes(), wm.WeightBytes())
				}
				l := &m.Blocks[1]
				if l.NumExperts() != 4 {
					t.Fatalf("%d experts bound", l.NumExperts())
				}
				gate, up, down := l.Expert(3)
				if gate.Name != "blk.1.ffn_gate.3.weight" || gate.Parent != nil {
					t.Errorf("expert 3's gate is %s (parent %v), want its own tensor", gate.Name, gate.Parent)
				}
				if len(down.Dims) < 2 || down.Dims[0] != m.FFN || down.Dims[1] != m.Dim || up.Type != typ {
					t.Errorf("expert 3: down %v, up %s", down.Dims, up.Type)
				}
			})
		}
	}
}

// TestPerExpertTypes gives each expert its own type and checks that the
// model counts each expert's bytes and runs.
func TestPerExpertTypes(t *testing.T) {
	f := mixtral(t, tensor.F32, func(string) bool { return true })
	types := []tensor.Type{tensor.Q4_0, tensor.Q8_0, tensor.F16, tensor.F32}
	var want int64
	for _, gt := range f.Tensors {
		var e int
		var kind string
		if n, _ := fmt.Sscanf(strings.ReplaceAll(gt.Name, ".", " "), "blk %d %s %d weight", new(int), &kind, &e); n == 3 {
			vals, err := tensor.DequantizeTensor(gt.Tensor())
			if err != nil {
				t.Fatal(err)
			}
			typ := types[e]
			rb, _ := tensor.RowBytes(typ, int(gt.Dims[0]))
			data := make([]byte, rb*int(gt.Dims[1]))
			if err := tensor.Quantize(typ, vals, data); err != nil {
				t.Fatal(err)
			}
			gt.Type, gt.Data = typ, data
		}
		want += int64(len(gt.Data))
	}
	logits, m := mixtralLogits(t, f, nil)
	if got := m.WeightBytes(); got != want {
		t.Errorf("weight bytes %d, the file's tensors hold %d", got, want)
	}
	for e, typ := range types {
		if g, _, _ := m.Blocks[0].Expert(e); g.Type != typ {
			t.Errorf("expert %d's gate is %s, want %s", e, g.Type, typ)
		}
	}
	for i, v := range logits {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("logit %d is %v", i, v)
		}
	}
}

// TestPerExpertObserver checks what an Observer sees for per-expert
// tensors: the expert's own tensor and its index.
func TestPerExpertObserver(t *testing.T) {
	rec := &expertRecorder{rows: map[string]int{}}
	mixtralLogits(t, mixtral(t, tensor.F32, func(n string) bool { return strings.HasPrefix(n, "blk.0.") }), rec)
	var perExpert, stacked int
	for name, n := range rec.rows {
		switch {
		case strings.HasPrefix(name, "blk.0.ffn_gate.") && !strings.Contains(name, "_inp"):
			perExpert += n
		case name == "blk.1.ffn_gate_exps.weight":
			stacked += n
		}
	}
	// 20 tokens, 2 experts each.
	if perExpert != 40 || stacked != 40 {
		t.Errorf("gate rows seen: %d per-expert, %d stacked; want 40 each (%v)", perExpert, stacked, rec.rows)
	}
	if rec.bad != "" {
		t.Error(rec.bad)
	}
}

type expertRecorder struct {
	rows map[string]int
	bad  string
}

func (r *expertRecorder) MatMulInput(w *tensor.Tensor, expert int, x []float32, n int) {
	r.rows[w.Name] += n
	if _, _, e, ok := model.ParseExpertTensorName(w.Name); ok && e != expert {
		r.bad = fmt.Sprintf("%s reported as expert %d", w.Name, expert)
	}
}

func (r *expertRecorder) Routed(int, []int, []float32) {}

// TestPerExpertLoadErrors: inconsistent expert sets are refused with an
// error naming the problem.
func TestPerExpertLoadErrors(t *testing.T) {
	all := func(string) bool { return true }
	cases := []struct {
		name  string
		split func(string) bool
		edit  func(t *testing.T, f *gguf.File)
		want  string
	}{
		{"missing expert", all, func(t *testing.T, f *gguf.File) { dropTensor(f, "blk.1.ffn_up.2.weight") },
			"tensor blk.1.ffn_up.2.weight is missing: layer 1 stores its ffn_up per expert and has experts [0 1 3] of the 4"},
		{"extra expert", all, func(t *testing.T, f *gguf.File) {
			src, _ := f.Tensor("blk.0.ffn_down.0.weight")
			if err := f.AddTensor("blk.0.ffn_down.4.weight", src.Type, src.Dims, src.Data); err != nil {
				t.Fatal(err)
			}
		}, "tensor blk.0.ffn_down.4.weight names expert 4, but expert_count is 4"},
		{"mismatched shape", all, func(t *testing.T, f *gguf.File) {
			dropTensor(f, "blk.0.ffn_gate.1.weight")
			if err := f.AddTensor("blk.0.ffn_gate.1.weight", tensor.F32, []uint64{128, 128}, make([]byte, 4*128*128)); err != nil {
				t.Fatal(err)
			}
		}, "tensor blk.0.ffn_gate.1.weight has shape [128 128], want [128 160]"},
		{"transposed down", all, func(t *testing.T, f *gguf.File) {
			dropTensor(f, "blk.1.ffn_down.0.weight")
			if err := f.AddTensor("blk.1.ffn_down.0.weight", tensor.F32, []uint64{128, 160}, make([]byte, 4*128*160)); err != nil {
				t.Fatal(err)
			}
		}, "tensor blk.1.ffn_down.0.weight has shape [128 160], want [160 128]"},
		{"both layouts", func(n string) bool { return strings.HasPrefix(n, "blk.0.ffn_up") }, func(t *testing.T, f *gguf.File) {
			src, _ := f.Tensor("blk.1.ffn_up_exps.weight")
			if err := f.AddTensor("blk.0.ffn_up_exps.weight", src.Type, src.Dims, src.Data); err != nil {
				t.Fatal(err)
			}
		}, "layer 0 has both blk.0.ffn_up_exps.weight and per-expert blk.0.ffn_up.E.weight tensors"},
		{"no experts of a kind", all, func(t *testing.T, f *gguf.File) {
			for e := range 4 {
				dropTensor(f, model.ExpertTensorName(0, "ffn_down", e))
			}
		}, "layer 0 lacks expert tensors for ffn_down: neither blk.0.ffn_down_exps.weight nor blk.0.ffn_down.E.weight"},
		{"expert beyond the layers", all, func(t *testing.T, f *gguf.File) {
			src, _ := f.Tensor("blk.0.ffn_down.0.weight")
			if err := f.AddTensor("blk.2.ffn_down.0.weight", src.Type, src.Dims, src.Data); err != nil {
				t.Fatal(err)
			}
		}, "tensor blk.2.ffn_down.0.weight is in layer 2, but the model has 2 layers"},
		{"experts in a dense model", all, func(t *testing.T, f *gguf.File) {
			f.Delete("llama.expert_count")
			f.Delete("llama.expert_used_count")
		}, "tensor blk.0.ffn_gate.0.weight is one expert's matrix, but the model declares no experts"},
		{"unsupported expert type", all, func(t *testing.T, f *gguf.File) {
			gt, _ := f.Tensor("blk.0.ffn_gate.3.weight")
			gt.Type = tensor.I32
		}, "tensor blk.0.ffn_gate.3.weight has type I32, which tamp cannot compute with"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := mixtral(t, tensor.F32, c.split)
			c.edit(t, f)
			_, err := model.Load(f)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestParseExpertTensorName(t *testing.T) {
	cases := []struct {
		name        string
		layer, e    int
		kind        string
		ok          bool
		roundTrips  bool
		description string
	}{
		{"blk.3.ffn_down.7.weight", 3, 7, "ffn_down", true, true, "per-expert down"},
		{"blk.0.ffn_gate.0.weight", 0, 0, "ffn_gate", true, true, "first gate"},
		{"blk.12.ffn_up.15.weight", 12, 15, "ffn_up", true, true, "two digits"},
		{"blk.0.ffn_gate_exps.weight", 0, 0, "", false, false, "stacked"},
		{"blk.0.ffn_gate.weight", 0, 0, "", false, false, "dense"},
		{"blk.0.ffn_gate_inp.weight", 0, 0, "", false, false, "router"},
		{"blk.0.attn_q.1.weight", 0, 0, "", false, false, "not an expert kind"},
		{"blk.0.ffn_up.01.weight", 0, 0, "", false, false, "leading zero"},
		{"blk.0.ffn_up.-1.weight", 0, 0, "", false, false, "negative"},
		{"blk.0.ffn_up.1.bias", 0, 0, "", false, false, "bias"},
	}
	for _, c := range cases {
		l, kind, e, ok := model.ParseExpertTensorName(c.name)
		if ok != c.ok || (ok && (l != c.layer || kind != c.kind || e != c.e)) {
			t.Errorf("%s (%s): got %d %q %d %v", c.name, c.description, l, kind, e, ok)
		}
		if c.roundTrips && model.ExpertTensorName(l, kind, e) != c.name {
			t.Errorf("%s does not round-trip: %s", c.name, model.ExpertTensorName(l, kind, e))
		}
	}
}
