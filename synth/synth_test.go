package synth_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"tamp/engine"
	"tamp/gguf"
	"tamp/model"
	"tamp/quant"
	"tamp/synth"
	"tamp/tensor"
)

// tinyShape is stories260K's shape, small enough for many variants.
func tinyShape(t testing.TB) synth.Shape {
	s, err := synth.LookupShape("stories260k")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// kShape has rows of whole 256-element blocks, so K-quant targets use the
// K types instead of falling back, and 4 layers, so Q4_K_M's layer rules
// pick some layers and not others.
func kShape() synth.Shape {
	return synth.Shape{Name: "k-test", Arch: "llama", Dim: 256, Layers: 4, Heads: 4, KVHeads: 2, FFN: 512,
		Vocab: 300, Context: 128, RopeBase: 10000, RMSEps: 1e-5}
}

func qwenShape() synth.Shape {
	return synth.Shape{Name: "qwen-test", Arch: "qwen2", Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, FFN: 96,
		Vocab: 400, Context: 256, RopeBase: 1e6, RMSEps: 1e-6, Tied: true}
}

func write(t testing.TB, opts synth.Options) ([]byte, *synth.Layout) {
	t.Helper()
	var buf bytes.Buffer
	l, err := synth.Write(context.Background(), &buf, opts)
	if err != nil {
		t.Fatal(err)
	}
	if int64(buf.Len()) != l.Size {
		t.Fatalf("wrote %d bytes, layout says %d", buf.Len(), l.Size)
	}
	return buf.Bytes(), l
}

// TestLoadAndRun synthesizes small models of each architecture and type, loads
// them as tamp loads any model, and checks that a forward pass gives finite
// logits of a realistic size and that the tokenizer round-trips text.
func TestLoadAndRun(t *testing.T) {
	cases := []struct {
		shape synth.Shape
		typ   string
	}{
		{tinyShape(t), "F32"},
		{tinyShape(t), "F16"},
		{tinyShape(t), "Q8_0"},
		{tinyShape(t), "Q4_0"},
		{kShape(), "Q4_K_M"},
		{kShape(), "Q4_K"},
		{kShape(), "Q6_K"},
		{qwenShape(), "F16"},
		{qwenShape(), "Q8_0"},
	}
	for _, tc := range cases {
		t.Run(tc.shape.Name+"/"+tc.typ, func(t *testing.T) {
			data, l := write(t, synth.Options{Shape: tc.shape, Type: tc.typ, Seed: 3})
			f, err := gguf.Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			e, err := engine.FromFile("synth.gguf", f)
			if err != nil {
				t.Fatal(err)
			}
			m := e.Model
			s := tc.shape
			if m.Dim != s.Dim || m.Layers != s.Layers || m.Heads != s.Heads || m.KVHeads != s.KVHeads || m.FFN != s.FFN || m.Vocab != s.Vocab {
				t.Fatalf("loaded config %+v, want shape %+v", m.Config, s)
			}
			if got := int64(len(f.Tensors)); got != int64(len(l.Tensors)) {
				t.Fatalf("file has %d tensors, layout %d", got, len(l.Tensors))
			}
			for i, lt := range l.Tensors {
				ft := f.Tensors[i]
				if ft.Name != lt.Name || ft.Type != lt.Type || ft.Offset != lt.Offset {
					t.Fatalf("tensor %d: file %s %s @%d, layout %s %s @%d", i, ft.Name, ft.Type, ft.Offset, lt.Name, lt.Type, lt.Offset)
				}
			}
			if (m.Output == m.TokenEmbd) != s.Tied {
				t.Errorf("tied output = %v, want %v", m.Output == m.TokenEmbd, s.Tied)
			}

			text := "Once upon a time, a cat said: \"héllo\" 42!"
			ids := e.Encode(text)
			if ids[0] != e.Tok.BOS() {
				t.Errorf("encoding does not start with BOS: %v", ids[:3])
			}
			if got := e.Tok.Decode(ids[1:]); got != text {
				t.Errorf("decode(encode(%q)) = %q", text, got)
			}

			sess, err := m.NewSession(model.SessionOptions{Context: 64})
			if err != nil {
				t.Fatal(err)
			}
			logits, err := sess.Forward(ids, true)
			if err != nil {
				t.Fatal(err)
			}
			var sum, sq float64
			for i, v := range logits {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("logit %d is %v", i, v)
				}
				sum += float64(v)
				sq += float64(v) * float64(v)
			}
			n := float64(len(logits))
			std := math.Sqrt(sq/n - (sum/n)*(sum/n))
			// Unit-scale hidden states times 0.02·N(0,1) weights give
			// logits of standard deviation about 0.02·√dim (0.16 to 0.32
			// here); far outside that the weights are badly scaled.
			want := 0.02 * math.Sqrt(float64(s.Dim))
			if std < want/4 || std > want*4 {
				t.Errorf("logits have standard deviation %.3g, want about %.3g", std, want)
			}
		})
	}
}

