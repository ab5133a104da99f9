package llama2c

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"tamp/internal/testdata"
	"tamp/tensor"
)

// checkTensors compares a checkpoint's tensors with the synthetic model's
// arrays, bit for bit, and checks names, order and shapes.
func checkTensors(t *testing.T, ck *Checkpoint, want map[string][]float32) {
	t.Helper()
	c := ck.Config
	if got, exp := len(ck.Tensors), 3+9*c.Layers; got != exp {
		t.Fatalf("%d tensors, want %d", got, exp)
	}
	order := []string{"attn_q", "attn_k", "attn_v", "attn_output", "attn_norm", "ffn_gate", "ffn_down", "ffn_up", "ffn_norm"}
	for i, tt := range ck.Tensors {
		var name string
		switch {
		case i < 3:
			name = []string{"token_embd.weight", "output_norm.weight", "output.weight"}[i]
		default:
			name = "blk." + strconv.Itoa((i-3)/9) + "." + order[(i-3)%9] + ".weight"
		}
		if tt.Name != name {
			t.Errorf("tensor %d is %s, want %s", i, tt.Name, name)
		}
		if tt.Type != tensor.F32 {
			t.Errorf("%s: type %s, want F32", tt.Name, tt.Type)
		}
		if err := tt.Check(); err != nil {
			t.Error(err)
		}
		w, ok := want[tt.Name]
		if !ok {
			t.Errorf("unexpected tensor %s", tt.Name)
			continue
		}
		got := floats(tt.Data)
		if !slices.EqualFunc(got, w, func(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }) {
			t.Errorf("%s: data differs from the source array", tt.Name)
		}
	}
	shapes := map[string][]int{
		"token_embd.weight":        {c.Dim, c.VocabSize},
		"output.weight":            {c.Dim, c.VocabSize},
		"output_norm.weight":       {c.Dim},
		"blk.0.attn_k.weight":      {c.Dim, c.KVDim()},
		"blk.0.ffn_down.weight":    {c.HiddenDim, c.Dim},
		"blk.0.ffn_gate.weight":    {c.Dim, c.HiddenDim},
		"blk.1.attn_output.weight": {c.Dim, c.Dim},
	}
	for name, dims := range shapes {
		if tt := ck.Tensor(name); tt == nil || !slices.Equal(tt.Dims, dims) {
			t.Errorf("%s: dims %v, want %v", name, tt, dims)
		}
	}
}

func TestReadCheckpointVersions(t *testing.T) {
	const group = 8
	for _, tc := range []struct {
		name    string
		shared  bool
		kvHeads int
		version int
	}{
		{"v0 tied GQA", true, 2, 0},
		{"v0 untied MHA", false, 4, 0},
		{"v1 tied GQA", true, 2, 1},
		{"v1 untied MQA", false, 1, 1},
		{"v2 tied GQA", true, 2, 2},
		{"v2 untied MHA", false, 4, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := smallConfig
			cfg.SharedClassifier, cfg.KVHeads = tc.shared, tc.kvHeads
			m := newSynth(cfg, uint64(tc.version*10+tc.kvHeads))
			var data []byte
			want := m
			switch tc.version {
			case 0:
				data = m.legacy()
			case 1:
				data = m.v1()
			case 2:
				data, want = m.v2(group)
			}
			ck, err := ReadCheckpoint(data)
			if err != nil {
				t.Fatal(err)
			}
			if ck.Config != cfg || ck.Version != tc.version {
				t.Fatalf("config %+v version %d, want %+v version %d", ck.Config, ck.Version, cfg, tc.version)
			}
			if tc.version == 2 && ck.GroupSize != group {
				t.Errorf("group size %d, want %d", ck.GroupSize, group)
			}
			checkTensors(t, ck, want.want())
		})
	}
}

