package tokenizer

import (
	"os"
	"testing"

	"tamp/internal/testdata"
)

// benchEncode tokenizes the 600 KB TinyStories sample in one call.
func benchEncode(b *testing.B, vocab string) {
	tok := loadGGUF(b, vocab)
	data, err := os.ReadFile(testdata.Path(b, "tinystories-sample.txt"))
	if err != nil {
		b.Fatal(err)
	}
	text := string(data)
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	var n int
	for b.Loop() {
		n = len(tok.Encode(text, true, false))
	}
	b.ReportMetric(float64(n), "tokens")
}

func BenchmarkEncodeTinyStoriesSPM(b *testing.B) { benchEncode(b, "stories260K.gguf") }

func BenchmarkEncodeTinyStoriesBPE(b *testing.B) {
	benchEncode(b, "tokenizers/ggml-vocab-gpt-2.gguf")
}
