package eval

import (
	"math"
	"slices"
)

// NLLAccumulator accumulates per-token negative log-likelihoods into a
// perplexity with llama.cpp's uncertainty estimate. The zero value is ready to
// use.
type NLLAccumulator struct {
	Sum   float64 // Σ NLL over the scored tokens, in nats
	Sum2  float64 // Σ NLL²
	Count int     // scored tokens
}

// Add scores one position: the row of logits that predicts token next.
func (a *NLLAccumulator) Add(logits []float32, next int32) error {
	nll, err := TokenNLL(logits, next)
	if err != nil {
		return err
	}
	a.AddNLL(nll)
	return nil
}

// AddNLL adds one token's negative log-likelihood.
func (a *NLLAccumulator) AddNLL(nll float64) {
	a.Sum += nll
	a.Sum2 += nll * nll
	a.Count++
}

// Merge adds b's tokens to a, so that positions can be scored in parallel.
func (a *NLLAccumulator) Merge(b *NLLAccumulator) {
	a.Sum += b.Sum
	a.Sum2 += b.Sum2
	a.Count += b.Count
}

// Mean returns the mean negative log-likelihood per token (NaN when empty).
func (a *NLLAccumulator) Mean() float64 {
	if a.Count == 0 {
		return math.NaN()
	}
	return a.Sum / float64(a.Count)
}

// PPL returns the perplexity exp(mean NLL) and llama.cpp's uncertainty
// PPL·sqrt(var(NLL)/(N−1)). The uncertainty is NaN with fewer than two tokens
// and 0 when rounding makes the variance non-positive.
func (a *NLLAccumulator) PPL() (ppl, uncertainty float64) {
	if a.Count == 0 {
		return math.NaN(), math.NaN()
	}
	n := float64(a.Count)
	mean := a.Sum / n
	ppl = math.Exp(mean)
	if a.Count < 2 {
		return ppl, math.NaN()
	}
	v := a.Sum2/n - mean*mean
	if v <= 0 {
		return ppl, 0
	}
	return ppl, math.Sqrt(v/(n-1)) * ppl
}

// KLDAccumulator accumulates llama.cpp's KL-divergence statistics over scored
// positions, each a row of the evaluated model's logits compared with the base
// model's stored row. It keeps every position's KLD and Δp (8 bytes per
// position) for the percentiles. The zero value is ready to use.
type KLDAccumulator struct {
	sumNLL, sumNLL2         float64
	sumNLLBase, sumNLLBase2 float64
	sumNLLNLLBase           float64
	sumKLD, sumKLD2         float64
	sumPDiff, sumPDiff2     float64
	sumPDiff4               float64
	sameTop, count          int
	kldValues, pDiffValues  []float32
	scratch                 []uint16
}