// TestDeterministic checks that the seed alone decides the bytes: the same
// seed with any number of threads gives the same file, another seed another.
func TestDeterministic(t *testing.T) {
	opts := synth.Options{Shape: kShape(), Type: "Q4_K_M", Seed: 11, Threads: 1}
	a, _ := write(t, opts)
	opts.Threads = 3
	b, _ := write(t, opts)
	if !bytes.Equal(a, b) {
		t.Fatal("1 and 3 threads wrote different files for the same seed")
	}
	opts.Seed = 12
	c, l := write(t, opts)
	// Compare the data sections: the headers differ only in the seed.
	if bytes.Equal(a[l.DataOffset:], c[l.DataOffset:]) {
		t.Fatal("seeds 11 and 12 wrote the same weights")
	}
}

// TestHeaderMatchesGGUFWriter checks the streaming writer against package
// gguf: the same metadata and tensors written by gguf.WriteTo come out byte
// for byte as synth wrote them.
func TestHeaderMatchesGGUFWriter(t *testing.T) {
	for _, typ := range []string{"F32", "Q4_0", "Q4_K_M"} {
		t.Run(typ, func(t *testing.T) {
			s := kShape()
			s.Vocab = 301 // odd sizes leave padding between tensors
			data, _ := write(t, synth.Options{Shape: s, Type: typ, Seed: 1})
			f, err := gguf.Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			g := gguf.New()
			for _, kv := range f.KV {
				g.Set(kv.Key, kv.Value)
			}
			for _, ft := range f.Tensors {
				if err := g.AddTensor(ft.Name, ft.Type, ft.Dims, ft.Data); err != nil {
					t.Fatal(err)
				}
			}
			var buf bytes.Buffer
			if _, err := g.WriteTo(&buf); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), data) {
				t.Fatalf("gguf.WriteTo wrote %d bytes, differing from synth's %d", buf.Len(), len(data))
			}
		})
	}
}

