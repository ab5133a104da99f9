package eval

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// bigramScorer is a fake model whose logits at each position are the log of a
// fixed next-token distribution chosen by the token at that position, plus an
// optional perturbation, so that expected perplexities and divergences can be
// computed independently in float64.
type bigramScorer struct {
	logP    [][]float64 // logP[prev][next], normalized
	perturb func(pos, v int) float64
	// requireFirst, when >= 0, makes Logits fail unless the chunk starts with
	// that token, to check the BOS substitution.
	requireFirst int32
	calls        [][]int32 // every chunk received, copied
	failOn       int       // 1-based call number that fails, 0 for none
}

func newBigram(vocab int, seed uint64) *bigramScorer {
	r := rand.New(rand.NewPCG(seed, 1))
	s := &bigramScorer{logP: make([][]float64, vocab), requireFirst: -1}
	for a := range vocab {
		row := make([]float64, vocab)
		var sum float64
		for b := range row {
			row[b] = math.Exp(2 * r.NormFloat64())
			sum += row[b]
		}
		for b := range row {
			row[b] = math.Log(row[b] / sum)
		}
		s.logP[a] = row
	}
	return s
}

func (s *bigramScorer) VocabSize() int { return len(s.logP) }

// logits is the exact (float64) logit the scorer produces for v after prev at pos.
func (s *bigramScorer) logit(prev int32, pos, v int) float64 {
	l := s.logP[prev][v]
	if s.perturb != nil {
		l += s.perturb(pos, v)
	}
	return l
}

func (s *bigramScorer) Logits(tokens []int32, out []float32) error {
	n := len(s.logP)
	if len(out) != len(tokens)*n {
		return fmt.Errorf("out has %d values, want %d", len(out), len(tokens)*n)
	}
	s.calls = append(s.calls, append([]int32(nil), tokens...))
	if s.failOn == len(s.calls) {
		return errScorer
	}
	if s.requireFirst >= 0 && tokens[0] != s.requireFirst {
		return fmt.Errorf("chunk starts with %d, want %d", tokens[0], s.requireFirst)
	}
	for p, t := range tokens {
		for v := range n {
			out[p*n+v] = float32(s.logit(t, p, v))
		}
	}
	return nil
}

var errScorer = fmt.Errorf("scorer failure")

// exactRow returns the float64 log-softmax of the scorer's float32 logits after
// prev at pos.
func (s *bigramScorer) exactRow(prev int32, pos int) []float64 {
	n := len(s.logP)
	lp := make([]float64, n)
	m := math.Inf(-1)
	for v := range n {
		lp[v] = float64(float32(s.logit(prev, pos, v)))
		m = max(m, lp[v])
	}
	var sum float64
	for _, l := range lp {
		sum += math.Exp(l - m)
	}
	lse := m + math.Log(sum)
	for v := range lp {
		lp[v] -= lse
	}
	return lp
}

func randomTokens(n, vocab int, seed uint64) []int32 {
	r := rand.New(rand.NewPCG(seed, 2))
	t := make([]int32, n)
	for i := range t {
		t[i] = int32(r.IntN(vocab))
	}
	return t
}

// seqReader hides every interface but io.Reader, so ReadBase must stream.
type seqReader struct {
	r interface{ Read([]byte) (int, error) }
}

func (s seqReader) Read(p []byte) (int, error) { return s.r.Read(p) }
