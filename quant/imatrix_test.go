package quant

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tamp/gguf"
	"tamp/internal/testdata"
	"tamp/model"
	"tamp/tensor"
	"tamp/tokenizer"
)

func TestImatrixCollector(t *testing.T) {
	dense := &tensor.Tensor{Name: "blk.0.attn_q.weight", Type: tensor.F32, Dims: []int{3, 2}}
	exps := &tensor.Tensor{Name: "blk.0.ffn_up_exps.weight", Type: tensor.F32, Dims: []int{2, 4, 3}}
	out := &tensor.Tensor{Name: "output.weight", Type: tensor.F32, Dims: []int{3, 5}}
	c := &ImatrixCollector{}
	c.MatMulInput(dense, -1, []float32{1, 2, 3, -1, 0, 2}, 2)
	c.MatMulInput(exps, 2, []float32{3, 4}, 1)
	c.MatMulInput(exps, 2, []float32{1, 0}, 1)
	c.MatMulInput(exps, 7, []float32{1, 1}, 1) // out of range: ignored
	c.MatMulInput(out, -1, []float32{1, 1, 1}, 1)
	m := c.Imatrix("calib.txt", 3, 16)
	for _, tc := range []struct {
		name string
		mat  int
		cols int
		want []float32
	}{
		{"blk.0.attn_q.weight", 0, 3, []float32{1, 2, 6.5}},
		{"blk.0.ffn_up_exps.weight", 2, 2, []float32{5, 8}},
		{"blk.0.ffn_up_exps.weight", 0, 2, []float32{1, 1}}, // no input: ones, as in llama.cpp
	} {
		got, err := m.Weights(tc.name, tc.mat, tc.cols)
		if err != nil {
			t.Fatal(err)
		}
		for j := range tc.want {
			if got[j] != tc.want[j] {
				t.Errorf("%s[%d] = %v, want %v", tc.name, tc.mat, got, tc.want)
				break
			}
		}
	}
	if _, ok := m.Entries["output.weight"]; ok {
		t.Error("output.weight collected without ProcessOutput")
	}
	if _, err := m.Weights("blk.0.attn_q.weight", 0, 4); err == nil {
		t.Error("column mismatch not reported")
	}
	if w, err := m.Weights("nope", 0, 3); w != nil || err != nil {
		t.Errorf("missing entry: %v, %v; want nil, nil", w, err)
	}

	// GGUF round trip.
	f, err := m.GGUF()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := f.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	back, err := ParseImatrix(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if back.Chunks != 3 || back.ChunkSize != 16 || len(back.Datasets) != 1 || back.Datasets[0] != "calib.txt" || len(back.Entries) != 2 {
		t.Errorf("round trip lost metadata: %+v", back)
	}
	w1, _ := m.Weights("blk.0.ffn_up_exps.weight", 2, 2)
	w2, _ := back.Weights("blk.0.ffn_up_exps.weight", 2, 2)
	if w1[0] != w2[0] || w1[1] != w2[1] {
		t.Errorf("round trip changed weights: %v → %v", w1, w2)
	}
	// The layout llama.cpp expects: NAME.in_sum2 [cols, mats], NAME.counts [1, mats].
	s, _ := f.Tensor("blk.0.ffn_up_exps.weight.in_sum2")
	cnt, _ := f.Tensor("blk.0.ffn_up_exps.weight.counts")
	if s == nil || cnt == nil || len(s.Dims) != 2 || s.Dims[0] != 2 || s.Dims[1] != 3 || cnt.Dims[0] != 1 || cnt.Dims[1] != 3 {
		t.Errorf("tensor layout: sums %v, counts %v", s, cnt)
	}
	if ty, _ := f.String("general.type"); ty != "imatrix" {
		t.Errorf("general.type = %q", ty)
	}
}

// legacyImatrix builds a llama.cpp legacy .dat file.
func legacyImatrix(entries map[string][]float32, ncall int32, chunks int32, dataset string) []byte {
	var b bytes.Buffer
	w := func(v any) { binary.Write(&b, binary.LittleEndian, v) }
	w(int32(len(entries)))
	for _, name := range []string{"a.weight", "b.weight"} {
		v, ok := entries[name]
		if !ok {
			continue
		}
		w(int32(len(name)))
		b.WriteString(name)
		w(ncall)
		w(int32(len(v)))
		w(v)
	}
	if chunks > 0 {
		w(chunks)
		w(int32(len(dataset)))
		b.WriteString(dataset)
	}
	return b.Bytes()
}

func TestParseLegacyImatrix(t *testing.T) {
	data := legacyImatrix(map[string][]float32{"a.weight": {10, 20}, "b.weight": {3, 6, 9, 12}}, 10, 7, "wiki.txt")
	m, err := ParseImatrix(data)
	if err != nil {
		t.Fatal(err)
	}
	if m.Chunks != 7 || len(m.Datasets) != 1 || m.Datasets[0] != "wiki.txt" {
		t.Errorf("metadata %+v", m)
	}
	w, err := m.Weights("a.weight", 0, 2)
	if err != nil || w[0] != 1 || w[1] != 2 {
		t.Errorf("a.weight = %v, %v; want the values divided by ncall", w, err)
	}
	// A legacy entry of an expert tensor holds all experts' columns; Bind
	// splits it by the tensor's row length.
	f := gguf.New()
	f.AddTensor("b.weight", tensor.F32, []uint64{2, 1, 2}, make([]byte, 16))
	if err := m.Bind(f); err != nil {
		t.Fatal(err)
	}
	w, err = m.Weights("b.weight", 1, 2)
	if err != nil || math.Abs(float64(w[0])-0.9) > 1e-6 || math.Abs(float64(w[1])-1.2) > 1e-6 {
		t.Errorf("b.weight expert 1 = %v, %v", w, err)
	}

	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "truncated"},
		{"zero entries", []byte{0, 0, 0, 0}, "holds 0 entries"},
		{"too many entries", []byte{0xff, 0xff, 0, 0}, "claims"},
		{"bad name length", append([]byte{1, 0, 0, 0}, bytes.Repeat([]byte{0xff}, 16)...), "name length"},
		{"values past end", legacyImatrix(map[string][]float32{"a.weight": {1, 2}}, 1, 0, "")[:30], "past the end"},
		{"zero ncall", legacyImatrix(map[string][]float32{"a.weight": {1}}, 0, 0, ""), "must be positive"},
		{"model file", modelGGUF(t), "not \"imatrix\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseImatrix(tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func modelGGUF(t *testing.T) []byte {
	f := gguf.New()
	f.Set("general.type", gguf.String("model"))
	f.AddTensor("x.in_sum2", tensor.F32, []uint64{1}, make([]byte, 4))
	var buf bytes.Buffer
	f.WriteTo(&buf)
	return buf.Bytes()
}

func FuzzParseImatrix(f *testing.F) {
	f.Add(legacyImatrix(map[string][]float32{"a.weight": {1, 2}}, 1, 3, "x"))
	c := &ImatrixCollector{}
	c.MatMulInput(&tensor.Tensor{Name: "w", Type: tensor.F32, Dims: []int{2, 2}}, -1, []float32{1, 2}, 1)
	g, _ := c.Imatrix("d", 1, 1).GGUF()
	var buf bytes.Buffer
	g.WriteTo(&buf)
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseImatrix(data)
		if err != nil {
			return
		}
		for _, name := range m.Names() {
			e := m.Entries[name]
			for mat := range e.Counts {
				if _, err := m.Weights(name, mat, e.Cols); err != nil && len(e.Sums) == e.Cols*len(e.Counts) {
					t.Fatalf("consistent entry %s: %v", name, err)
				}
			}
		}
	})
}

