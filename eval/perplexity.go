package eval

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
)

// Scorer evaluates one sequence from an empty context.
type Scorer interface {
	// Logits evaluates tokens as a fresh sequence from position 0 and writes
	// VocabSize() logits per position into out
	// (len(out) == len(tokens)*VocabSize()).
	Logits(tokens []int32, out []float32) error
	// VocabSize is the number of logits per position.
	VocabSize() int
}

// Options configure [Perplexity].
type Options struct {
	// Ctx is the number of tokens per chunk (llama.cpp's n_ctx), at least 3.
	// With Base set, 0 means the base file's.
	Ctx int
	// BOS replaces the first token of each chunk when AddBOS is set, as
	// llama.cpp does for vocabularies that add BOS.
	BOS    int32
	AddBOS bool
	// MaxChunks limits the chunks evaluated (llama.cpp's --chunks); 0 means all.
	MaxChunks int
	// Progress, if set, is called after each chunk with the chunks done and
	// the total.
	Progress func(done, total int)
	// SaveBase, if set, receives a base file (see the package documentation)
	// for a later KL-divergence run, written while perplexity is computed. It
	// is written through a buffer that is flushed before Perplexity returns.
	SaveBase io.Writer
	// Base, if set, makes Perplexity compare the model with the base file's
	// model and fill Result.KLD. Base and SaveBase are mutually exclusive.
	Base *Base
}

// Result is the outcome of [Perplexity].
type Result struct {
	PPL    float64 // perplexity, exp(NLL)
	PPLErr float64 // one standard error of PPL
	NLL    float64 // mean negative log-likelihood per scored token, nats
	Tokens int     // scored tokens (predictions)
	Chunks int     // chunks evaluated
	Ctx    int     // tokens per chunk
	// KLD holds the comparison with the base model when Options.Base was set;
	// PPL and PPLErr then follow llama.cpp's KL-divergence mode, which differs
	// from the plain mode only in rounding and in reporting no uncertainty
	// for ten or fewer tokens.
	KLD *KLDStats
}

// maxLogits bounds the logits buffer (Ctx·vocabulary floats, 16 GiB), so that
// absurd options fail with an error rather than exhaust memory.
const maxLogits = 1 << 32

