package gguf

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tamp/internal/testdata"
	"tamp/tensor"
)

// realFiles are every GGUF file in the shared test data.
var realFiles = []string{
	"stories260K.gguf",
	"stories260K-F32.gguf",
	"stories260K-Q8_0-mixed.gguf",
	"stories260K-Q4_0-mixed.gguf",
	"golden/tiny-llama-gqa.gguf",
	"golden/tiny-mixtral.gguf",
	"golden/tiny-qwen2.gguf",
	"tokenizers/ggml-vocab-gpt-2.gguf",
	"tokenizers/ggml-vocab-llama-spm.gguf",
}

// TestRoundTripRealFiles opens each real file and writes it back: the bytes
// must be identical, through WriteTo and through WriteFile.
func TestRoundTripRealFiles(t *testing.T) {
	for _, name := range realFiles {
		t.Run(name, func(t *testing.T) {
			path := testdata.Path(t, name)
			orig, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			offsets := make([]uint64, len(f.Tensors))
			for i, tn := range f.Tensors {
				offsets[i] = tn.Offset
				if err := tn.Tensor().Check(); err != nil {
					t.Error(err)
				}
			}
			dataOffset := f.DataOffset
			var buf bytes.Buffer
			n, err := f.WriteTo(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if n != int64(buf.Len()) || !bytes.Equal(buf.Bytes(), orig) {
				t.Fatalf("written back as %d bytes (reported %d), differing from the %d-byte original at byte %d",
					buf.Len(), n, len(orig), firstDiff(buf.Bytes(), orig))
			}
			if f.DataOffset != dataOffset {
				t.Errorf("DataOffset moved from %d to %d", dataOffset, f.DataOffset)
			}
			for i, tn := range f.Tensors {
				if tn.Offset != offsets[i] {
					t.Errorf("%s: offset moved from %d to %d", tn.Name, offsets[i], tn.Offset)
				}
			}

			out := filepath.Join(t.TempDir(), "copy.gguf")
			if err := WriteFile(out, f); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, orig) {
				t.Errorf("WriteFile output differs from the original at byte %d", firstDiff(got, orig))
			}

			// Parse on the bytes agrees with Open on the file.
			p, err := Parse(orig)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.KV) != len(f.KV) || len(p.Tensors) != len(f.Tensors) || p.DataOffset != f.DataOffset {
				t.Errorf("Parse and Open disagree")
			}
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestStories260K checks the header and metadata against PROVENANCE.md and
// PROVENANCE-gguf.md, and the data against the llama2.c checkpoint.
func TestStories260K(t *testing.T) {
	f, err := Open(testdata.Path(t, "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Version != 3 || len(f.Tensors) != 48 || len(f.KV) != 19 || f.DataOffset != 14176 || f.Alignment != 32 {
		t.Errorf("header: version %d, %d tensors, %d KVs, data at %d, alignment %d; want 3, 48, 19, 14176, 32",
			f.Version, len(f.Tensors), len(f.KV), f.DataOffset, f.Alignment)
	}
	if a := f.Architecture(); a != "llama" {
		t.Errorf("architecture %q", a)
	}
	for key, want := range map[string]uint64{
		"llama.embedding_length":          64,
		"llama.feed_forward_length":       172,
		"llama.block_count":               5,
		"llama.attention.head_count":      8,
		"llama.attention.head_count_kv":   4,
		"llama.rope.dimension_count":      8,
		"llama.context_length":            2048,
		"tokenizer.ggml.unknown_token_id": 0,
		"tokenizer.ggml.bos_token_id":     1,
		"tokenizer.ggml.eos_token_id":     2,
		"tokenizer.ggml.padding_token_id": math.MaxUint32,
	} {
		if got, ok := f.Uint(key); !ok || got != want {
			t.Errorf("%s = %d, %v; want %d", key, got, ok, want)
		}
	}
	if _, ok := f.Lookup("llama.rope.freq_base"); ok {
		t.Error("llama.rope.freq_base is present; PROVENANCE says it is not")
	}
	if eps, ok := f.Float("llama.attention.layer_norm_rms_epsilon"); !ok || float32(eps) != 1e-5 {
		t.Errorf("rms epsilon %g, %v", eps, ok)
	}
	if m, ok := f.String("tokenizer.ggml.model"); !ok || m != "llama" {
		t.Errorf("tokenizer model %q", m)
	}
	toks, ok1 := f.Strings("tokenizer.ggml.tokens")
	scores, ok2 := f.Float32s("tokenizer.ggml.scores")
	types, ok3 := f.Int32s("tokenizer.ggml.token_type")
	if !ok1 || !ok2 || !ok3 || len(toks) != 512 || len(scores) != 512 || len(types) != 512 {
		t.Fatalf("vocabulary: %d tokens, %d scores, %d types", len(toks), len(scores), len(types))
	}
	if toks[1] != "<s>" || toks[2] != "</s>" {
		t.Errorf("bos/eos pieces %q %q", toks[1], toks[2])
	}

	for _, tn := range f.Tensors {
		if tn.Type != tensor.F32 {
			t.Errorf("%s is %s, want F32", tn.Name, tn.Type)
		}
	}
	k, ok := f.Tensor("blk.0.attn_k.weight")
	if !ok || len(k.Dims) != 2 || k.Dims[0] != 64 || k.Dims[1] != 32 {
		t.Errorf("blk.0.attn_k.weight: %+v", k)
	}
	emb, ok1 := f.Tensor("token_embd.weight")
	out, ok2 := f.Tensor("output.weight")
	if !ok1 || !ok2 || !bytes.Equal(emb.Data, out.Data) {
		t.Error("output.weight should be a copy of token_embd.weight (tied)")
	}

	// The embedding is the first array after the 28-byte llama2.c header.
	bin, err := os.ReadFile(testdata.Path(t, "stories260K.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if dim := binary.LittleEndian.Uint32(bin); dim != 64 || !bytes.Equal(emb.Data, bin[28:28+512*64*4]) {
		t.Error("token_embd.weight differs from the llama2.c checkpoint")
	}
}

// TestQuantizedVariants checks the types PROVENANCE-gguf.md gives each tensor.
func TestQuantizedVariants(t *testing.T) {
	cases := []struct {
		file                 string
		fileType             uint64
		matrix, output, down tensor.Type
	}{
		{"stories260K-F32.gguf", 0, tensor.F32, tensor.F32, tensor.F32},
		{"stories260K-Q8_0-mixed.gguf", 7, tensor.Q8_0, tensor.Q8_0, tensor.F16},
		{"stories260K-Q4_0-mixed.gguf", 2, tensor.Q4_0, tensor.Q8_0, tensor.F16},
	}
	for _, c := range cases {
		f, err := Open(testdata.Path(t, c.file))
		if err != nil {
			t.Fatal(err)
		}
		if ft, ok := f.Uint("general.file_type"); !ok || ft != c.fileType {
			t.Errorf("%s: general.file_type %d, want %d", c.file, ft, c.fileType)
		}
		if qv, ok := f.Uint("general.quantization_version"); !ok || qv != 2 {
			t.Errorf("%s: general.quantization_version %d", c.file, qv)
		}
		if len(f.Tensors) != 48 {
			t.Errorf("%s: %d tensors", c.file, len(f.Tensors))
		}
		for _, tn := range f.Tensors {
			want := c.matrix
			switch {
			case len(tn.Dims) == 1:
				want = tensor.F32
			case tn.Name == "output.weight":
				want = c.output
			case strings.HasSuffix(tn.Name, "ffn_down.weight"):
				want = c.down
			}
			if tn.Type != want {
				t.Errorf("%s: %s is %s, want %s", c.file, tn.Name, tn.Type, want)
			}
		}
		f.Close()
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.gguf")
	bad := filepath.Join(dir, "bad.gguf")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r := validRaw()
	r.tensors[1].typ = 77
	if err := os.WriteFile(bad, r.encode(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, want string }{
		{filepath.Join(dir, "missing.gguf"), "no such file"},
		{dir, "not a regular file"},
		{empty, "empty.gguf: header.magic at byte 0: truncated"},
		{bad, "bad.gguf: tensor_info[1].type"},
	} {
		f, err := Open(c.path)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%s) = %v, want an error containing %q", c.path, err, c.want)
		}
		if f != nil {
			t.Errorf("Open(%s) returned a File with its error", c.path)
		}
	}
}

func TestClose(t *testing.T) {
	f, err := Open(testdata.Path(t, "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if f.Tensors[0].Data != nil {
		t.Error("Data still points into the released mapping")
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if v, ok := f.Uint("llama.block_count"); !ok || v != 5 {
		t.Error("metadata must outlive the mapping")
	}
}

// TestRewriteOpenFile replaces the very file a File was opened from.
func TestRewriteOpenFile(t *testing.T) {
	orig, err := os.ReadFile(testdata.Path(t, "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := os.WriteFile(path, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Set("general.name", String("rewritten"))
	if err := WriteFile(path, f); err != nil {
		t.Fatal(err)
	}
	g, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if name, _ := g.String("general.name"); name != "rewritten" {
		t.Errorf("general.name %q", name)
	}
	for i, tn := range g.Tensors {
		if !bytes.Equal(tn.Data, f.Tensors[i].Data) {
			t.Fatalf("%s changed", tn.Name)
		}
	}
	if st, err := os.Stat(path); err != nil {
		t.Error(err)
	} else if st.Mode().Perm() != 0o600 {
		t.Errorf("mode after rewrite %v, want the original's -rw-------", st.Mode())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the file", len(entries))
	}
}

func BenchmarkParseVocab(b *testing.B) {
	data, err := os.ReadFile(testdata.Path(b, "tokenizers/ggml-vocab-gpt-2.gguf"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteModel(b *testing.B) {
	f, err := Open(testdata.Path(b, "golden/tiny-mixtral.gguf"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		if _, err := f.WriteTo(&buf); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(buf.Len()))
}
