package llama2c

import (
	"testing"
)

// fuzzConfig is tiny so the fuzzer can reach the end of valid files quickly.
var fuzzConfig = Config{Dim: 4, HiddenDim: 6, Layers: 1, Heads: 2, KVHeads: 1, VocabSize: 3, SeqLen: 2, SharedClassifier: true}

func FuzzReadCheckpoint(f *testing.F) {
	for _, shared := range []bool{true, false} {
		cfg := fuzzConfig
		cfg.SharedClassifier = shared
		m := newSynth(cfg, 7)
		v2, _ := m.v2(2)
		for _, seed := range [][]byte{m.legacy(), m.v1(), v2} {
			f.Add(seed)
			f.Add(seed[:len(seed)/2])
		}
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		ck, err := ReadCheckpoint(data)
		if err != nil {
			return
		}
		// Whatever parses must be self-consistent.
		if err := ck.Config.Validate(); err != nil {
			t.Fatalf("accepted an invalid config: %v", err)
		}
		if len(ck.Tensors) != 3+9*ck.Config.Layers {
			t.Fatalf("%d tensors for %d layers", len(ck.Tensors), ck.Config.Layers)
		}
		for _, tt := range ck.Tensors {
			if err := tt.Check(); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func FuzzReadTokenizer(f *testing.F) {
	pieces, scores := synthVocab(12)
	good := tokFile(7, pieces, scores)
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add(tokFile(1, []string{"", "a"}, []float32{0, -1}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := ReadTokenizer(data)
		if err != nil {
			return
		}
		if len(tok.Pieces) == 0 || len(tok.Pieces) != len(tok.Scores) {
			t.Fatalf("%d pieces, %d scores", len(tok.Pieces), len(tok.Scores))
		}
		for i, p := range tok.Pieces {
			if len(p) > tok.MaxTokenLength {
				t.Fatalf("piece %d is %d bytes, max %d", i, len(p), tok.MaxTokenLength)
			}
		}
		tokens, types := Vocab(tok)
		if len(tokens) != len(tok.Pieces) || len(types) != len(tok.Pieces) {
			t.Fatal("Vocab changed the token count")
		}
	})
}
