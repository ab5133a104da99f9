package engine

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"tamp/kv"
	"tamp/model"
	"tamp/sample"
)

// ErrStop, returned by a RunOptions.OnText callback, ends a run early as a
// normal stop: Run returns FinishReason "stop" and no error. A server uses it
// when the text reaches one of the request's stop strings.
var ErrStop = errors.New("engine: generation stopped by caller")

// prefillChunk is how many prompt tokens Run evaluates between checks of its
// context, so that a cancelled request stops during a long prompt too. It
// equals the model's default batch, so chunking does not change which tokens
// are evaluated together and the logits are those of one Forward call.
const prefillChunk = 64

// Slot is a lane for generations run one after another, such as one of a
// server's parallel sequences. It keeps its model session — scratch buffers
// and KV-cache memory — between runs, so a busy server does not reallocate
// them per request. Slots made from one Engine run concurrently and share its
// read-only weights; a single Slot is not safe for concurrent use.
type Slot struct {
	e        *Engine
	ctxLen   int
	sessions map[kv.Storage]*model.Session
	kvBytes  atomic.Int64
}

// NewSlot makes a slot whose sequences hold at most ctxLen tokens; 0 means
// the model's trained context length.
func (e *Engine) NewSlot(ctxLen int) (*Slot, error) {
	n := e.ContextLen(ctxLen)
	if n <= 0 {
		return nil, fmt.Errorf("engine: context length must be positive (the model states none; pass one)")
	}
	return &Slot{e: e, ctxLen: n, sessions: map[kv.Storage]*model.Session{}}, nil
}

// Context is the most tokens one sequence of the slot may hold.
func (s *Slot) Context() int { return s.ctxLen }

// KVBytes is the memory the running sequence's KV cache occupies now; 0
// between runs. It is safe to call from any goroutine, for metrics.
func (s *Slot) KVBytes() int64 { return s.kvBytes.Load() }

// RunOptions controls one Slot.Run.
type RunOptions struct {
	// MaxTokens is the most tokens to generate; 0 means until the context is
	// full.
	MaxTokens int
	// KVStorage is the element type of the KV cache for this run.
	KVStorage kv.Storage
	// Sampling chooses each token; the run makes its own sampler from it.
	Sampling sample.Params
	// Configure, if set, adjusts the options of a session made for this run
	// alone (to apply a KV-cache compression policy, say). Runs without it
	// reuse the slot's session for their storage type.
	Configure func(*model.SessionOptions) error
	// OnText receives the text of each generated token as soon as it forms
	// whole UTF-8 characters, and at the end whatever bytes remain. Returning
	// ErrStop ends the run normally with FinishReason "stop"; any other error
	// ends it with that error.
	OnText func(string) error
}

// Run generates from an already tokenized prompt exactly as
// Engine.GenerateTokens does (same tokens for the same options), on the
// slot's reusable session. A prompt that does not fit the slot's context is
// an error wrapping ErrPromptTooLong. Cancelling ctx stops the run between
// tokens and between prompt chunks.
func (s *Slot) Run(ctx context.Context, tokens []int32, o RunOptions) (Stats, error) {
	var st Stats
	defer s.kvBytes.Store(0)
	sess, err := s.session(o)
	if err != nil {
		return st, err
	}
	sess.Reset()
	n := sess.Context()
	if tokens, _, err = s.e.FitContext(tokens, n, OverflowError); err != nil {
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
	dec := s.e.Tok.NewDecoder()
	for _, t := range tokens {
		dec.Add(t) // prime the decoder so the first generated piece is spaced as it follows the prompt
	}
	dec.Flush()

	start := time.Now()
	var logits []float32
	for i := 0; i < len(tokens); i += prefillChunk {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		if logits, err = sess.Forward(tokens[i:min(i+prefillChunk, len(tokens))], false); err != nil {
			return st, err
		}
		s.kvBytes.Store(sess.Cache().Bytes())
	}
	st.PromptTime = time.Since(start)
	start = time.Now()
	st.FinishReason = "length"
	emit := func(text string) error {
		if o.OnText == nil || text == "" {
			return nil
		}
		return o.OnText(text)
	}
	stopped := false
	var step [1]int32 // reused: no allocation per token
	for o.MaxTokens <= 0 || st.GeneratedTokens < o.MaxTokens {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		next := smp.Sample(logits)
		smp.Accept(next)
		if s.e.Tok.IsEOG(next) {
			st.FinishReason = "stop"
			break
		}
		st.GeneratedTokens++
		if err := emit(dec.Add(next)); err != nil {
			if errors.Is(err, ErrStop) {
				st.FinishReason, stopped = "stop", true
				break
			}
			return st, err
		}
		if sess.Pos() >= n {
			break
		}
		step[0] = next
		if logits, err = sess.Forward(step[:], false); err != nil {
			return st, err
		}
		s.kvBytes.Store(sess.Cache().Bytes())
	}
	if rest := dec.Flush(); !stopped {
		if err := emit(rest); err != nil {
			if !errors.Is(err, ErrStop) {
				return st, err
			}
			st.FinishReason = "stop"
		}
	}
	st.GenerateTime = time.Since(start)
	st.KVBytes = sess.Cache().Bytes()
	st.KVFullBytes = s.e.Model.KVCacheBytes(sess.Pos(), o.KVStorage)
	return st, nil
}

// session returns the session for a run: the slot's own for the storage
// type, made on first use, or a fresh one when the run configures its own.
func (s *Slot) session(o RunOptions) (*model.Session, error) {
	opts := model.SessionOptions{Context: s.ctxLen, KVStorage: o.KVStorage}
	if o.Configure != nil {
		if err := o.Configure(&opts); err != nil {
			return nil, err
		}
		return s.e.Model.NewSession(opts)
	}
	if sess := s.sessions[o.KVStorage]; sess != nil {
		return sess, nil
	}
	sess, err := s.e.Model.NewSession(opts)
	if err != nil {
		return nil, err
	}
	s.sessions[o.KVStorage] = sess
	return sess, nil
}
