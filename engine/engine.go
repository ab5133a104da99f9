// Package engine ties a model file, its tokenizer and a sampler into the
// operations tamp's commands and server offer: open a model of any supported
// format, and generate text from a prompt with statistics.
package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"tamp/gguf"
	"tamp/kv"
	"tamp/llama2c"
	"tamp/model"
	_ "tamp/quant" // registers tamp's own tensor types (SQ) so their files open
	"tamp/sample"
	"tamp/tokenizer"
)

// Options says how to open a model.
type Options struct {
	// Tokenizer is the llama2.c tokenizer .bin for a llama2.c checkpoint; GGUF
	// files carry their own.
	Tokenizer string
}

// Engine is an opened model ready to run.
type Engine struct {
	Path  string
	File  *gguf.File
	Model *model.Model
	Tok   *tokenizer.Tokenizer
}

// Open loads a GGUF file or a llama2.c checkpoint.
func Open(path string, opts Options) (*Engine, error) {
	var f *gguf.File
	var err error
	if llama2c.IsCheckpoint(path) {
		f, err = llama2c.Load(path, opts.Tokenizer)
	} else {
		f, err = gguf.Open(path)
	}
	if err != nil {
		return nil, err
	}
	e, err := FromFile(path, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return e, nil
}

// FromFile builds an engine on an already opened GGUF file.
func FromFile(path string, f *gguf.File) (*Engine, error) {
	m, err := model.Load(f)
	if err != nil {
		return nil, err
	}
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		return nil, err
	}
	if tok.VocabSize() != m.Vocab {
		return nil, fmt.Errorf("engine: tokenizer has %d tokens but the model's embedding has %d rows", tok.VocabSize(), m.Vocab)
	}
	return &Engine{Path: path, File: f, Model: m, Tok: tok}, nil
}

// Close releases the model file.
func (e *Engine) Close() error { return e.File.Close() }

// Overflow says what to do with a prompt longer than the context allows.
type Overflow int

const (
	// OverflowError refuses the prompt.
	OverflowError Overflow = iota
	// OverflowTruncate keeps the BOS token and the end of the prompt, dropping
	// tokens from its start, and reports how many it dropped.
	OverflowTruncate
)

// GenerateOptions controls one generation.
type GenerateOptions struct {
	// MaxTokens is the most tokens to generate; 0 means until the context is full.
	MaxTokens int
	// Context is the sequence length; 0 means the model's trained length.
	Context   int
	KVStorage kv.Storage
	// KV compresses the cache while generating (eviction policy, budget,
	// quantization); the zero value keeps everything.
	KV       kv.Spec
	Sampling sample.Params
	Overflow Overflow
	// StopAtBOS ends generation when BOS is sampled, as llama2.c's run.c does.
	StopAtBOS bool
	// OnText receives the text of each token as soon as it forms whole UTF-8
	// characters; an error from it stops generation.
	OnText func(string) error
}

// Stats describes a finished generation.
type Stats struct {
	PromptTokens    int
	Truncated       int // prompt tokens dropped to fit the context
	GeneratedTokens int
	PromptTime      time.Duration
	GenerateTime    time.Duration
	FinishReason    string // "stop" (end of text), "length" (token or context limit)
	KVBytes         int64
	KVFullBytes     int64 // what the cache would take holding every token of the sequence (no eviction)
	PeakRSS         int64 // bytes, 0 where the platform does not say
}

// PromptTokensPerSecond is the prefill rate.
func (s Stats) PromptTokensPerSecond() float64 { return rate(s.PromptTokens, s.PromptTime) }

// GenerateTokensPerSecond is the decode rate.
func (s Stats) GenerateTokensPerSecond() float64 { return rate(s.GeneratedTokens, s.GenerateTime) }

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// ErrPromptTooLong reports a prompt that does not fit the context.
var ErrPromptTooLong = errors.New("prompt too long")

// Encode tokenizes a prompt as a run would: BOS first when the vocabulary asks for it.
func (e *Engine) Encode(prompt string) []int32 {
	return e.Tok.Encode(prompt, true, false)
}