// Perplexity evaluates s over tokens with llama-perplexity's conventions (see
// the package documentation) and returns the perplexity and, when opts.Base is
// set, the KL-divergence statistics against the base model. With opts.Base set
// tokens may be nil, in which case the base file's tokens are evaluated;
// otherwise they must match the base file's. The context is checked between
// chunks.
func Perplexity(ctx context.Context, s Scorer, tokens []int32, opts Options) (*Result, error) {
	vocab := s.VocabSize()
	if vocab < 1 {
		return nil, fmt.Errorf("eval: scorer reports a vocabulary of %d", vocab)
	}
	if opts.MaxChunks < 0 {
		return nil, fmt.Errorf("eval: MaxChunks %d is negative", opts.MaxChunks)
	}
	if opts.Base != nil && opts.SaveBase != nil {
		return nil, errors.New("eval: Base and SaveBase are mutually exclusive")
	}
	if opts.AddBOS {
		if err := checkToken(opts.BOS, vocab); err != nil {
			return nil, fmt.Errorf("eval: BOS: %w", err)
		}
	}
	nctx := opts.Ctx
	var nchunk int
	if b := opts.Base; b != nil {
		if b.Ctx < 3 || b.Chunks < 1 || len(b.Tokens) != b.Ctx*b.Chunks {
			return nil, fmt.Errorf("eval: invalid Base (ctx %d, %d chunks, %d tokens); obtain one from ReadBase", b.Ctx, b.Chunks, len(b.Tokens))
		}
		if nctx == 0 {
			nctx = b.Ctx
		}
		if nctx != b.Ctx {
			return nil, fmt.Errorf("eval: ctx %d, but the base file was computed with ctx %d", nctx, b.Ctx)
		}
		if b.Vocab != vocab {
			return nil, fmt.Errorf("eval: the model has a vocabulary of %d, the base file %d", vocab, b.Vocab)
		}
		nchunk = b.Chunks
		if opts.MaxChunks > 0 {
			nchunk = min(nchunk, opts.MaxChunks)
		}
		if tokens == nil {
			tokens = b.Tokens
		} else if err := matchBaseTokens(tokens, b.Tokens[:nchunk*nctx]); err != nil {
			return nil, err
		}
	} else {
		if nctx < 3 {
			return nil, fmt.Errorf("eval: ctx %d is too small: the scored second half of a chunk needs a position with a next token (ctx >= 3)", nctx)
		}
		if len(tokens) < nctx {
			return nil, fmt.Errorf("eval: %d tokens are too few for one chunk: ctx %d needs at least %d", len(tokens), nctx, nctx)
		}
		nchunk = len(tokens) / nctx
		if opts.MaxChunks > 0 {
			nchunk = min(nchunk, opts.MaxChunks)
		}
	}
	if int64(nctx)*int64(vocab) > maxLogits {
		return nil, fmt.Errorf("eval: ctx %d × vocabulary %d logits is too large a buffer", nctx, vocab)
	}
	tokens = tokens[:nchunk*nctx]
	for i, t := range tokens {
		if t < 0 || int(t) >= vocab {
			return nil, fmt.Errorf("eval: token %d is %d, outside the vocabulary of %d", i, t, vocab)
		}
	}

	var (
		bw   *BaseWriter
		bufw *bufio.Writer
	)
	if opts.SaveBase != nil {
		bufw = bufio.NewWriterSize(opts.SaveBase, 1<<16)
		var err error
		if bw, err = NewBaseWriter(bufw, nctx, vocab, tokens); err != nil {
			return nil, err
		}
	}
	res, err := run(ctx, s, tokens, nctx, nchunk, vocab, opts, bw)
	if bufw != nil {
		if ferr := bufw.Flush(); ferr != nil && err == nil {
			err = fmt.Errorf("eval: writing base file: %w", ferr)
		}
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

// run is the chunk loop of Perplexity, with the options validated.
func run(ctx context.Context, s Scorer, tokens []int32, nctx, nchunk, vocab int, opts Options, bw *BaseWriter) (*Result, error) {
	first := nctx / 2
	var (
		chunk  = make([]int32, nctx)
		logits = make([]float32, nctx*vocab)
		nll    NLLAccumulator
		kld    *KLDAccumulator
		rows   []uint16
		nv     = BaseRowLen(vocab)
	)
	if opts.Base != nil {
		kld = &KLDAccumulator{
			kldValues:   make([]float32, 0, nchunk*(nctx-1-first)),
			pDiffValues: make([]float32, 0, nchunk*(nctx-1-first)),
		}
	}
	for c := range nchunk {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		start := c * nctx
		copy(chunk, tokens[start:start+nctx])
		if opts.AddBOS {
			chunk[0] = opts.BOS
		}
		if err := s.Logits(chunk, logits); err != nil {
			return nil, fmt.Errorf("eval: chunk %d of %d: %w", c+1, nchunk, err)
		}
		if kld != nil {
			var err error
			if rows, err = opts.Base.ReadChunk(c, rows); err != nil {
				return nil, err
			}
		}
		for j := first; j < nctx-1; j++ {
			row := logits[j*vocab : (j+1)*vocab]
			next := tokens[start+j+1]
			var err error
			switch {
			case kld != nil:
				r := j - first
				_, err = kld.Add(row, rows[r*nv:(r+1)*nv], next)
			case bw != nil:
				var v float64
				if v, err = bw.WriteRow(row, next); err == nil {
					nll.AddNLL(v)
				}
			default:
				err = nll.Add(row, next)
			}
			if err != nil {
				return nil, fmt.Errorf("eval: chunk %d of %d, position %d: %w", c+1, nchunk, j, err)
			}
		}
		if opts.Progress != nil {
			opts.Progress(c+1, nchunk)
		}
	}
	if bw != nil {
		if err := bw.Finish(); err != nil {
			return nil, err
		}
	}

	res := &Result{Chunks: nchunk, Ctx: nctx}
	if kld != nil {
		res.KLD = kld.Stats()
		res.Tokens = kld.Count()
		res.PPL, res.PPLErr = res.KLD.PPL, res.KLD.PPLErr
		res.NLL = math.Log(res.PPL)
	} else {
		res.Tokens = nll.Count
		res.PPL, res.PPLErr = nll.PPL()
		res.NLL = nll.Mean()
	}
	return res, nil
}

func matchBaseTokens(tokens, base []int32) error {
	if len(tokens) < len(base) {
		return fmt.Errorf("eval: %d tokens given, but the base file's chunks hold %d", len(tokens), len(base))
	}
	for i, t := range base {
		if tokens[i] != t {
			return fmt.Errorf("eval: token %d is %d, but the base file has %d there: the base file was computed on a different text or tokenizer", i, tokens[i], t)
		}
	}
	return nil
}

// Format writes a human-readable summary in the style of llama-perplexity's
// output: the final estimate line and, for a KL-divergence run, its
// perplexity, KL-divergence and token-probability sections.
func (r *Result) Format(w io.Writer) error {
	ew := &errWriter{w: w}
	ew.printf("perplexity: %d chunks of %d tokens, %d scored tokens\n", r.Chunks, r.Ctx, r.Tokens)
	ew.printf("Final estimate: PPL = %.4f +/- %.5f\n", r.PPL, r.PPLErr)
	k := r.KLD
	if k == nil {
		return ew.err
	}
	ew.printf("\n====== Perplexity statistics ======\n")
	ew.printf("Mean PPL(Q)                   : %10.6f ± %10.6f\n", k.PPL, k.PPLErr)
	ew.printf("Mean PPL(base)                : %10.6f ± %10.6f\n", k.BasePPL, k.BasePPLErr)
	ew.printf("Cor(ln(PPL(Q)), ln(PPL(base))): %6.2f%%\n", 100*k.LogPPLCor)
	ew.printf("Mean ln(PPL(Q)/PPL(base))     : %10.6f ± %10.6f\n", k.LogPPLRatio, k.LogPPLRatioErr)
	ew.printf("Mean PPL(Q)/PPL(base)         : %10.6f ± %10.6f\n", k.PPLRatio, k.PPLRatioErr)
	ew.printf("Mean PPL(Q)-PPL(base)         : %10.6f ± %10.6f\n", k.PPLDiff, k.PPLDiffErr)

	ew.printf("\n====== KL divergence statistics ======\n")
	ew.printf("Mean    KLD: %10.6f ± %10.6f\n", k.Mean, k.MeanErr)
	for _, l := range []struct {
		name string
		v    float64
	}{
		{"Maximum KLD", k.Max}, {"99.9%   KLD", k.P999}, {"99.0%   KLD", k.P99}, {"95.0%   KLD", k.P95},
		{"90.0%   KLD", k.P90}, {"Median  KLD", k.Median}, {"10.0%   KLD", k.P10}, {" 5.0%   KLD", k.P5},
		{" 1.0%   KLD", k.P1}, {" 0.1%   KLD", k.P001}, {"Minimum KLD", k.Min},
	} {
		ew.printf("%s: %10.6f\n", l.name, l.v)
	}

	d := &k.DeltaP
	ew.printf("\n====== Token probability statistics ======\n")
	ew.printf("Mean    Δp: %6.3f ± %5.3f %%\n", 100*d.Mean, 100*d.MeanErr)
	for _, l := range []struct {
		name string
		v    float64
	}{
		{"Maximum Δp", d.Max}, {"99.9%   Δp", d.P999}, {"99.0%   Δp", d.P99}, {"95.0%   Δp", d.P95},
		{"90.0%   Δp", d.P90}, {"75.0%   Δp", d.P75}, {"Median  Δp", d.Median}, {"25.0%   Δp", d.P25},
		{"10.0%   Δp", d.P10}, {" 5.0%   Δp", d.P5}, {" 1.0%   Δp", d.P1}, {" 0.1%   Δp", d.P001},
		{"Minimum Δp", d.Min},
	} {
		ew.printf("%s: %6.3f%%\n", l.name, 100*l.v)
	}
	ew.printf("RMS Δp    : %6.3f ± %5.3f %%\n", 100*d.RMS, 100*d.RMSErr)
	ew.printf("Same top p: %6.3f ± %5.3f %%\n", 100*k.SameTop, 100*k.SameTopErr)
	return ew.err
}

// errWriter keeps the first write error so that Format can print freely.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
