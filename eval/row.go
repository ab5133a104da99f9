package eval

import (
	"fmt"
	"math"
)

// The functions in this file reproduce llama.cpp's per-row arithmetic,
// including which steps run in single and which in double precision, so that
// figures agree to the last printed digit rather than merely statistically.
// Products are wrapped in float32 conversions where llama.cpp rounds them,
// which also stops the Go compiler fusing them into FMAs.

// baseFloor is llama.cpp's dynamic range for stored log-probabilities and its
// cut-off in the KLD sum: tokens this many nats below the top one are dropped.
const baseFloor = 16

// expf is C's expf: exp rounded to single precision.
func expf(x float32) float32 { return float32(math.Exp(float64(x))) }

// scanRow returns the maximum logit, the index of its first occurrence and the
// minimum logit, rejecting non-finite values, which would otherwise turn every
// statistic into NaN without saying why.
func scanRow(logits []float32) (maxv float32, imax int, minv float32, err error) {
	if len(logits) == 0 {
		return 0, 0, 0, fmt.Errorf("eval: empty logits row")
	}
	maxv, minv = logits[0], logits[0]
	for i, v := range logits {
		if v-v != 0 { // NaN or ±Inf
			return 0, 0, 0, fmt.Errorf("eval: logit %d is %v", i, v)
		}
		if v > maxv {
			maxv, imax = v, i
		}
		if v < minv {
			minv = v
		}
	}
	return maxv, imax, minv, nil
}

// sumExp is Σ exp(l−maxv) with each term in single precision and the sum in
// double precision.
func sumExp(logits []float32, maxv float32) float64 {
	var s float64
	for _, v := range logits {
		s += float64(expf(v - maxv))
	}
	return s
}

func checkToken(next int32, vocab int) error {
	if next < 0 || int(next) >= vocab {
		return fmt.Errorf("eval: token id %d out of range [0, %d)", next, vocab)
	}
	return nil
}

// TokenNLL returns the negative log-likelihood, in nats, that a row of logits
// assigns to token next, computed as llama-perplexity's plain perplexity mode
// does.
func TokenNLL(logits []float32, next int32) (float64, error) {
	if err := checkToken(next, len(logits)); err != nil {
		return 0, err
	}
	maxv, _, _, err := scanRow(logits)
	if err != nil {
		return 0, err
	}
	lse := math.Log(sumExp(logits, maxv))
	// llama.cpp: logits[tok] - max_logit (float) - log(sum_exp) (double).
	return -(float64(logits[next]-maxv) - lse), nil
}

// BaseRowLen is the length in uint16 values of one stored base row for a
// vocabulary of nVocab tokens: two float32 header values, the quantized
// log-probabilities and a padding value when nVocab is odd.
func BaseRowLen(nVocab int) int { return 2*((nVocab+1)/2) + 4 }

// EncodeBaseRow quantizes the log-softmax of a row of logits into dst, which
// must have length BaseRowLen(len(logits)), using llama.cpp's scheme (see the
// package documentation). It returns the negative log-likelihood of token next
// as llama.cpp computes it while saving a base file.
func EncodeBaseRow(dst []uint16, logits []float32, next int32) (float64, error) {
	n := len(logits)
	if len(dst) != BaseRowLen(n) {
		return 0, fmt.Errorf("eval: base row has %d values, want %d for a vocabulary of %d", len(dst), BaseRowLen(n), n)
	}
	if err := checkToken(next, n); err != nil {
		return 0, err
	}
	maxv, _, minv, err := scanRow(logits)
	if err != nil {
		return 0, err
	}
	minv = max(minv, maxv-baseFloor)
	lse := float32(math.Log(sumExp(logits, maxv)))
	minLogProb := (minv - maxv) - lse
	scale := (maxv - minv) / 65535
	putFloat(dst[0:2], scale)
	putFloat(dst[2:4], minLogProb)
	q := dst[4:]
	if scale != 0 {
		inv := 1 / scale
		for i, v := range logits {
			if v > minv {
				// llama.cpp's nearest_int rounds half to even.
				r := math.RoundToEven(float64(float32(inv * (v - minv))))
				q[i] = uint16(min(r, 65535))
			} else {
				q[i] = 0
			}
		}
	} else {
		clear(q[:n])
	}
	clear(q[n:])
	return float64((maxv + lse) - logits[next]), nil
}

// DecodeBaseRow writes the log-probabilities stored in a base row into dst,
// which must have one element per vocabulary entry.
func DecodeBaseRow(dst []float32, row []uint16) error {
	scale, minLogProb, err := baseRowHeader(row, len(dst))
	if err != nil {
		return err
	}
	for i, q := range row[4 : 4+len(dst)] {
		dst[i] = float32(scale*float32(q)) + minLogProb
	}
	return nil
}

// baseRowHeader validates a stored row for a vocabulary of n tokens and returns
// its scale and offset. A corrupt file would otherwise yield NaN statistics.
func baseRowHeader(row []uint16, n int) (scale, minLogProb float32, err error) {
	if len(row) != BaseRowLen(n) {
		return 0, 0, fmt.Errorf("eval: base row has %d values, want %d for a vocabulary of %d", len(row), BaseRowLen(n), n)
	}
	scale, minLogProb = getFloat(row[0:2]), getFloat(row[2:4])
	if scale-scale != 0 || scale < 0 || minLogProb-minLogProb != 0 || minLogProb > 0 {
		return 0, 0, fmt.Errorf("eval: corrupt base row: scale %v, minimum log-probability %v", scale, minLogProb)
	}
	return scale, minLogProb, nil
}

// putFloat stores f as two uint16 values in little-endian order, which is how
// llama.cpp's float header lands in its uint16 row on a little-endian host.
func putFloat(d []uint16, f float32) {
	b := math.Float32bits(f)
	d[0], d[1] = uint16(b), uint16(b>>16)
}

func getFloat(d []uint16) float32 {
	return math.Float32frombits(uint32(d[0]) | uint32(d[1])<<16)
}
