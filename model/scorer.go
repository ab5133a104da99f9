package model

// Scorer evaluates whole token sequences, each from an empty cache, and hands
// back the logits of every position. It satisfies eval.Scorer.
type Scorer struct {
	sess *Session
}

// NewScorer prepares a scorer for sequences up to opts.Context tokens.
func (m *Model) NewScorer(opts SessionOptions) (*Scorer, error) {
	s, err := m.NewSession(opts)
	if err != nil {
		return nil, err
	}
	return &Scorer{sess: s}, nil
}

// Logits evaluates tokens from position 0 and writes VocabSize() logits per
// position into out.
func (s *Scorer) Logits(tokens []int32, out []float32) error {
	s.sess.Reset()
	logits, err := s.sess.Forward(tokens, true)
	if err != nil {
		return err
	}
	copy(out, logits)
	return nil
}

// VocabSize is the length of one logits row.
func (s *Scorer) VocabSize() int { return s.sess.m.Vocab }
