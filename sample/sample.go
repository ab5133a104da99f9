// Package sample picks the next token from a vector of logits the way
// llama.cpp's default sampler chain does: repetition penalty, top-k, top-p,
// min-p, temperature, then a draw from the softmax of what is left.
//
// A Sampler owns its random number generator, seeded from Params.Seed, so the
// same parameters, seed and logits give the same tokens on every run. The
// generator is math/rand/v2's PCG, whose output is specified bit for bit, and
// the softmax uses this package's own exponential (plain float64 arithmetic
// with no fused multiply-adds) rather than math.Exp, whose assembly versions
// differ between architectures by an ulp; together they make the chosen
// tokens the same on every platform, not just on every run.
//
// The tokens are not those llama.cpp would draw for the same seed: llama.cpp
// uses C++'s mt19937 and float32 probabilities. The filtering rules match.
package sample

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Params configures a Sampler. The zero value is not useful; start from
// DefaultParams.
type Params struct {
	// Temperature divides the logits before the final softmax; higher is more
	// random. 0 selects greedy decoding: always the most likely token.
	Temperature float32
	// TopK keeps only the TopK most likely tokens; 0 turns it off.
	TopK int
	// TopP keeps the smallest set of most likely tokens whose probabilities
	// add up to at least TopP (nucleus sampling); 1 turns it off.
	TopP float32
	// MinP drops tokens whose probability is less than MinP times that of the
	// most likely token; 0 turns it off.
	MinP float32
	// RepeatPenalty makes tokens seen among the last RepeatLastN accepted
	// tokens less likely: a positive logit is divided by it, a negative one
	// multiplied. 1 turns it off; values below 1 make repeats more likely.
	RepeatPenalty float32
	// RepeatLastN is how many of the most recently accepted tokens the
	// repetition penalty looks at; 0 turns the penalty off.
	RepeatLastN int
	// Seed seeds the sampler's random number generator. Every value,
	// including 0, is an ordinary fixed seed; callers wanting fresh
	// randomness pick one themselves (for instance from the clock) and
	// report it so the run can be repeated.
	Seed uint64
}

// DefaultParams returns llama.cpp's defaults: temperature 0.8, top-k 40,
// top-p 0.95, min-p 0.05, repetition penalty off (1.0) over the last 64
// tokens, seed 0.
func DefaultParams() Params {
	return Params{
		Temperature:   0.8,
		TopK:          40,
		TopP:          0.95,
		MinP:          0.05,
		RepeatPenalty: 1.0,
		RepeatLastN:   64,
	}
}

// Validate reports the first parameter that is out of range, in an error
// wrapping ErrInvalidParams.
func (p Params) Validate() error {
	finite := func(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }
	switch {
	case !finite(p.Temperature) || p.Temperature < 0:
		return fmt.Errorf("%w: temperature %v out of range: want a finite value >= 0 (0 = greedy)", ErrInvalidParams, p.Temperature)
	case p.TopK < 0:
		return fmt.Errorf("%w: top-k %d out of range: want >= 0 (0 = off)", ErrInvalidParams, p.TopK)
	case !finite(p.TopP) || p.TopP <= 0 || p.TopP > 1:
		return fmt.Errorf("%w: top-p %v out of range: want 0 < top-p <= 1 (1 = off)", ErrInvalidParams, p.TopP)
	case !finite(p.MinP) || p.MinP < 0 || p.MinP > 1:
		return fmt.Errorf("%w: min-p %v out of range: want 0 <= min-p <= 1 (0 = off)", ErrInvalidParams, p.MinP)
	case !finite(p.RepeatPenalty) || p.RepeatPenalty <= 0:
		return fmt.Errorf("%w: repeat penalty %v out of range: want a finite value > 0 (1 = off)", ErrInvalidParams, p.RepeatPenalty)
	case p.RepeatLastN < 0:
		return fmt.Errorf("%w: repeat-last-n %d out of range: want >= 0 (0 = off)", ErrInvalidParams, p.RepeatLastN)
	}
	return nil
}

// ErrInvalidParams is wrapped by every error Validate and New return.
var ErrInvalidParams = errors.New("sample: invalid parameters")

// A Sampler chooses tokens from logits. It is not safe for concurrent use.
type Sampler struct {
	p Params

	rng rand.PCG

	// hist is a ring of the last RepeatLastN accepted tokens; it grows to
	// that length and then overwrites its oldest entry at histPos.
	hist    []int32
	histPos int

	// Buffers reused across calls so Sample does not allocate once they
	// have grown to the vocabulary size.
	cand  []cand
	stamp []uint32 // stamp[id] == epoch marks id as already penalised this call
	epoch uint32
}

// cand is one candidate token: its id, its (possibly penalised) logit, and
// its unnormalised probability relative to the best candidate.
type cand struct {
	w     float64
	logit float32
	id    int32
}

// pcgStream is the second PCG seed word; any fixed value works, this one
// only has to stay the same so that a seed keeps meaning the same tokens.
const pcgStream = 0x9e3779b97f4a7c15