// TestReadCheckpointAliases checks the promise that float32 layouts are not
// copied: the tensors are windows onto the caller's buffer.
func TestReadCheckpointAliases(t *testing.T) {
	data := newSynth(smallConfig, 1).legacy()
	ck, err := ReadCheckpoint(data)
	if err != nil {
		t.Fatal(err)
	}
	emb := ck.Tensor("token_embd.weight").Data
	if &emb[0] != &data[legacyHeaderSize] {
		t.Error("token_embd.weight does not alias the input")
	}
	if &ck.Tensor("output.weight").Data[0] != &emb[0] {
		t.Error("tied output.weight does not share token_embd.weight's data")
	}
}

func readShared(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(testdata.Path(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReadStories260K(t *testing.T) {
	ck, err := ReadCheckpoint(readShared(t, "stories260K.bin"))
	if err != nil {
		t.Fatal(err)
	}
	// PROVENANCE.md §1 states the header.
	want := Config{Dim: 64, HiddenDim: 172, Layers: 5, Heads: 8, KVHeads: 4, VocabSize: 512, SeqLen: 512, SharedClassifier: true}
	if ck.Config != want || ck.Version != 0 {
		t.Fatalf("config %+v version %d, want %+v version 0", ck.Config, ck.Version, want)
	}
	var params int
	for _, tt := range ck.Tensors {
		if tt.Name != "output.weight" { // tied: not a parameter of its own
			params += tt.Elements()
		}
	}
	if params != 260032 {
		t.Errorf("%d parameters, PROVENANCE.md says 260,032", params)
	}
}

// TestReadStories260KQ80 checks the int8 export against the float32 one: the
// norms are bit-exact and every weight is the float32 value quantized with
// symmetric absmax/127 groups of 32 over the flattened tensor (PROVENANCE.md
// §5), so it lies within half a scale step of the original.
func TestReadStories260KQ80(t *testing.T) {
	f32, err := ReadCheckpoint(readShared(t, "stories260K.bin"))
	if err != nil {
		t.Fatal(err)
	}
	q8, err := ReadCheckpoint(readShared(t, "stories260K_q80.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if q8.Version != 2 || q8.GroupSize != 32 || q8.Config != f32.Config {
		t.Fatalf("q80: version %d group %d config %+v; want 2, 32, %+v", q8.Version, q8.GroupSize, q8.Config, f32.Config)
	}
	if len(q8.Tensors) != len(f32.Tensors) {
		t.Fatalf("q80 has %d tensors, f32 %d", len(q8.Tensors), len(f32.Tensors))
	}
	const group = 32
	var checked int
	for i, qt := range q8.Tensors {
		ft := f32.Tensors[i]
		if qt.Name != ft.Name || !slices.Equal(qt.Dims, ft.Dims) {
			t.Fatalf("tensor %d: q80 %s %v, f32 %s %v", i, qt.Name, qt.Dims, ft.Name, ft.Dims)
		}
		if len(qt.Dims) == 1 { // norms stay float32
			if string(qt.Data) != string(ft.Data) {
				t.Errorf("%s: norm differs", qt.Name)
			}
			continue
		}
		w, got := floats(ft.Data), floats(qt.Data)
		q, s := quantize(w, group)
		exact := dequant(q, s, group)
		for j := range w {
			scale := s[j/group]
			if d := math.Abs(float64(got[j] - w[j])); d > float64(scale)/2*(1+1e-5) {
				t.Fatalf("%s[%d] = %g, f32 %g: off by %g, more than scale/2 = %g", qt.Name, j, got[j], w[j], d, scale/2)
			}
			if got[j] != exact[j] {
				t.Fatalf("%s[%d] = %g, want round(w/scale)*scale = %g", qt.Name, j, got[j], exact[j])
			}
			checked++
		}
	}
	// 259,328 quantized values less the 32,768 of the tied output copy.
	if want := 259328; checked != want+32768 {
		t.Errorf("checked %d values, want %d", checked, want+32768)
	}
}

func TestIsCheckpoint(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.bin")
	short := filepath.Join(dir, "short.bin")
	data := newSynth(smallConfig, 2).legacy()
	if err := os.WriteFile(good, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(short, data[:len(data)-4], 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want bool
	}{
		{testdata.Path(t, "stories260K.bin"), true},
		{testdata.Path(t, "stories260K_q80.bin"), true},
		{good, true},
		{testdata.Path(t, "stories260K.gguf"), false},
		{testdata.Path(t, "tok512.bin"), false},
		{testdata.Path(t, "tinystories-sample.txt"), false},
		{short, false},
		{filepath.Join(dir, "missing.bin"), false},
		{dir, false},
	} {
		if got := IsCheckpoint(tc.path); got != tc.want {
			t.Errorf("IsCheckpoint(%s) = %v, want %v", filepath.Base(tc.path), got, tc.want)
		}
	}
}

// legacyHeader builds a 28-byte header followed by nothing.
func legacyHeader(p ...int) []byte {
	b := make([]byte, 4*len(p))
	for i, v := range p {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(int32(v)))
	}
	return b
}

func TestReadCheckpointErrors(t *testing.T) {
	v0 := newSynth(smallConfig, 3).legacy()
	v1 := newSynth(smallConfig, 3).v1()
	v2, _ := newSynth(smallConfig, 3).v2(8)
	patch := func(src []byte, off int, v int32) []byte {
		b := slices.Clone(src)
		binary.LittleEndian.PutUint32(b[off:], uint32(v))
		return b
	}
	nanScale := slices.Clone(v2)
	// The first scale of token_embedding follows the norms and its int8 values.
	c := smallConfig
	off := 256 + 4*(2*c.Layers+1)*c.Dim + c.VocabSize*c.Dim
	binary.LittleEndian.PutUint32(nanScale[off:], math.Float32bits(float32(math.NaN())))
	badFlag := slices.Clone(v1)
	badFlag[36] = 7

	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"short legacy header", v0[:20], "legacy header needs 28 bytes"},
		{"short ak42 header", v1[:100], "ak42 header needs 256 bytes"},
		{"zero dim", patch(v0, 0, 0), "dim = 0, must be positive"},
		{"negative layers", patch(v0, 8, -5), "n_layers = -5"},
		{"zero vocab", patch(v0, 20, 0), "vocab_size = 0"},
		{"zero seq_len", patch(v0, 24, 0), "seq_len = 0"},
		{"heads do not divide dim", patch(v0, 12, 3), "not a multiple of n_heads 3"},
		{"kv heads do not divide heads", patch(v0, 16, 3), "not a multiple of n_kv_heads 3"},
		{"odd head size", patch(patch(v0, 12, 16), 16, 16), "head size 1"},
		{"truncated v0", v0[:len(v0)-1], "should be"},
		{"v0 one float too many", append(slices.Clone(v0), 0, 0, 0, 0), "file is"},
		{"v0 untied flag without classifier", patch(v0, 20, -int32(c.VocabSize)), "shared classifier false"},
		{"v0 giant dims", patch(patch(v0, 0, 1<<20), 4, 1<<20), "should be"},
		{"v0 overflowing dims", legacyHeader(1<<30, 1<<30, 1<<30, 1<<29, 1<<29, 1<<30, 1<<30), "larger than any real checkpoint"},
		{"unknown version", patch(v1, 4, 3), "unsupported ak42 checkpoint version 3"},
		{"bad shared flag", badFlag, "shared_classifier flag is 7"},
		{"truncated v1", v1[:len(v1)-8], "file is"},
		{"truncated v2", v2[:len(v2)-3], "file is"},
		{"zero group", patch(v2, 37, 0), "group_size 0 must be positive"},
		{"group not dividing", patch(v2, 37, 7), "not a multiple of group_size 7"},
		{"NaN scale", nanScale, "token_embedding[0] group 0 has scale NaN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ck, err := ReadCheckpoint(tc.data)
			if err == nil {
				t.Fatalf("no error; read %+v", ck.Config)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// TestSizeErrorNamesBothSizes checks the message a wrong file gets: the size
// the header implies and the size found.
func TestSizeErrorNamesBothSizes(t *testing.T) {
	data := newSynth(smallConfig, 4).legacy()
	_, err := ReadCheckpoint(data[:len(data)-4])
	if err == nil {
		t.Fatal("no error for a truncated checkpoint")
	}
	for _, want := range []string{"should be " + strconv.Itoa(len(data)) + " bytes", "file is " + strconv.Itoa(len(data)-4)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