// TestMatchesQuantize checks that a synthesized quantized model is what
// tamp quantize makes of the same model synthesized in F32: the same type for
// every tensor (llama.cpp's rules) and the same bytes.
func TestMatchesQuantize(t *testing.T) {
	for _, typ := range []string{"Q8_0", "Q4_0", "Q4_K_M"} {
		t.Run(typ, func(t *testing.T) {
			s := kShape()
			f32, _ := write(t, synth.Options{Shape: s, Type: "F32", Seed: 5})
			q, l := write(t, synth.Options{Shape: s, Type: typ, Seed: 5})
			src, err := gguf.Parse(f32)
			if err != nil {
				t.Fatal(err)
			}
			tg, err := quant.ParseTarget(typ)
			if err != nil {
				t.Fatal(err)
			}
			want, _, err := quant.Quantize(src, quant.Options{Target: &tg})
			if err != nil {
				t.Fatal(err)
			}
			got, err := gguf.Parse(q)
			if err != nil {
				t.Fatal(err)
			}
			types := map[tensor.Type]int{}
			for _, wt := range want.Tensors {
				gt, ok := got.Tensor(wt.Name)
				if !ok {
					t.Fatalf("synth has no %s", wt.Name)
				}
				if gt.Type != wt.Type {
					t.Errorf("%s: synth %s, quantize %s", wt.Name, gt.Type, wt.Type)
				} else if !bytes.Equal(gt.Data, wt.Data) {
					t.Errorf("%s (%s): data differs from quantize's", wt.Name, wt.Type)
				}
				types[gt.Type]++
			}
			if ft, _ := got.Uint("general.file_type"); int(ft) != l.FileType {
				t.Errorf("general.file_type = %d, want %d", ft, l.FileType)
			}
			if wft, _ := want.Uint("general.file_type"); int(wft) != l.FileType {
				t.Errorf("quantize sets general.file_type %d, synth %d", wft, l.FileType)
			}
			if typ == "Q4_K_M" && (types[tensor.Q6_K] == 0 || types[tensor.Q4_K] == 0) {
				t.Errorf("Q4_K_M gave types %v; want a mixture of Q4_K and Q6_K", types)
			}
		})
	}
}

// TestPlanTinyLlama checks the layout of a real shape without writing it:
// the parameter count and size TinyLlama-1.1B has in llama.cpp's files.
func TestPlanTinyLlama(t *testing.T) {
	s, err := synth.LookupShape("tinyllama-1.1b")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Params(), int64(1_100_048_384); got != want {
		t.Errorf("params = %d, want %d (TinyLlama-1.1B)", got, want)
	}
	cases := []struct {
		typ                 string
		q6k, minMiB, maxMiB int
	}{
		// Sizes of TinyLlama's GGUFs as llama.cpp writes them, plus or
		// minus a megabyte of vocabulary metadata.
		{"F16", 0, 2097, 2100},
		{"Q8_0", 0, 1114, 1117},
		{"Q4_0", 1, 605, 608},
		// Q4_K_M: output, and attn_v and ffn_down in 10 of 22 layers.
		{"Q4_K_M", 21, 635, 639},
	}
	for _, tc := range cases {
		l, err := synth.Plan(synth.Options{Shape: s, Type: tc.typ})
		if err != nil {
			t.Fatal(err)
		}
		q6k := 0
		for _, tt := range l.Tensors {
			if tt.Type == tensor.Q6_K {
				q6k++
			}
		}
		if q6k != tc.q6k {
			t.Errorf("%s: %d Q6_K tensors, want %d", tc.typ, q6k, tc.q6k)
		}
		if mib := int(l.Size >> 20); mib < tc.minMiB || mib > tc.maxMiB {
			t.Errorf("%s: %d MiB, want %d..%d", tc.typ, mib, tc.minMiB, tc.maxMiB)
		}
	}
}