// New returns a Sampler for p, or an error wrapping ErrInvalidParams naming
// the first parameter out of range.
func New(p Params) (*Sampler, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	s := &Sampler{p: p}
	s.rng.Seed(p.Seed, pcgStream)
	if s.penaltyOn() {
		s.hist = make([]int32, 0, min(p.RepeatLastN, 1024))
	}
	return s, nil
}

// Params returns the parameters the Sampler was made with.
func (s *Sampler) Params() Params { return s.p }

func (s *Sampler) penaltyOn() bool { return s.p.RepeatPenalty != 1 && s.p.RepeatLastN > 0 }

// Accept records tok as part of the sequence, for the repetition penalty.
// Feed it the prompt tokens and every token generated, sampled or not.
func (s *Sampler) Accept(tok int32) {
	if !s.penaltyOn() {
		return
	}
	if len(s.hist) < s.p.RepeatLastN {
		s.hist = append(s.hist, tok)
		return
	}
	s.hist[s.histPos] = tok
	s.histPos++
	if s.histPos == len(s.hist) {
		s.histPos = 0
	}
}

// Reset forgets the accepted tokens and reseeds the random number generator,
// returning the Sampler to the state New left it in (as llama.cpp's reset
// does), so a reset sampler repeats its earlier choices.
func (s *Sampler) Reset() {
	s.hist = s.hist[:0]
	s.histPos = 0
	s.rng.Seed(s.p.Seed, pcgStream)
}

// Sample returns the id of the chosen token. logits holds one score per token
// id and is not modified.
//
// With Temperature 0 it returns the highest-scoring token after the
// repetition penalty, the lowest id among equals, and consumes no randomness.
//
// Sample never panics on odd input: NaN logits count as -Inf (never chosen),
// +Inf as the largest finite float32; if every logit is -Inf or NaN, or
// logits is empty, it returns 0, the id an argmax with ties to the lowest id
// would give. Callers that must tell that case apart should check their
// logits.
func (s *Sampler) Sample(logits []float32) int32 {
	c, id := s.filter(logits)
	if len(c) == 0 {
		return id
	}
	z := 0.0
	for _, x := range c {
		z += x.w
	}
	// 53 random bits give a uniform u in [0, 1).
	u := float64(s.rng.Uint64()>>11) * 0x1p-53 * z
	cum := 0.0
	for _, x := range c {
		cum += x.w
		if u < cum {
			return x.id
		}
	}
	// Rounding left u at or past the total; the last candidate owns that end.
	return c[len(c)-1].id
}

// filter runs the chain up to the draw. It returns the surviving candidates
// with their final unnormalised probabilities in w, or nil and the token to
// return when there is nothing to draw (greedy decoding, or no finite logit).
func (s *Sampler) filter(logits []float32) ([]cand, int32) {
	n := len(logits)
	if n == 0 {
		return nil, 0
	}
	if s.p.Temperature <= 0 && !s.penaltyOn() {
		return nil, argmaxLogits(logits)
	}
	if cap(s.cand) < n {
		s.cand = make([]cand, n)
	}
	c := s.cand[:n]
	for i, l := range logits {
		c[i] = cand{logit: l, id: int32(i)}
	}
	if s.penaltyOn() {
		s.penalise(c)
	}
	// Clean up after the penalty, which can itself overflow to ±Inf.
	k := 0
	for _, x := range c {
		switch {
		case x.logit != x.logit || math.IsInf(float64(x.logit), -1):
			continue
		case x.logit > math.MaxFloat32:
			x.logit = math.MaxFloat32
		}
		c[k] = x
		k++
	}
	c = c[:k]
	if len(c) == 0 {
		return nil, 0
	}
	if s.p.Temperature <= 0 {
		return nil, argmax(c)
	}

	sorted := false // best first; otherwise still in id order
	if s.p.TopK > 0 && s.p.TopK < len(c) {
		selectTop(c, s.p.TopK)
		c = c[:s.p.TopK]
		sorted = true
	}

	maxLogit := c[0].logit
	if !sorted {
		for _, x := range c[1:] {
			maxLogit = max(maxLogit, x.logit)
		}
	}
	z := 0.0
	for i := range c {
		c[i].w = expDet(float64(c[i].logit) - float64(maxLogit))
		z += c[i].w
	}

	if s.p.TopP < 1 {
		c = topP(c, sorted, float64(s.p.TopP)*z)
	}
	if s.p.MinP > 0 {
		// The best token has w == 1, so this keeps at least one token.
		minW := float64(s.p.MinP)
		k := 0
		for _, x := range c {
			if x.w >= minW {
				c[k] = x
				k++
			}
		}
		c = c[:k]
	}

	// Temperature rescales what survived; the filters above work on the
	// untempered distribution, as in llama.cpp's chain order.
	if t := float64(s.p.Temperature); t != 1 {
		for i := range c {
			c[i].w = expDet((float64(c[i].logit) - float64(maxLogit)) / t)
		}
	}
	return c, 0
}