// Add compares one position: logits is the evaluated model's row, baseRow the
// base model's stored row for the same position (see [EncodeBaseRow]) and next
// the actual next token. It returns the position's KLD. On error nothing is
// accumulated. The row's length is checked, but it cannot tell an odd
// vocabulary from the next even one (the padding makes their rows equally
// long), so callers comparing against a file should check its Vocab, as
// [Perplexity] does.
func (a *KLDAccumulator) Add(logits []float32, baseRow []uint16, next int32) (float64, error) {
	n := len(logits)
	if err := checkToken(next, n); err != nil {
		return 0, err
	}
	scale, minLogProb, err := baseRowHeader(baseRow, n)
	if err != nil {
		return 0, err
	}
	maxv, imax, _, err := scanRow(logits)
	if err != nil {
		return 0, err
	}
	lse := float32(math.Log(sumExp(logits, maxv)))
	q := baseRow[4 : 4+n]

	nll := (maxv + lse) - logits[next]
	nllBase := -(float32(scale*float32(q[next])) + minLogProb)
	a.sumNLL += float64(nll)
	a.sumNLL2 += float64(float32(nll * nll))
	a.sumNLLBase += float64(nllBase)
	a.sumNLLBase2 += float64(float32(nllBase * nllBase))
	a.sumNLLNLLBase += float64(float32(nll * nllBase))

	// Σ p_base·(log p_base − log q) over the tokens above the storage floor.
	norm := maxv + lse
	var kld float64
	imaxBase := 0
	var baseMax float32
	for i, qi := range q {
		lpBase := float32(scale*float32(qi)) + minLogProb
		if i == 0 || lpBase > baseMax {
			baseMax, imaxBase = lpBase, i
		}
		if lpBase > -baseFloor {
			kld += float64(float32(expf(lpBase) * ((lpBase - logits[i]) + norm)))
		}
	}
	a.sumKLD += kld
	a.sumKLD2 += kld * kld
	a.count++
	if imax == imaxBase {
		a.sameTop++
	}

	pDiff := expf(-nll) - expf(-nllBase)
	a.sumPDiff += float64(pDiff)
	pDiff2 := float64(float32(pDiff * pDiff))
	a.sumPDiff2 += pDiff2
	a.sumPDiff4 += pDiff2 * pDiff2

	a.kldValues = append(a.kldValues, float32(kld))
	a.pDiffValues = append(a.pDiffValues, pDiff)
	return kld, nil
}

// AddLogits compares one position against unstored base logits. The base row
// is quantized exactly as a base file would store it, so the figures equal
// those of a save-then-compare run.
func (a *KLDAccumulator) AddLogits(logits, baseLogits []float32, next int32) (float64, error) {
	if len(baseLogits) != len(logits) {
		return 0, errVocabMismatch(len(logits), len(baseLogits))
	}
	nv := BaseRowLen(len(baseLogits))
	if cap(a.scratch) < nv {
		a.scratch = make([]uint16, nv)
	}
	a.scratch = a.scratch[:nv]
	if _, err := EncodeBaseRow(a.scratch, baseLogits, next); err != nil {
		return 0, err
	}
	return a.Add(logits, a.scratch, next)
}

// Merge adds b's positions to a, so that positions can be compared in parallel.
func (a *KLDAccumulator) Merge(b *KLDAccumulator) {
	a.sumNLL += b.sumNLL
	a.sumNLL2 += b.sumNLL2
	a.sumNLLBase += b.sumNLLBase
	a.sumNLLBase2 += b.sumNLLBase2
	a.sumNLLNLLBase += b.sumNLLNLLBase
	a.sumKLD += b.sumKLD
	a.sumKLD2 += b.sumKLD2
	a.sumPDiff += b.sumPDiff
	a.sumPDiff2 += b.sumPDiff2
	a.sumPDiff4 += b.sumPDiff4
	a.sameTop += b.sameTop
	a.count += b.count
	a.kldValues = append(a.kldValues, b.kldValues...)
	a.pDiffValues = append(a.pDiffValues, b.pDiffValues...)
}

// Count returns the number of positions compared.
func (a *KLDAccumulator) Count() int { return a.count }

// Reset empties the accumulator, keeping its buffers.
func (a *KLDAccumulator) Reset() {
	*a = KLDAccumulator{
		kldValues:   a.kldValues[:0],
		pDiffValues: a.pDiffValues[:0],
		scratch:     a.scratch,
	}
}