// ContextLen is the context a generation gets: ctx if positive, else the
// model's trained context length.
func (e *Engine) ContextLen(ctx int) int {
	if ctx > 0 {
		return ctx
	}
	return e.Model.ContextLen
}

// FitContext checks that a tokenized prompt fits a context of n tokens with room
// for one generated token. A prompt that does not fit is an error, or with
// OverflowTruncate loses tokens from its start (BOS kept); dropped says how many.
func (e *Engine) FitContext(tokens []int32, n int, o Overflow) (kept []int32, dropped int, err error) {
	if len(tokens) == 0 {
		return nil, 0, fmt.Errorf("engine: empty prompt and the vocabulary adds no BOS token")
	}
	if len(tokens) < n {
		return tokens, 0, nil
	}
	if o != OverflowTruncate {
		return nil, 0, fmt.Errorf("%w: %d tokens, context is %d and one token must remain for generation (raise --ctx or shorten the prompt)", ErrPromptTooLong, len(tokens), n)
	}
	keep := n - 1
	if keep < 1 {
		return nil, 0, fmt.Errorf("%w: context of %d tokens leaves no room to generate", ErrPromptTooLong, n)
	}
	dropped = len(tokens) - keep
	if tokens[0] == e.Tok.BOS() && e.Tok.AddBOS() && keep > 1 {
		kept = append([]int32{tokens[0]}, tokens[1+dropped:]...)
	} else {
		kept = append([]int32(nil), tokens[dropped:]...)
	}
	return kept, dropped, nil
}

// Generate runs prompt through the model and samples up to MaxTokens tokens.
func (e *Engine) Generate(ctx context.Context, prompt string, o GenerateOptions) (Stats, error) {
	return e.GenerateTokens(ctx, e.Encode(prompt), o)
}

// GenerateTokens is Generate for an already tokenized prompt.
func (e *Engine) GenerateTokens(ctx context.Context, tokens []int32, o GenerateOptions) (Stats, error) {
	var st Stats
	sess, err := e.Model.NewSession(model.SessionOptions{Context: o.Context, KVStorage: o.KVStorage, KV: o.KV})
	if err != nil {
		return st, err
	}
	n := sess.Context()
	tokens, st.Truncated, err = e.FitContext(tokens, n, o.Overflow)
	if err != nil {
		return st, err
	}
	st.PromptTokens = len(tokens)
	smp, err := sample.New(o.Sampling)
	if err != nil {
		return st, err
	}
	for _, t := range tokens {
		smp.Accept(t)
	}
	dec := e.Tok.NewDecoder()
	for _, t := range tokens {
		dec.Add(t) // prime the decoder so the first generated piece is spaced as it follows the prompt
	}
	dec.Flush()

	start := time.Now()
	logits, err := sess.Forward(tokens, false)
	if err != nil {
		return st, err
	}
	st.PromptTime = time.Since(start)
	start = time.Now()
	st.FinishReason = "length"
	var step [1]int32
	for o.MaxTokens <= 0 || st.GeneratedTokens < o.MaxTokens {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		next := smp.Sample(logits)
		smp.Accept(next)
		if e.Tok.IsEOG(next) || (o.StopAtBOS && next == e.Tok.BOS()) {
			st.FinishReason = "stop"
			break
		}
		st.GeneratedTokens++
		if o.OnText != nil {
			if text := dec.Add(next); text != "" {
				if err := o.OnText(text); err != nil {
					return st, err
				}
			}
		}
		if sess.Pos() >= n {
			break
		}
		step[0] = next
		if logits, err = sess.Forward(step[:], false); err != nil {
			return st, err
		}
	}
	if o.OnText != nil {
		if text := dec.Flush(); text != "" {
			if err := o.OnText(text); err != nil {
				return st, err
			}
		}
	}
	st.GenerateTime = time.Since(start)
	st.KVBytes = sess.Cache().Bytes()
	st.KVFullBytes = e.Model.KVCacheBytes(sess.Pos(), o.KVStorage)
	st.PeakRSS = PeakRSS()
	return st, nil
}