// penalise applies llama.cpp's repetition penalty to every distinct token in
// the history, once however often it occurs. c is still indexed by token id.
func (s *Sampler) penalise(c []cand) {
	if len(s.stamp) < len(c) {
		s.stamp = make([]uint32, len(c))
		s.epoch = 0
	}
	s.epoch++
	if s.epoch == 0 {
		clear(s.stamp)
		s.epoch = 1
	}
	pen := s.p.RepeatPenalty
	for _, t := range s.hist {
		if t < 0 || int(t) >= len(c) || s.stamp[t] == s.epoch {
			continue
		}
		s.stamp[t] = s.epoch
		if l := c[t].logit; l <= 0 {
			c[t].logit = l * pen
		} else {
			c[t].logit = l / pen
		}
	}
}

// argmax returns the id of the highest logit, the lowest id among equals.
// c is in id order.
func argmax(c []cand) int32 {
	best := c[0]
	for _, x := range c[1:] {
		if x.logit > best.logit {
			best = x
		}
	}
	return best.id
}

// argmaxLogits is argmax straight from the logits, skipping the candidate
// copy when nothing changes them: the same choice (NaN and -Inf skipped, the
// lowest id among equals, +Inf beating every finite score) and 0 if nothing
// is finite or +Inf.
func argmaxLogits(logits []float32) int32 {
	best, bestL := int32(0), float32(math.Inf(-1))
	for i, l := range logits {
		if l > bestL { // false for NaN
			best, bestL = int32(i), l
		}
	}
	return best
}

// topP keeps the best candidates whose weights first sum to at least
// target (at least one token): the shortest prefix of c in best-first order.
// When c is not sorted it finds that set with a quickselect-style partition
// in expected linear time instead of sorting the whole vocabulary, leaving
// the kept candidates in no particular order (the draw does not need one).
func topP(c []cand, sorted bool, target float64) []cand {
	acc := 0.0
	lo, hi := 0, len(c) // c[:lo] is in the nucleus, better than all of c[lo:]
	if !sorted {
		for hi-lo > 16 {
			a := partition(c[lo:hi]) + lo
			sum := 0.0
			for _, x := range c[lo:a] {
				sum += x.w
			}
			switch {
			case acc+sum >= target:
				hi = a
			case acc+sum+c[a].w >= target:
				return c[:a+1]
			default:
				acc += sum + c[a].w
				lo = a + 1
			}
		}
		slices.SortFunc(c[lo:hi], worse)
	}
	for i := lo; i < hi; i++ {
		acc += c[i].w
		if acc >= target {
			return c[:i+1]
		}
	}
	// Rounding kept the total just short of target: keep everything up to hi,
	// which is all of c unless a partition already showed the target is
	// reached within c[:hi].
	return c[:max(hi, 1)]
}

// partition reorders c around a pivot chosen as the median of its first,
// middle and last elements: candidates better than the pivot, the pivot,
// then worse ones. It returns the pivot's index.
func partition(c []cand) int {
	last := len(c) - 1
	mid := last / 2
	// Order c[0], c[mid], c[last] so the median lands in c[mid].
	if worse(c[mid], c[0]) < 0 {
		c[mid], c[0] = c[0], c[mid]
	}
	if worse(c[last], c[mid]) < 0 {
		c[last], c[mid] = c[mid], c[last]
		if worse(c[mid], c[0]) < 0 {
			c[mid], c[0] = c[0], c[mid]
		}
	}
	c[mid], c[last] = c[last], c[mid]
	p := c[last]
	i := 0
	for j := range last {
		if worse(c[j], p) < 0 {
			c[i], c[j] = c[j], c[i]
			i++
		}
	}
	c[i], c[last] = c[last], c[i]
	return i
}

// worse orders candidates best first: higher logit, then lower id. Ids are
// unique, so it is a strict total order and sorting is deterministic.
func worse(a, b cand) int {
	switch {
	case a.logit > b.logit:
		return -1
	case a.logit < b.logit:
		return 1
	case a.id < b.id:
		return -1
	case a.id > b.id:
		return 1
	}
	return 0
}

// selectTop moves the best m candidates to c[:m], best first, in
// O(len(c)·log m) without allocating: a min-heap of the best m seen so far,
// then a sort of those m.
func selectTop(c []cand, m int) {
	if m >= len(c) {
		slices.SortFunc(c, worse)
		return
	}
	h := c[:m]
	for i := m/2 - 1; i >= 0; i-- {
		siftDown(h, i)
	}
	for i := m; i < len(c); i++ {
		if worse(c[i], h[0]) < 0 {
			h[0], c[i] = c[i], h[0]
			siftDown(h, 0)
		}
	}
	slices.SortFunc(h, worse)
}

// siftDown restores the heap property below i in a heap whose root is the
// worst of its elements.
func siftDown(h []cand, i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		w := l
		if r := l + 1; r < len(h) && worse(h[r], h[l]) > 0 {
			w = r
		}
		if worse(h[w], h[i]) <= 0 {
			return
		}
		h[i], h[w] = h[w], h[i]
		i = w
	}
}