// KLDStats are the statistics llama-perplexity --kl-divergence prints. "Q" is
// the evaluated model, "base" the model that wrote the base file. Percentile
// fields are named by fraction: P999 is the 99.9th percentile, P001 the 0.1th.
// Uncertainties are one standard error, as llama.cpp computes them; they are 0
// with ten or fewer positions.
type KLDStats struct {
	Count int // positions compared

	PPL, PPLErr                 float64 // PPL(Q)
	BasePPL, BasePPLErr         float64 // PPL(base), from the stored log-probabilities
	LogPPLCor                   float64 // correlation of ln PPL(Q) and ln PPL(base) (a fraction)
	LogPPLRatio, LogPPLRatioErr float64 // mean ln(PPL(Q)/PPL(base))
	PPLRatio, PPLRatioErr       float64 // PPL(Q)/PPL(base)
	PPLDiff, PPLDiffErr         float64 // PPL(Q)−PPL(base)

	Mean, MeanErr                                       float64 // mean KLD, nats
	Max, P999, P99, P95, P90, Median, P10, P5, P1, P001 float64
	Min                                                 float64

	DeltaP DeltaPStats

	SameTop, SameTopErr float64 // fraction of positions whose argmax agrees
}

// DeltaPStats describe Δp, the evaluated model's probability of the actual
// next token minus the base model's, as fractions (not percent).
type DeltaPStats struct {
	Mean, MeanErr                                                 float64
	Max, P999, P99, P95, P90, P75, Median, P25, P10, P5, P1, P001 float64
	Min                                                           float64
	RMS, RMSErr                                                   float64
}

// meanAndUncertainty is llama.cpp's: no uncertainty with ten or fewer values.
func meanAndUncertainty(sum, sum2 float64, count int) (mean, unc float64) {
	if count < 1 {
		return 0, 0
	}
	n := float64(count)
	mean = sum / n
	d := sum2/n - mean*mean
	if d > 0 && count > 10 {
		unc = math.Sqrt(d / (n - 1))
	}
	return mean, unc
}

func covariance(suma, sumb, sumab float64, count int) float64 {
	if count < 10 {
		return 0
	}
	n := float64(count)
	return (sumab/n - (suma/n)*(sumb/n)) / (n - 1)
}

// ratio returns a/b, or NaN when b is zero, for figures llama.cpp would print
// as inf or nan.
func ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

