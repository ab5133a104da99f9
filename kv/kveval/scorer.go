package kveval

import (
	"fmt"
	"sync"

	"tamp/model"
)

// StepScorer is an [eval.Scorer] that evaluates each chunk the way a deployed
// model meets it: the first half is the prompt, prefilled in one call (after
// which a KV policy compresses the cache), and every later token is one
// decoding step, so that the scored second half (the positions
// [eval.Perplexity] scores) is predicted from the compressed cache. A whole
// chunk prefilled at once would give a policy that compresses after the
// prefill nothing to act on before the scored positions.
//
// Only the rows from len(tokens)/2−1 on are computed; the rows before are
// set to zero. With a full cache the rows agree with a batched prefill's up
// to the floating-point rounding of a different evaluation order.
//
// It also records the cache's size after each chunk ([StepScorer.Stats]). A
// StepScorer is not safe for concurrent use.
type StepScorer struct {
	sess  *model.Session
	vocab int
	// Lock, if set, is held around each chunk (tamp sweep read-locks its
	// machine so that speed measurements run alone).
	Lock sync.Locker

	chunks             int
	sum, peak, fullSum int64
}

// NewStepScorer prepares a scorer for chunks of up to opts.Context tokens,
// compressing the cache as opts.KV says.
func NewStepScorer(m *model.Model, opts model.SessionOptions) (*StepScorer, error) {
	s, err := m.NewSession(opts)
	if err != nil {
		return nil, err
	}
	return &StepScorer{sess: s, vocab: m.Vocab}, nil
}

// VocabSize is the length of one logits row.
func (s *StepScorer) VocabSize() int { return s.vocab }

// Logits evaluates tokens from an empty cache, the first half in one call and
// the rest one token at a time, and writes VocabSize() logits per position
// into out (zero before position len(tokens)/2−1).
func (s *StepScorer) Logits(tokens []int32, out []float32) error {
	if s.Lock != nil {
		s.Lock.Lock()
		defer s.Lock.Unlock()
	}
	v := s.VocabSize()
	if len(tokens) < 2 {
		return fmt.Errorf("kveval: a chunk of %d tokens has no second half to decode", len(tokens))
	}
	if len(out) != len(tokens)*v {
		return fmt.Errorf("kveval: logits buffer of %d for %d tokens × %d", len(out), len(tokens), v)
	}
	s.sess.Reset()
	first := len(tokens) / 2
	logits, err := s.sess.Forward(tokens[:first], false)
	if err != nil {
		return err
	}
	clear(out[:(first-1)*v])
	copy(out[(first-1)*v:first*v], logits)
	for i := first; i < len(tokens); i++ {
		logits, err := s.sess.Forward(tokens[i:i+1], false)
		if err != nil {
			return err
		}
		copy(out[i*v:(i+1)*v], logits)
	}
	c := s.sess.Cache()
	s.chunks++
	s.sum += c.Bytes()
	s.fullSum += c.FullBytes(s.sess.Pos())
	s.peak = max(s.peak, c.PeakBytes())
	return nil
}

// StepStats are the cache sizes a [StepScorer] saw.
type StepStats struct {
	// Chunks is the number of chunks evaluated.
	Chunks int
	// MeanBytes is the cache's mean size at the end of a chunk, FullBytes
	// the mean size an uncompressed cache holding the same tokens has, and
	// PeakBytes the largest the cache was at any moment.
	MeanBytes, FullBytes, PeakBytes int64
}

// Stats reports the cache sizes over the chunks evaluated so far.
func (s *StepScorer) Stats() StepStats {
	st := StepStats{Chunks: s.chunks, PeakBytes: s.peak}
	if s.chunks > 0 {
		st.MeanBytes = s.sum / int64(s.chunks)
		st.FullBytes = s.fullSum / int64(s.chunks)
	}
	return st
}
