package eval

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// quantStep is the largest storage step of a base row: 16 nats over 65535.
const quantStep = 16.0 / 65535

// saveBase runs s over tokens with SaveBase and returns the file.
func saveBase(t *testing.T, s Scorer, tokens []int32, opts Options) ([]byte, *Result) {
	t.Helper()
	var buf bytes.Buffer
	opts.SaveBase = &buf
	res, err := Perplexity(context.Background(), s, tokens, opts)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), res
}

func mustReadBase(t *testing.T, file []byte) *Base {
	t.Helper()
	b, err := ReadBase(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestKLDSelf(t *testing.T) {
	const vocab, ctx = 11, 16
	s := newBigram(vocab, 3)
	tokens := randomTokens(ctx*20+5, vocab, 4)
	opts := Options{Ctx: ctx, BOS: 1, AddBOS: true}
	plain, err := Perplexity(context.Background(), s, tokens, opts)
	if err != nil {
		t.Fatal(err)
	}
	file, saved := saveBase(t, s, tokens, opts)
	// Saving rounds the NLL differently (single-precision log-sum-exp) but must
	// not change the perplexity beyond that rounding.
	if math.Abs(saved.PPL-plain.PPL) > 1e-5*plain.PPL || saved.Tokens != plain.Tokens {
		t.Errorf("PPL while saving %.7f over %d tokens, plain %.7f over %d", saved.PPL, saved.Tokens, plain.PPL, plain.Tokens)
	}
	for _, tc := range []struct {
		name   string
		tokens []int32
	}{{"base tokens", nil}, {"text tokens", tokens}} {
		t.Run(tc.name, func(t *testing.T) {
			opts := opts
			opts.Ctx = 0 // taken from the base file
			opts.Base = mustReadBase(t, file)
			res, err := Perplexity(context.Background(), s, tc.tokens, opts)
			if err != nil {
				t.Fatal(err)
			}
			k := res.KLD
			if k == nil {
				t.Fatal("no KLD statistics")
			}
			if k.Count != plain.Tokens || res.Tokens != plain.Tokens || res.Chunks != 20 || res.Ctx != ctx {
				t.Errorf("count %d, tokens %d, chunks %d, ctx %d; want %d, %d, 20, %d", k.Count, res.Tokens, res.Chunks, res.Ctx, plain.Tokens, plain.Tokens, ctx)
			}
			// The stored log-probabilities are rounded to within half a step.
			if math.Abs(k.Mean) > quantStep/2 || k.Max > quantStep || k.Min < -quantStep {
				t.Errorf("self KLD mean %g, range [%g, %g]; want within the storage step %g", k.Mean, k.Min, k.Max, quantStep)
			}
			if k.SameTop != 1 || k.SameTopErr != 0 {
				t.Errorf("same top %g ± %g, want 1 ± 0", k.SameTop, k.SameTopErr)
			}
			if math.Abs(k.PPL-plain.PPL) > 1e-5*plain.PPL || math.Abs(k.BasePPL-plain.PPL) > quantStep*plain.PPL {
				t.Errorf("PPL(Q) %.6f, PPL(base) %.6f, want both %.6f", k.PPL, k.BasePPL, plain.PPL)
			}
			if res.PPL != k.PPL || math.Abs(k.PPLRatio-1) > quantStep || math.Abs(k.LogPPLCor-1) > 1e-3 {
				t.Errorf("PPL %g vs %g, ratio %g, correlation %g", res.PPL, k.PPL, k.PPLRatio, k.LogPPLCor)
			}
			if math.Abs(k.DeltaP.Mean) > quantStep || k.DeltaP.RMS > quantStep {
				t.Errorf("Δp mean %g, RMS %g: want about 0", k.DeltaP.Mean, k.DeltaP.RMS)
			}
		})
	}
}

// TestKLDPerturbed compares the bigram model with a perturbed copy and checks
// every statistic against a float64 computation from the exact distributions.
func TestKLDPerturbed(t *testing.T) {
	const vocab, ctx, chunks = 13, 20, 30
	base := newBigram(vocab, 5)
	model := newBigram(vocab, 5)
	model.perturb = func(pos, v int) float64 { return 0.4 * math.Sin(float64(3*pos+7*v)) }
	tokens := randomTokens(ctx*chunks, vocab, 6)
	file, _ := saveBase(t, base, tokens, Options{Ctx: ctx})
	res, err := Perplexity(context.Background(), model, tokens, Options{Ctx: ctx, Base: mustReadBase(t, file)})
	if err != nil {
		t.Fatal(err)
	}
	k := res.KLD

	var klds, dps []float64
	var nll, nllBase float64
	same := 0
	first := ctx / 2
	for c := range chunks {
		for j := first; j < ctx-1; j++ {
			prev, next := tokens[c*ctx+j], tokens[c*ctx+j+1]
			p := base.exactRow(prev, j)
			q := model.exactRow(prev, j)
			var kl float64
			for v := range p {
				kl += math.Exp(p[v]) * (p[v] - q[v])
			}
			klds = append(klds, kl)
			dps = append(dps, math.Exp(q[next])-math.Exp(p[next]))
			nll -= q[next]
			nllBase -= p[next]
			if argmax(p) == argmax(q) {
				same++
			}
		}
	}
	n := float64(len(klds))
	if k.Count != len(klds) {
		t.Fatalf("count %d, want %d", k.Count, len(klds))
	}
	mean := sum(klds) / n
	if mean < 1e-3 {
		t.Fatalf("perturbation too weak for a meaningful test: mean KLD %g", mean)
	}
	slices.Sort(klds)
	slices.Sort(dps)
	// Each position's KLD is off by at most about half a storage step times
	// (1 + |log p/q|) from quantizing the base.
	const tol = 2 * quantStep
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"mean KLD", k.Mean, mean},
		{"max KLD", k.Max, klds[len(klds)-1]},
		{"min KLD", k.Min, klds[0]},
		{"median KLD", k.Median, (klds[len(klds)/2] + klds[len(klds)/2-1]) / 2},
		{"99% KLD", k.P99, interp(klds, 0.99)},
		{"90% KLD", k.P90, interp(klds, 0.90)},
		{"mean Δp", k.DeltaP.Mean, sum(dps) / n},
		{"max Δp", k.DeltaP.Max, dps[len(dps)-1]},
		{"same top", k.SameTop, float64(same) / n},
		{"ln PPL(Q)", math.Log(k.PPL), nll / n},
		{"ln PPL(base)", math.Log(k.BasePPL), nllBase / n},
		{"ln PPL ratio", k.LogPPLRatio, (nll - nllBase) / n},
	} {
		if math.Abs(c.got-c.want) > tol {
			t.Errorf("%s: %.7f, want %.7f", c.name, c.got, c.want)
		}
	}
	if k.MeanErr <= 0 || k.PPLErr <= 0 || k.BasePPLErr <= 0 {
		t.Errorf("uncertainties %g, %g, %g should be positive", k.MeanErr, k.PPLErr, k.BasePPLErr)
	}

	// The same figures without a file, through AddLogits.
	var acc KLDAccumulator
	bl := make([]float32, ctx*vocab)
	ml := make([]float32, ctx*vocab)
	for c := range chunks {
		chunk := tokens[c*ctx : (c+1)*ctx]
		if err := base.Logits(chunk, bl); err != nil {
			t.Fatal(err)
		}
		if err := model.Logits(chunk, ml); err != nil {
			t.Fatal(err)
		}
		for j := first; j < ctx-1; j++ {
			if _, err := acc.AddLogits(ml[j*vocab:(j+1)*vocab], bl[j*vocab:(j+1)*vocab], chunk[j+1]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := acc.Stats(); *got != *k {
		t.Errorf("AddLogits statistics differ from the file run:\n%+v\n%+v", got, k)
	}

	var b strings.Builder
	if err := res.Format(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Mean    KLD:", "99.0%   KLD:", "Same top p:", "Mean PPL(base)", "RMS Δp"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}

func argmax(x []float64) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

func sum(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	return s
}

// interp is the textbook linear-interpolation percentile, in float64.
func interp(sorted []float64, f float64) float64 {
	p := f * float64(len(sorted)-1)
	i := int(p)
	return sorted[i] + (p-float64(i))*(sorted[min(i+1, len(sorted)-1)]-sorted[i])
}

func TestKLDMismatch(t *testing.T) {
	const vocab, ctx = 9, 10
	s := newBigram(vocab, 1)
	tokens := randomTokens(ctx*4, vocab, 2)
	file, _ := saveBase(t, s, tokens, Options{Ctx: ctx})
	other := slices.Clone(tokens)
	other[23]++
	other[23] %= vocab
	for _, tc := range []struct {
		name   string
		s      Scorer
		tokens []int32
		opts   Options
		want   string
	}{
		{"vocabulary", newBigram(vocab+1, 1), nil, Options{}, "vocabulary of 10, the base file 9"},
		{"ctx", s, nil, Options{Ctx: 12}, "ctx 12, but the base file was computed with ctx 10"},
		{"different text", s, other, Options{}, "token 23"},
		{"short text", s, tokens[:35], Options{}, "35 tokens given"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Base = mustReadBase(t, file)
			_, err := Perplexity(context.Background(), tc.s, tc.tokens, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	// A limited run needs only its chunks' tokens to match.
	res, err := Perplexity(context.Background(), s, other, Options{Base: mustReadBase(t, file), MaxChunks: 2})
	if err != nil || res.Chunks != 2 {
		t.Errorf("two-chunk run over a text differing in chunk 3: %v, %+v", err, res)
	}
}

func TestEncodeBaseRow(t *testing.T) {
	for _, tc := range []struct {
		name   string
		logits []float32
	}{
		{"odd vocabulary with a clamped tail", []float32{0, -1, -2, -20, 5}},
		{"even vocabulary", []float32{1, 2, 3, 4.5, -3, 0.25}},
		{"single token", []float32{7}},
		{"all equal", []float32{3, 3, 3, 3}},
		{"large logits", []float32{1e4, 1e4 - 3, 1e4 - 40, 1e4 - 0.5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := len(tc.logits)
			row := make([]uint16, BaseRowLen(n))
			for i := range row {
				row[i] = 0xffff // must all be overwritten
			}
			nll, err := EncodeBaseRow(row, tc.logits, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(row) != 4+n+n%2 {
				t.Errorf("row length %d for vocabulary %d", len(row), n)
			}
			if n%2 == 1 && row[len(row)-1] != 0 {
				t.Errorf("padding is %d, want 0", row[len(row)-1])
			}
			m := float64(slices.Max(tc.logits))
			var s float64
			for _, l := range tc.logits {
				s += math.Exp(float64(l) - m)
			}
			lse := m + math.Log(s)
			// llama.cpp forms this NLL in single precision from the raw logits.
			if want := lse - float64(tc.logits[0]); math.Abs(nll-want) > 1e-5*max(1, math.Abs(want))+3e-7*math.Abs(m) {
				t.Errorf("NLL %g, want %g", nll, want)
			}
			got := make([]float32, n)
			if err := DecodeBaseRow(got, row); err != nil {
				t.Fatal(err)
			}
			floor := m - 16 - lse
			for i, l := range tc.logits {
				want := float64(l) - lse
				if want <= floor {
					// Everything at or below 16 nats under the top is stored as the floor.
					if math.Abs(float64(got[i])-floor) > 1e-4*max(1, math.Abs(lse)) {
						t.Errorf("token %d: %g, want the floor %g", i, got[i], floor)
					}
					continue
				}
				if math.Abs(float64(got[i])-want) > quantStep/2+1e-5*max(1, math.Abs(lse)) {
					t.Errorf("token %d: log p %g, want %g", i, got[i], want)
				}
			}
			if i := slices.Index(tc.logits, slices.Max(tc.logits)); slices.Min(tc.logits) != slices.Max(tc.logits) && row[4+i] != 65535 {
				t.Errorf("top token stored as %d, want 65535", row[4+i])
			}
		})
	}
}

func TestEncodeBaseRowErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		row    []uint16
		logits []float32
		next   int32
		want   string
	}{
		{"short row", make([]uint16, 5), []float32{1, 2}, 0, "want 6"},
		{"token", make([]uint16, 6), []float32{1, 2}, 2, "token id 2 out of range"},
		{"infinity", make([]uint16, 6), []float32{float32(math.Inf(1)), 2}, 0, "logit 0 is +Inf"},
		{"empty", make([]uint16, 4), nil, 0, "out of range [0, 0)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := EncodeBaseRow(tc.row, tc.logits, tc.next); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

// TestBaseFileLayout decodes a written base file by hand, independently of
// ReadBase, to pin the llama.cpp-compatible byte layout.
func TestBaseFileLayout(t *testing.T) {
	const vocab, ctx = 5, 6 // odd vocabulary: padded rows; 2 rows per chunk
	s := newBigram(vocab, 9)
	tokens := randomTokens(ctx*3+2, vocab, 9)
	file, _ := saveBase(t, s, tokens, Options{Ctx: ctx, AddBOS: true, BOS: 4})
	le := func(off int) uint32 {
		return uint32(file[off]) | uint32(file[off+1])<<8 | uint32(file[off+2])<<16 | uint32(file[off+3])<<24
	}
	if string(file[:8]) != "_logits_" || le(8) != ctx || le(12) != vocab || le(16) != 3 {
		t.Fatalf("header % x", file[:20])
	}
	for i := range 3 * ctx {
		if int32(le(20+4*i)) != tokens[i] {
			t.Fatalf("stored token %d is %d, want %d (unsubstituted)", i, le(20+4*i), tokens[i])
		}
	}
	const rowBytes = 2 * (2*((vocab+1)/2) + 4)
	off := 20 + 4*3*ctx
	if len(file) != off+3*2*rowBytes {
		t.Fatalf("file is %d bytes, want %d", len(file), off+3*2*rowBytes)
	}
	logits := make([]float32, ctx*vocab)
	for c := range 3 {
		chunk := slices.Clone(tokens[c*ctx : (c+1)*ctx])
		chunk[0] = 4
		if err := s.Logits(chunk, logits); err != nil {
			t.Fatal(err)
		}
		for r := range 2 {
			pos := ctx/2 + r
			exact := s.exactRow(chunk[pos], pos)
			scale := math.Float32frombits(le(off))
			minLP := math.Float32frombits(le(off + 4))
			for v := range vocab {
				q := uint16(file[off+8+2*v]) | uint16(file[off+9+2*v])<<8
				got := float64(scale)*float64(q) + float64(minLP)
				if math.Abs(got-max(exact[v], float64(minLP))) > quantStep {
					t.Errorf("chunk %d row %d token %d: %g, want %g", c, r, v, got, exact[v])
				}
			}
			if file[off+rowBytes-2] != 0 || file[off+rowBytes-1] != 0 {
				t.Errorf("chunk %d row %d: padding % x", c, r, file[off+rowBytes-2:off+rowBytes])
			}
			off += rowBytes
		}
	}
}

func TestBaseRoundTrip(t *testing.T) {
	const vocab, ctx = 6, 9
	s := newBigram(vocab, 2)
	tokens := randomTokens(ctx*4, vocab, 3)
	file, _ := saveBase(t, s, tokens, Options{Ctx: ctx})
	for _, mode := range []string{"random access", "sequential"} {
		t.Run(mode, func(t *testing.T) {
			var b *Base
			var err error
			if mode == "sequential" {
				b, err = ReadBase(seqReader{bytes.NewReader(file)})
			} else {
				b, err = ReadBase(bytes.NewReader(file))
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.Ctx != ctx || b.Vocab != vocab || b.Chunks != 4 || !slices.Equal(b.Tokens, tokens) {
				t.Fatalf("header ctx %d vocab %d chunks %d tokens %v", b.Ctx, b.Vocab, b.Chunks, b.Tokens)
			}
			logits := make([]float32, ctx*vocab)
			want := make([]uint16, b.RowLen())
			var rows []uint16
			for c := range 4 {
				if rows, err = b.ReadChunk(c, rows); err != nil {
					t.Fatal(err)
				}
				if len(rows) != b.RowsPerChunk()*b.RowLen() {
					t.Fatalf("chunk %d: %d values", c, len(rows))
				}
				if err := s.Logits(tokens[c*ctx:(c+1)*ctx], logits); err != nil {
					t.Fatal(err)
				}
				for r := range b.RowsPerChunk() {
					j := ctx/2 + r
					if _, err := EncodeBaseRow(want, logits[j*vocab:(j+1)*vocab], tokens[c*ctx+j+1]); err != nil {
						t.Fatal(err)
					}
					if got := rows[r*b.RowLen() : (r+1)*b.RowLen()]; !slices.Equal(got, want) {
						t.Errorf("chunk %d row %d: %v, want %v", c, r, got, want)
					}
				}
			}
			_, err = b.ReadChunk(0, rows)
			if mode == "sequential" && (err == nil || !strings.Contains(err.Error(), "sequentially")) {
				t.Errorf("re-reading a sequential base: %v", err)
			}
			if mode == "random access" && err != nil {
				t.Errorf("re-reading a random-access base: %v", err)
			}
			if _, err := b.ReadChunk(4, rows); err == nil {
				t.Error("chunk 4 of 4 read without error")
			}
		})
	}
}

// TestBaseTruncated cuts a base file at every length: each cut must fail in
// ReadBase or, for sequential reading, in the evaluation, never pass.
func TestBaseTruncated(t *testing.T) {
	const vocab, ctx = 4, 6
	s := newBigram(vocab, 4)
	file, _ := saveBase(t, s, randomTokens(ctx*3, vocab, 5), Options{Ctx: ctx})
	for n := range len(file) + 2 {
		data := file[:min(n, len(file))]
		if n == len(file)+1 {
			data = append(slices.Clone(file), 0) // trailing byte
		}
		for _, seq := range []bool{false, true} {
			var b *Base
			var err error
			if seq {
				b, err = ReadBase(seqReader{bytes.NewReader(data)})
			} else {
				b, err = ReadBase(bytes.NewReader(data))
			}
			if err == nil {
				_, err = Perplexity(context.Background(), s, nil, Options{Base: b})
			}
			complete := n == len(file)
			if complete && err != nil {
				t.Errorf("complete file (sequential %v): %v", seq, err)
			}
			if !complete && n <= len(file) && err == nil {
				t.Errorf("file cut to %d of %d bytes (sequential %v) accepted", n, len(file), seq)
			}
			if !complete && err != nil && n < len(file) && !strings.Contains(err.Error(), "truncated") {
				t.Errorf("cut to %d (sequential %v): error %q does not say truncated", n, seq, err)
			}
			if n == len(file)+1 && !seq && (err == nil || !strings.Contains(err.Error(), "trailing")) {
				t.Errorf("trailing byte: %v", err)
			}
		}
	}
}

func TestReadBaseErrors(t *testing.T) {
	s := newBigram(4, 4)
	file, _ := saveBase(t, s, randomTokens(18, 4, 5), Options{Ctx: 6})
	put := func(off int, v uint32) []byte {
		f := slices.Clone(file)
		f[off], f[off+1], f[off+2], f[off+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
		return f
	}
	nanRow := put(20+4*18, math.Float32bits(float32(math.NaN())))
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"magic", append([]byte("_logitz_"), file[8:]...), "not a base log-probability file"},
		{"ctx 2", put(8, 2), "n_ctx 2"},
		{"negative vocabulary", put(12, 0xffffffff), "n_vocab -1"},
		{"no chunks", put(16, 0), "n_chunk 0"},
		{"huge chunk count", put(16, 1<<30), "more than 2³¹ tokens"},
		{"token outside vocabulary", put(20+4*7, 4), "token 7 is 4"},
		{"corrupt row", nanRow, "corrupt base row"},
		{"empty", nil, "truncated in its header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, seq := range []bool{false, true} {
				var b *Base
				var err error
				if seq {
					b, err = ReadBase(seqReader{bytes.NewReader(tc.data)})
				} else {
					b, err = ReadBase(bytes.NewReader(tc.data))
				}
				if err == nil {
					_, err = Perplexity(context.Background(), s, nil, Options{Base: b})
				}
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("sequential %v: error %v, want one mentioning %q", seq, err, tc.want)
				}
			}
		})
	}
}

func TestBaseWriterErrors(t *testing.T) {
	var buf bytes.Buffer
	if _, err := NewBaseWriter(&buf, 6, 4, make([]int32, 7)); err == nil {
		t.Error("tokens not a multiple of ctx accepted")
	}
	if _, err := NewBaseWriter(&buf, 2, 4, make([]int32, 4)); err == nil {
		t.Error("ctx 2 accepted")
	}
	if _, err := NewBaseWriter(&buf, 3, 4, []int32{0, 1, 4}); err == nil {
		t.Error("token outside the vocabulary accepted")
	}
	bw, err := NewBaseWriter(&buf, 3, 4, []int32{0, 1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := bw.Finish(); err == nil {
		t.Error("Finish with no rows written succeeded")
	}
	if _, err := bw.WriteRow([]float32{1, 2, 3}, 0); err == nil {
		t.Error("short logits row accepted")
	}
	if _, err := bw.WriteRow([]float32{1, 2, 3, 4}, 2); err != nil {
		t.Fatal(err)
	}
	if err := bw.Finish(); err != nil {
		t.Error(err)
	}
	if _, err := bw.WriteRow([]float32{1, 2, 3, 4}, 2); err == nil {
		t.Error("row beyond the header's count accepted")
	}
}

// failWriter fails after n bytes.
type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		return 0, errScorer
	}
	f.n -= len(p)
	return len(p), nil
}

func TestSaveBaseWriteError(t *testing.T) {
	s := newBigram(4, 1)
	_, err := Perplexity(context.Background(), s, randomTokens(24, 4, 1), Options{Ctx: 6, SaveBase: &failWriter{n: 10}})
	if err == nil || !strings.Contains(err.Error(), "writing base file") {
		t.Errorf("error %v, want a write failure", err)
	}
}

// TestKLDRandomRows checks single rows with wide logit ranges against the
// float64 definition restricted, as in llama.cpp, to tokens above the floor.
func TestKLDRandomRows(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	const vocab = 301
	var acc KLDAccumulator
	for range 50 {
		p := make([]float32, vocab)
		q := make([]float32, vocab)
		for i := range p {
			p[i] = float32(8 * r.NormFloat64())
			q[i] = p[i] + float32(0.5*r.NormFloat64())
		}
		next := int32(r.IntN(vocab))
		got, err := acc.AddLogits(q, p, next)
		if err != nil {
			t.Fatal(err)
		}
		lp, lq := logSoftmax64(p), logSoftmax64(q)
		var want float64
		for i := range lp {
			if lp[i] > -16 {
				want += math.Exp(lp[i]) * (lp[i] - lq[i])
			}
		}
		if math.Abs(got-want) > 2*quantStep {
			t.Errorf("KLD %g, want %g", got, want)
		}
	}
	if acc.Count() != 50 {
		t.Errorf("count %d", acc.Count())
	}
	acc.Reset()
	if acc.Count() != 0 || acc.Stats().Count != 0 || !math.IsNaN(acc.Stats().Mean) {
		t.Errorf("after Reset: %+v", acc.Stats())
	}
}

func logSoftmax64(l []float32) []float64 {
	out := make([]float64, len(l))
	m := float64(slices.Max(l))
	var s float64
	for _, v := range l {
		s += math.Exp(float64(v) - m)
	}
	lse := m + math.Log(s)
	for i, v := range l {
		out[i] = float64(v) - lse
	}
	return out
}

// TestEncodeBaseRowRounding pins the quantization to round-to-nearest with
// logits placed at known fractions of the storage step.
func TestEncodeBaseRowRounding(t *testing.T) {
	const step = 16.0 / 65535
	logits := []float32{0, 16, 0.7 * step, 5.7 * step, 100.3 * step, 12345.6 * step, -3}
	want := []uint16{0, 65535, 1, 6, 100, 12346, 0}
	row := make([]uint16, BaseRowLen(len(logits)))
	if _, err := EncodeBaseRow(row, logits, 1); err != nil {
		t.Fatal(err)
	}
	if got := row[4 : 4+len(logits)]; !slices.Equal(got, want) {
		t.Errorf("quantized %v, want %v", got, want)
	}
	if s := getFloat(row[0:2]); s != float32(16)/65535 {
		t.Errorf("scale %g, want 16/65535", s)
	}
}