// Stats computes the statistics. It sorts the stored per-position values in
// place, which does not affect later Add calls. With no positions every figure
// is NaN.
func (a *KLDAccumulator) Stats() *KLDStats {
	s := &KLDStats{Count: a.count}
	if a.count == 0 {
		nan := math.NaN()
		*s = KLDStats{PPL: nan, PPLErr: nan, BasePPL: nan, BasePPLErr: nan, LogPPLCor: nan,
			LogPPLRatio: nan, LogPPLRatioErr: nan, PPLRatio: nan, PPLRatioErr: nan, PPLDiff: nan, PPLDiffErr: nan,
			Mean: nan, MeanErr: nan, Max: nan, P999: nan, P99: nan, P95: nan, P90: nan, Median: nan,
			P10: nan, P5: nan, P1: nan, P001: nan, Min: nan, SameTop: nan, SameTopErr: nan,
			DeltaP: DeltaPStats{Mean: nan, MeanErr: nan, Max: nan, P999: nan, P99: nan, P95: nan, P90: nan,
				P75: nan, Median: nan, P25: nan, P10: nan, P5: nan, P1: nan, P001: nan, Min: nan, RMS: nan, RMSErr: nan}}
		return s
	}
	n := a.count

	logPPL, logPPLUnc := meanAndUncertainty(a.sumNLL, a.sumNLL2, n)
	s.PPL = math.Exp(logPPL)
	s.PPLErr = s.PPL * logPPLUnc
	logBase, logBaseUnc := meanAndUncertainty(a.sumNLLBase, a.sumNLLBase2, n)
	s.BasePPL = math.Exp(logBase)
	s.BasePPLErr = s.BasePPL * logBaseUnc
	cov := covariance(a.sumNLL, a.sumNLLBase, a.sumNLLNLLBase, n)
	s.LogPPLCor = ratio(cov, logPPLUnc*logBaseUnc)
	s.LogPPLRatio = logPPL - logBase
	s.LogPPLRatioErr = math.Sqrt(logPPLUnc*logPPLUnc + logBaseUnc*logBaseUnc - 2*cov)
	s.PPLRatio = math.Exp(s.LogPPLRatio)
	s.PPLRatioErr = s.PPLRatio * s.LogPPLRatioErr
	s.PPLDiff = s.PPL - s.BasePPL
	s.PPLDiffErr = math.Sqrt(s.PPLErr*s.PPLErr + s.BasePPLErr*s.BasePPLErr - 2*s.PPL*s.BasePPL*cov)

	s.Mean, s.MeanErr = meanAndUncertainty(a.sumKLD, a.sumKLD2, n)
	k := a.kldValues
	slices.Sort(k)
	s.Max = float64(k[len(k)-1])
	s.P999 = float64(Percentile(k, 0.999))
	s.P99 = float64(Percentile(k, 0.990))
	s.P95 = float64(Percentile(k, 0.950))
	s.P90 = float64(Percentile(k, 0.900))
	s.Median = float64(Median(k))
	s.P10 = float64(Percentile(k, 0.100))
	s.P5 = float64(Percentile(k, 0.050))
	s.P1 = float64(Percentile(k, 0.010))
	s.P001 = float64(Percentile(k, 0.001))
	s.Min = float64(k[0])

	d := &s.DeltaP
	d.Mean, d.MeanErr = meanAndUncertainty(a.sumPDiff, a.sumPDiff2, n)
	p := a.pDiffValues
	slices.Sort(p)
	d.Max = float64(p[len(p)-1])
	d.P999 = float64(Percentile(p, 0.999))
	d.P99 = float64(Percentile(p, 0.990))
	d.P95 = float64(Percentile(p, 0.950))
	d.P90 = float64(Percentile(p, 0.900))
	d.P75 = float64(Percentile(p, 0.750))
	d.Median = float64(Median(p))
	d.P25 = float64(Percentile(p, 0.250))
	d.P10 = float64(Percentile(p, 0.100))
	d.P5 = float64(Percentile(p, 0.050))
	d.P1 = float64(Percentile(p, 0.010))
	d.P001 = float64(Percentile(p, 0.001))
	d.Min = float64(p[0])
	mse, mseUnc := meanAndUncertainty(a.sumPDiff2, a.sumPDiff4, n)
	d.RMS = math.Sqrt(mse)
	if d.RMS > 0 {
		d.RMSErr = 0.5 / d.RMS * mseUnc
	}

	s.SameTop = float64(a.sameTop) / float64(n)
	if n > 1 {
		s.SameTopErr = math.Sqrt(s.SameTop * (1 - s.SameTop) / float64(n-1))
	}
	return s
}

// Percentile returns the value at fraction (0..1) of the way through sorted,
// interpolating linearly between neighbours in single precision as llama.cpp
// does: with p = fraction·(len−1), it is (1−frac(p))·sorted[⌊p⌋] +
// frac(p)·sorted[⌊p⌋+1]. Fractions outside (0, 1) give the first or last value;
// an empty slice gives NaN.
func Percentile(sorted []float32, fraction float32) float32 {
	if len(sorted) == 0 {
		return float32(math.NaN())
	}
	if fraction <= 0 || fraction != fraction {
		return sorted[0]
	}
	if fraction >= 1 {
		return sorted[len(sorted)-1]
	}
	p := float32(fraction * float32(len(sorted)-1))
	ip := int(p)
	p -= float32(ip)
	return float32((1-p)*sorted[ip]) + float32(p*sorted[min(ip+1, len(sorted)-1)])
}

// Median returns the middle of sorted, the mean of the two middle values when
// the length is even (NaN when empty).
func Median(sorted []float32) float32 {
	n := len(sorted)
	switch {
	case n == 0:
		return float32(math.NaN())
	case n%2 == 0:
		return 0.5 * (sorted[n/2] + sorted[n/2-1])
	default:
		return sorted[n/2]
	}
}