// TestCollectImatrixStories runs the collector on stories260K: every weight
// matrix but the output gets an entry with one count per evaluated token.
func TestCollectImatrixStories(t *testing.T) {
	f := openTB(t, "stories260K.gguf")
	m, err := model.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	tokens := tok.Encode(strings.Repeat("Once upon a time, there was a little dog. ", 20), true, false)
	im, err := CollectImatrix(context.Background(), m, tokens, CollectOptions{Ctx: 32, Chunks: 3, BOS: tok.BOS(), AddBOS: true, Dataset: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Entries) != 35 || im.Chunks != 3 || im.ChunkSize != 32 {
		t.Fatalf("%d entries, %d chunks of %d; want 35 entries (7 per layer), 3 chunks of 32", len(im.Entries), im.Chunks, im.ChunkSize)
	}
	for name, e := range im.Entries {
		if e.Counts[0] != 96 {
			t.Errorf("%s saw %g rows, want 96", name, e.Counts[0])
		}
	}
	// Written and read back through a file, it quantizes the same.
	path := filepath.Join(t.TempDir(), "im.gguf")
	if err := WriteImatrix(path, im); err != nil {
		t.Fatal(err)
	}
	back, err := ReadImatrix(path)
	if err != nil {
		t.Fatal(err)
	}
	a, _, err := Quantize(f, Options{Type: tensor.Q4_0, Imatrix: im})
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := Quantize(f, Options{Type: tensor.Q4_0, Imatrix: back})
	if err != nil {
		t.Fatal(err)
	}
	plain, _, _ := Quantize(f, Options{Type: tensor.Q4_0})
	ta, _ := a.Tensor("blk.1.attn_q.weight")
	tb, _ := b.Tensor("blk.1.attn_q.weight")
	tp, _ := plain.Tensor("blk.1.attn_q.weight")
	// float32 storage of the sums may move a near-tie; nearly all bytes agree.
	diff := 0
	for i := range ta.Data {
		if ta.Data[i] != tb.Data[i] {
			diff++
		}
	}
	if diff > len(ta.Data)/100 {
		t.Errorf("%d of %d bytes differ after the file round trip", diff, len(ta.Data))
	}
	if bytes.Equal(ta.Data, tp.Data) {
		t.Error("the imatrix did not change the quantization")
	}
}

// storiesImatrix collects a small importance matrix for stories260K.
func storiesImatrix(t *testing.T, f *gguf.File) *Imatrix {
	t.Helper()
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
	first, _ := SplitText(text)
	tokens := tok.Encode(string(first[:20000]), true, false)
	im, err := CollectImatrix(context.Background(), m, tokens, CollectOptions{Ctx: 128, Chunks: 16, BOS: tok.BOS(), AddBOS: true})
	if err != nil {
		t.Fatal(err)
	}
	return im
}
