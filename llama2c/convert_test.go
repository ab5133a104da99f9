package llama2c

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"tamp/gguf"
	"tamp/internal/testdata"
)

// intendedDiffs are the keys where Convert deliberately writes the model's
// own value instead of the reference converter's placeholder (see Convert).
var intendedDiffs = map[string]gguf.Value{
	"llama.context_length": gguf.Uint32(512),           // reference: 2048, its default
	"general.name":         gguf.String("stories260K"), // reference: "llama"
}

func loadStories(t *testing.T) *gguf.File {
	t.Helper()
	f, err := Load(testdata.Path(t, "stories260K.bin"), testdata.Path(t, "tok512.bin"))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func openRef(t *testing.T) *gguf.File {
	t.Helper()
	ref, err := gguf.Open(testdata.Path(t, "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ref.Close() })
	return ref
}

// compareTensors requires got to hold ref's tensors in ref's order, with the
// same names, dims, types and bytes.
func compareTensors(t *testing.T, got, ref *gguf.File) {
	t.Helper()
	if len(got.Tensors) != len(ref.Tensors) {
		t.Fatalf("%d tensors, reference has %d", len(got.Tensors), len(ref.Tensors))
	}
	for i, rt := range ref.Tensors {
		gt := got.Tensors[i]
		if gt.Name != rt.Name || gt.Type != rt.Type || !slices.Equal(gt.Dims, rt.Dims) {
			t.Errorf("tensor %d: %s %s %v, reference %s %s %v", i, gt.Name, gt.Type, gt.Dims, rt.Name, rt.Type, rt.Dims)
			continue
		}
		if string(gt.Data) != string(rt.Data) {
			t.Errorf("%s: data differs from the reference", gt.Name)
		}
	}
}

// compareKV requires got's metadata to equal ref's key by key and in order,
// except for intendedDiffs.
func compareKV(t *testing.T, got, ref *gguf.File) {
	t.Helper()
	var gk, rk []string
	for _, kv := range got.KV {
		gk = append(gk, kv.Key)
	}
	for _, kv := range ref.KV {
		rk = append(rk, kv.Key)
	}
	if !slices.Equal(gk, rk) {
		t.Errorf("keys\n%q\nreference\n%q", gk, rk)
	}
	for _, kv := range ref.KV {
		want := kv.Value
		if v, ok := intendedDiffs[kv.Key]; ok {
			want = v
		}
		g, ok := got.Lookup(kv.Key)
		if !ok {
			continue // reported above
		}
		if !reflect.DeepEqual(g, want) {
			t.Errorf("%s = %s, want %s", kv.Key, short(g), short(want))
		}
	}
}

func short(v gguf.Value) string {
	s := fmt.Sprintf("%s %s", v.Type, v)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

func TestLoadMatchesReference(t *testing.T) {
	got := loadStories(t)
	ref := openRef(t)
	compareTensors(t, got, ref)
	compareKV(t, got, ref)
	// The reference holds the values intendedDiffs replaces; if it did not,
	// the exceptions would be hiding nothing and should go.
	for key, v := range intendedDiffs {
		if r, _ := ref.Lookup(key); reflect.DeepEqual(r, v) {
			t.Errorf("%s: reference already has %s; drop the exception", key, v)
		}
	}
}

// TestWriteRoundTrip writes the converted model and reads it back: what the
// CLI's convert command produces must be a GGUF file equal to the reference
// up to the intended differences.
func TestWriteRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.gguf")
	if err := gguf.WriteFile(path, loadStories(t)); err != nil {
		t.Fatal(err)
	}
	back, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	ref := openRef(t)
	compareTensors(t, back, ref)
	compareKV(t, back, ref)
}

// TestLoadQ80 converts the int8 export: same tensors and metadata as the
// float32 one, weights within half a quantization step (checked value by
// value in TestReadStories260KQ80).
func TestLoadQ80(t *testing.T) {
	f32 := loadStories(t)
	q8, err := Load(testdata.Path(t, "stories260K_q80.bin"), testdata.Path(t, "tok512.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if len(q8.KV) != len(f32.KV) {
		t.Fatalf("%d keys, f32 conversion %d", len(q8.KV), len(f32.KV))
	}
	for i, kv := range f32.KV {
		if kv.Key == "general.name" {
			continue
		}
		if q8.KV[i].Key != kv.Key || !reflect.DeepEqual(q8.KV[i].Value, kv.Value) {
			t.Errorf("key %d: %s = %s, f32 %s = %s", i, q8.KV[i].Key, short(q8.KV[i].Value), kv.Key, short(kv.Value))
		}
	}
	var differ int
	for i, ft := range f32.Tensors {
		qt := q8.Tensors[i]
		if qt.Name != ft.Name || qt.Type != ft.Type || !slices.Equal(qt.Dims, ft.Dims) {
			t.Errorf("tensor %d: %s %s %v, f32 %s %s %v", i, qt.Name, qt.Type, qt.Dims, ft.Name, ft.Type, ft.Dims)
		}
		if string(qt.Data) != string(ft.Data) {
			differ++
		}
	}
	// Everything but the 11 norms went through int8.
	if want := len(f32.Tensors) - 11; differ != want {
		t.Errorf("%d tensors differ from f32, want %d (all but the norms)", differ, want)
	}
}

func TestVocabMatchesReference(t *testing.T) {
	tok, err := ReadTokenizer(readShared(t, "tok512.bin"))
	if err != nil {
		t.Fatal(err)
	}
	ref := openRef(t)
	tokens, types := Vocab(tok)
	wantTokens, _ := ref.Strings("tokenizer.ggml.tokens")
	wantTypes, _ := ref.Int32s("tokenizer.ggml.token_type")
	if len(wantTokens) != 512 || len(wantTypes) != 512 {
		t.Fatalf("reference vocabulary has %d tokens, %d types", len(wantTokens), len(wantTypes))
	}
	for i := range tokens {
		if tokens[i] != wantTokens[i] || types[i] != wantTypes[i] {
			t.Errorf("token %d: %q type %d, reference %q type %d", i, tokens[i], types[i], wantTokens[i], wantTypes[i])
		}
	}
}

func TestVocabRules(t *testing.T) {
	tok := &Tokenizer{
		Pieces: []string{"anything", "x", "y", "", "<0x1F>", "<0xab>", "<0x4", "<0x+4>", "<0x1F>z", " a b", "plain"},
		Scores: make([]float32, 11),
	}
	tokens, types := Vocab(tok)
	wantTokens := []string{"<unk>", "<s>", "</s>", "", "<0x1F>", "<0xab>", "<0x4", "<0x+4>", "<0x1F>z", "▁a▁b", "plain"}
	wantTypes := []int32{2, 3, 3, 3, 6, 6, 1, 1, 1, 1, 1}
	if !slices.Equal(tokens, wantTokens) || !slices.Equal(types, wantTypes) {
		t.Errorf("got %q %v\nwant %q %v", tokens, types, wantTokens, wantTypes)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ck := write("m.bin", newSynth(smallConfig, 6).legacy())
	p, s := synthVocab(smallConfig.VocabSize + 1)
	bigTok := write("big.bin", tokFile(7, p, s))
	p, s = synthVocab(smallConfig.VocabSize)
	goodTok := write("good.bin", tokFile(7, p, s))
	badCk := write("bad.bin", newSynth(smallConfig, 6).legacy()[:100])
	for _, tc := range []struct {
		name, ck, tok, want string
	}{
		{"vocab mismatch", ck, bigTok, "vocab size mismatch: checkpoint " + ck + " has 24 tokens, tokenizer " + bigTok + " has 25"},
		{"bad checkpoint", badCk, goodTok, "bad.bin"},
		{"missing checkpoint", filepath.Join(dir, "nope.bin"), goodTok, "nope.bin"},
		{"missing tokenizer", ck, filepath.Join(dir, "nope-tok.bin"), "nope-tok.bin"},
		{"no tokenizer anywhere", ck, "", "--tokenizer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.ck, tc.tok)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	// The happy path on the same files, so the table above fails for the
	// reasons it names.
	if _, err := Load(ck, goodTok); err != nil {
		t.Errorf("good files: %v", err)
	}
}

func ExampleLoad() {
	dir, err := testdata.Lookup()
	if err != nil {
		fmt.Println(err)
		return
	}
	f, err := Load(filepath.Join(dir, "stories260K.bin"), filepath.Join(dir, "tok512.bin"))
	if err != nil {
		fmt.Println(err)
		return
	}
	arch, _ := f.String("general.architecture")
	ctx, _ := f.Uint("llama.context_length")
	emb, _ := f.Tensor("token_embd.weight")
	fmt.Println(arch, ctx, len(f.Tensors), emb.Type, emb.Dims)
	// Output: llama 512 48 F32 [64 512]
}
