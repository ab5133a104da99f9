package eval_test

import (
	"bytes"
	"context"
	"math"
	"os"
	"testing"

	"tamp/eval"
	"tamp/gguf"
	"tamp/internal/testdata"
	"tamp/model"
	"tamp/tokenizer"
)

// TestGoldenPerplexity reproduces llama.cpp's llama-perplexity figures for
// stories260K on tinystories-sample.txt (golden/README.md): perplexity within
// 0.5 % and KL divergence of the quantized files to F32 within 5 %. Each pass
// scores the whole 295k-token text (five passes, several minutes on two
// cores), so it runs only with TAMP_LONG=1; .ci/run sets it with a long timeout.
func TestGoldenPerplexity(t *testing.T) {
	if os.Getenv("TAMP_LONG") != "1" {
		t.Skip("full-text perplexity passes take minutes; run with TAMP_LONG=1 go test -timeout 60m -run TestGoldenPerplexity ./eval")
	}
	text, err := os.ReadFile(testdata.Path(t, "tinystories-sample.txt"))
	if err != nil {
		t.Fatal(err)
	}
	open := func(t *testing.T, name string) (*model.Model, *tokenizer.Tokenizer) {
		f, err := gguf.Open(testdata.Path(t, name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		m, err := model.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := tokenizer.FromGGUF(f)
		if err != nil {
			t.Fatal(err)
		}
		return m, tok
	}
	f32, tok := open(t, "stories260K.gguf")
	tokens := tok.Encode(string(text), true, false)
	run := func(t *testing.T, m *model.Model, ctx int, opts eval.Options) *eval.Result {
		sc, err := m.NewScorer(model.SessionOptions{Context: ctx})
		if err != nil {
			t.Fatal(err)
		}
		opts.Ctx, opts.BOS, opts.AddBOS = ctx, tok.BOS(), tok.AddBOS()
		res, err := eval.Perplexity(context.Background(), sc, tokens, opts)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	within := func(t *testing.T, what string, got, want, rel float64) {
		t.Helper()
		t.Logf("%s = %.6g (llama.cpp %.6g, %+.2f%%)", what, got, want, 100*(got/want-1))
		if math.Abs(got/want-1) > rel {
			t.Errorf("%s = %.6g, llama.cpp's %.6g: off by more than %.1f%%", what, got, want, 100*rel)
		}
	}

	var base bytes.Buffer
	res := run(t, f32, 128, eval.Options{SaveBase: &base})
	within(t, "F32 PPL ctx 128", res.PPL, 5.0046, 0.005)
	baseBytes := base.Bytes()

	t.Run("passes", func(t *testing.T) {
		for _, ctx := range []struct {
			n    int
			want float64
		}{{256, 4.8794}, {512, 4.9991}} {
			t.Run("F32", func(t *testing.T) {
				t.Parallel()
				within(t, "F32 PPL ctx "+itoa(ctx.n), run(t, f32, ctx.n, eval.Options{}).PPL, ctx.want, 0.005)
			})
		}
		for _, q := range []struct {
			file     string
			ppl, kld float64
		}{
			{"stories260K-Q8_0-mixed.gguf", 5.0115, 0.000755},
			{"stories260K-Q4_0-mixed.gguf", 5.2965, 0.0855},
		} {
			t.Run(q.file, func(t *testing.T) {
				t.Parallel()
				m, _ := open(t, q.file)
				b, err := eval.ReadBase(bytes.NewReader(baseBytes))
				if err != nil {
					t.Fatal(err)
				}
				res := run(t, m, 128, eval.Options{Base: b})
				within(t, q.file+" PPL ctx 128", res.PPL, q.ppl, 0.005)
				within(t, q.file+" mean KLD", res.KLD.Mean, q.kld, 0.05)
			})
		}
	})
}

func itoa(n int) string {
	b := []byte{}
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