func TestInvalidOptions(t *testing.T) {
	good := tinyShape(t)
	mod := func(f func(*synth.Shape)) synth.Shape {
		s := good
		f(&s)
		return s
	}
	cases := []struct {
		name string
		opts synth.Options
		want string
	}{
		{"arch", synth.Options{Shape: mod(func(s *synth.Shape) { s.Arch = "gpt2" })}, "architecture"},
		{"heads", synth.Options{Shape: mod(func(s *synth.Shape) { s.Heads = 7 })}, "multiple of the head count"},
		{"kv heads", synth.Options{Shape: mod(func(s *synth.Shape) { s.KVHeads = 3 })}, "KV head count"},
		{"odd head", synth.Options{Shape: mod(func(s *synth.Shape) { s.Dim, s.Heads, s.KVHeads = 63, 21, 21 })}, "even"},
		{"vocab", synth.Options{Shape: mod(func(s *synth.Shape) { s.Vocab = 100 })}, "vocab"},
		{"zero layers", synth.Options{Shape: mod(func(s *synth.Shape) { s.Layers = 0 })}, "layers"},
		{"huge", synth.Options{Shape: mod(func(s *synth.Shape) { s.FFN = 1 << 40 })}, "ffn"},
		{"type", synth.Options{Shape: good, Type: "Q9_9"}, "unknown type"},
		{"rope", synth.Options{Shape: mod(func(s *synth.Shape) { s.RopeBase = 0 })}, "rope base"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := synth.Write(context.Background(), &bytes.Buffer{}, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	if _, err := synth.LookupShape("gpt-5"); err == nil || !strings.Contains(err.Error(), "tinyllama-1.1b") {
		t.Errorf("unknown shape: error %v, want the list of known shapes", err)
	}
}

// TestWriteFile checks the atomic file writer: progress reaches the size,
// and a cancelled run leaves no file behind.
func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.gguf")
	var last, calls int64
	opts := synth.Options{Shape: tinyShape(t), Type: "Q8_0", Seed: 2, Progress: func(done, total int64) {
		if done < last || done > total {
			t.Errorf("progress %d of %d after %d", done, total, last)
		}
		last = done
		calls++
	}}
	l, err := synth.WriteFile(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != l.Size || last != l.Size || calls < 3 {
		t.Errorf("file %d bytes, layout %d, progress ended at %d after %d calls", st.Size(), l.Size, last, calls)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := model.Load(f); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	opts.Progress = nil
	gone := filepath.Join(dir, "cancelled.gguf")
	if _, err := synth.WriteFile(ctx, gone, opts); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: error %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("after a cancelled write the directory holds %d entries, want only m.gguf", len(entries))
	}
	if _, err := synth.WriteFile(context.Background(), filepath.Join(dir, "no", "such", "dir.gguf"), opts); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
}

// TestStreamingMemory synthesizes a model of tens of megabytes and checks
// that everything allocated meanwhile (a bound on the peak) is a small
// fraction of it: weights are generated a chunk at a time, never held whole.
func TestStreamingMemory(t *testing.T) {
	s := synth.Shape{Name: "mem-test", Arch: "llama", Dim: 512, Layers: 6, Heads: 8, KVHeads: 8, FFN: 1536,
		Vocab: 2048, Context: 256, RopeBase: 10000, RMSEps: 1e-5}
	path := filepath.Join(t.TempDir(), "m.gguf")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	l, err := synth.WriteFile(context.Background(), path, synth.Options{Shape: s, Type: "F32", Seed: 1, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	alloc := int64(after.TotalAlloc - before.TotalAlloc)
	t.Logf("file %d MiB, allocated %.1f MiB in all, heap obtained from the OS grew %.1f MiB",
		l.Size>>20, float64(alloc)/(1<<20), float64(int64(after.HeapSys)-int64(before.HeapSys))/(1<<20))
	if l.Size < 48<<20 {
		t.Fatalf("model is only %d bytes; the test needs one large enough to tell", l.Size)
	}
	if alloc > l.Size/8 {
		t.Errorf("synthesizing a %d-byte model allocated %d bytes; want under an eighth of it", l.Size, alloc)
	}
}

// ExamplePlan shows what a Q4_K_M TinyLlama holds, without writing it.
func ExamplePlan() {
	s, _ := synth.LookupShape("tinyllama-1.1b")
	l, err := synth.Plan(synth.Options{Shape: s, Type: "Q4_K_M"})
	if err != nil {
		fmt.Println(err)
		return
	}
	count := map[tensor.Type]int{}
	for _, t := range l.Tensors {
		count[t.Type]++
	}
	fmt.Printf("%s: %d tensors: %d Q4_K, %d Q6_K, %d F32; %.0f MiB\n", l.Target, len(l.Tensors),
		count[tensor.Q4_K], count[tensor.Q6_K], count[tensor.F32], float64(l.Size)/(1<<20))
	// Output:
	// Q4_K_M: 201 tensors: 135 Q4_K, 21 Q6_K, 45 F32; 637 MiB
}
