package tensor

import (
	"fmt"
	"math"
)

// Quantizers for the K-quants, and the importance-weighted quantizers of
// every type that has one, ported from ggml. Without importance weights they
// are ggml's quantize_row_<t>_ref (the path llama-quantize takes without an
// importance matrix); with them, quantize_row_<t>_impl (llama-quantize
// --imatrix), which minimises Σ importance_j·sqrt(σ²+x_j²)·err_j² (Q6_K:
// importance·err²). Both search per sub-block for scales (and mins) that
// minimise a weighted error, then quantize the sub-block scales themselves;
// they differ in the weights, the search and how the scales are quantized,
// and share the rest.
//
// Floating-point expressions follow the C source's evaluation order with
// every intermediate rounded to float32 (explicit conversions stop Go from
// fusing multiply-adds). ggml compiled with FMA contraction can round some
// of these sums differently, which on rare near-ties flips a search
// decision; the output is then a different but equally valid encoding.

const groupMaxEps = 1e-15

func clampInt(v, lo, hi int32) int32 { return max(lo, min(hi, v)) }

func sqrt32(f float32) float32 { return float32(math.Sqrt(float64(f))) }

// QuantizeWeighted is Quantize with importance weights: qw holds one
// non-negative importance per column (len(qw) is the row length, len(src) a
// whole number of rows) and every row is quantized to minimise its
// importance-weighted error, as ggml's quantize_row_<t>_impl does for Q4_0,
// Q4_1, Q5_0, Q5_1 and Q2_K … Q6_K. Other types ignore the weights, as in
// ggml. With qw nil it is exactly Quantize.
func QuantizeWeighted(t Type, src []float32, dst []byte, qw []float32) error {
	f, ok := weightedQuantizers[t]
	if qw == nil || !ok {
		if qw != nil && (len(qw) == 0 || len(src)%len(qw) != 0) {
			return fmt.Errorf("tensor: %d importance weights do not divide %d elements into rows", len(qw), len(src))
		}
		return Quantize(t, src, dst)
	}
	cols := len(qw)
	if cols == 0 || len(src)%cols != 0 {
		return fmt.Errorf("tensor: %d importance weights do not divide %d elements into rows", cols, len(src))
	}
	rb, err := RowBytes(t, cols)
	if err != nil {
		return fmt.Errorf("tensor: quantize %s: %w", t, err)
	}
	rows := len(src) / cols
	if len(dst) != rb*rows {
		return fmt.Errorf("tensor: quantize %d elements to %s needs %d bytes, got %d", len(src), t, rb*rows, len(dst))
	}
	for r := range rows {
		f(src[r*cols:(r+1)*cols], dst[r*rb:(r+1)*rb], qw)
	}
	return nil
}

// weightedQuantizers quantize one row with importance weights (one per
// element of the row).
var weightedQuantizers = map[Type]func(x []float32, dst []byte, qw []float32){
	Q4_0: quantizeQ4_0Weighted,
	Q4_1: quantizeQ4_1Weighted,
	Q5_0: quantizeQ5_0Weighted,
	Q5_1: quantizeQ5_1Weighted,
	Q2_K: quantizeQ2K,
	Q3_K: quantizeQ3K,
	Q4_K: quantizeQ4K,
	Q5_K: quantizeQ5K,
	Q6_K: quantizeQ6K,
}

// makeQKXQuants is ggml's make_qkx2_quants (and make_qkx3_quants, the same
// search with x² for nil weights): an asymmetric (scale, min) fit of x to
// levels 0..nmax under weights, trying nstep+1 scale perturbations and
// keeping the least weighted error. It returns the scale and -min.
func makeQKXQuants(nmax int32, x, weights []float32, L, Laux []uint8, rmin, rdelta float32, nstep int, useMad bool) (scale, negMin float32) {
	n := len(x)
	wt := func(i int) float32 {
		if weights != nil {
			return weights[i]
		}
		return float32(x[i] * x[i])
	}
	xmin, xmax := x[0], x[0]
	sumW := wt(0)
	sumX := float32(sumW * x[0])
	for i := 1; i < n; i++ {
		if x[i] < xmin {
			xmin = x[i]
		}
		if x[i] > xmax {
			xmax = x[i]
		}
		w := wt(i)
		sumW += w
		sumX += float32(w * x[i])
	}
	if xmin > 0 {
		xmin = 0
	}
	if xmax == xmin {
		clear(L[:n])
		return 0, -xmin
	}
	fmax := float32(nmax)
	iscale := fmax / float32(xmax-xmin)
	scale = 1 / iscale
	errOf := func(diff float32) float32 {
		if useMad {
			return abs32(diff)
		}
		return float32(diff * diff)
	}
	var bestError float32
	for i := 0; i < n; i++ {
		l := nearestInt(float32(iscale * float32(x[i]-xmin)))
		L[i] = uint8(clampInt(l, 0, nmax))
		diff := float32(float32(float32(scale*float32(L[i]))+xmin) - x[i])
		bestError += float32(wt(i) * errOf(diff))
	}
	if nstep < 1 {
		return scale, -xmin
	}
	for is := 0; is <= nstep; is++ {
		iscale = float32(float32(rmin+float32(rdelta*float32(is)))+fmax) / float32(xmax-xmin)
		var sumL, sumL2, sumXL float32
		for i := 0; i < n; i++ {
			l := clampInt(nearestInt(float32(iscale*float32(x[i]-xmin))), 0, nmax)
			Laux[i] = uint8(l)
			w := wt(i)
			fl := float32(l)
			sumL += float32(w * fl)
			sumL2 += float32(float32(w*fl) * fl)
			sumXL += float32(float32(w*fl) * x[i])
		}
		D := float32(float32(sumW*sumL2) - float32(sumL*sumL))
		if D > 0 {
			thisScale := float32(float32(sumW*sumXL)-float32(sumX*sumL)) / D
			thisMin := float32(float32(sumL2*sumX)-float32(sumL*sumXL)) / D
			if thisMin > 0 {
				thisMin = 0
				thisScale = sumXL / sumL2
			}
			var curError float32
			for i := 0; i < n; i++ {
				diff := float32(float32(float32(thisScale*float32(Laux[i]))+thisMin) - x[i])
				curError += float32(wt(i) * errOf(diff))
			}
			if curError < bestError {
				copy(L[:n], Laux[:n])
				bestError = curError
				scale = thisScale
				xmin = thisMin
			}
		}
	}
	return scale, -xmin
}

// makeQ3Quants is ggml's make_q3_quants with do_rmse: a symmetric fit to
// levels -nmax..nmax-1, refined by coordinate descent on an x²-weighted
// error. L receives levels offset by nmax.
func makeQ3Quants(nmax int32, x []float32, L []int8) float32 {
	n := len(x)
	var xmax, amax float32
	for _, v := range x {
		if ax := abs32(v); ax > amax {
			amax, xmax = ax, v
		}
	}
	if amax < groupMaxEps {
		clear(L[:n])
		return 0
	}
	fmax := float32(nmax)
	iscale := -fmax / xmax
	var sumlx, suml2 float32
	for i, v := range x {
		l := clampInt(nearestInt(float32(iscale*v)), -nmax, nmax-1)
		L[i] = int8(l)
		w := float32(v * v)
		sumlx += float32(float32(w*v) * float32(l))
		suml2 += float32(float32(w*float32(l)) * float32(l))
	}
	for itry := 0; itry < 5; itry++ {
		changed := false
		for i, v := range x {
			w := float32(v * v)
			li := float32(L[i])
			slx := float32(sumlx - float32(float32(w*v)*li))
			if slx > 0 {
				sl2 := float32(suml2 - float32(float32(w*li)*li))
				newL := clampInt(nearestInt(float32(v*sl2)/slx), -nmax, nmax-1)
				if newL != int32(L[i]) {
					fl := float32(newL)
					slx += float32(float32(w*v) * fl)
					sl2 += float32(float32(w*fl) * fl)
					if sl2 > 0 && float32(float32(slx*slx)*suml2) > float32(float32(sumlx*sumlx)*sl2) {
						L[i] = int8(newL)
						sumlx, suml2 = slx, sl2
						changed = true
					}
				}
			}
		}
		if !changed {
			break
		}
	}
	for i := range L[:n] {
		L[i] += int8(nmax)
	}
	if suml2 > 0 {
		return sumlx / suml2
	}
	return 0
}

// makeQXQuants is ggml's make_qx_quants with rmse_type 1: a symmetric fit
// of x to levels -nmax..nmax-1 that tries 19 scales and keeps the one with
// the least weighted squared error, weights qw or x² for qw nil. L receives
// levels offset by nmax.
func makeQXQuants(nmax int32, x []float32, L []int8, qw []float32) float32 {
	n := len(x)
	var xmax, amax float32
	for _, v := range x {
		if ax := abs32(v); ax > amax {
			amax, xmax = ax, v
		}
	}
	if amax < groupMaxEps {
		clear(L[:n])
		return 0
	}
	fmax := float32(nmax)
	sums := func(iscale float32, store bool) (sumlx, suml2 float32) {
		for i, v := range x {
			l := clampInt(nearestInt(float32(iscale*v)), -nmax, nmax-1)
			if store {
				L[i] = int8(l + nmax)
			}
			w := float32(v * v)
			if qw != nil {
				w = qw[i]
			}
			fl := float32(l)
			sumlx += float32(float32(w*v) * fl)
			suml2 += float32(float32(w*fl) * fl)
		}
		return sumlx, suml2
	}
	sumlx, suml2 := sums(-fmax/xmax, true)
	var scale float32
	if suml2 != 0 {
		scale = sumlx / suml2
	}
	best := float32(scale * sumlx)
	for is := -9; is <= 9; is++ {
		if is == 0 {
			continue
		}
		iscale := -float32(fmax+float32(0.1*float32(is))) / xmax
		sumlx, suml2 = sums(iscale, false)
		if suml2 > 0 && float32(sumlx*sumlx) > float32(best*suml2) {
			sums(iscale, true)
			scale = sumlx / suml2
			best = float32(scale * sumlx)
		}
	}
	return scale
}

// MakeQXQuants is ggml's make_qx_quants with rmse_type 1, the symmetric
// scale search of the Q3_K, Q6_K and importance-weighted legacy quantizers,
// for quantizers built on it elsewhere (tamp's SQ types): it fits x to
// levels -nmax..nmax-1, stores them in L offset by nmax, and returns the
// scale that minimises the squared error weighted by qw (x² for qw nil).
func MakeQXQuants(nmax int32, x []float32, L []int8, qw []float32) float32 {
	return makeQXQuants(nmax, x, L, qw)
}

// makeQPQuants is ggml's make_qp_quants: a fit of non-negative x (sub-block
// scales or mins) to levels 0..nmax under weights qw, used by the
// importance-weighted quantizers to quantize the scales of a K-quant
// super-block. It returns the super-block scale.
func makeQPQuants(nmax int32, x []float32, L []uint8, qw []float32) float32 {
	n := len(x)
	var xmax float32
	for _, v := range x {
		xmax = max(xmax, v)
	}
	if xmax < groupMaxEps {
		clear(L[:n])
		return 0
	}
	fmax := float32(nmax)
	iscale := fmax / xmax
	for i, v := range x {
		L[i] = uint8(nearestInt(float32(iscale * v)))
	}
	scale := 1 / iscale
	var bestMse float32
	for i, v := range x {
		diff := float32(v - float32(scale*float32(L[i])))
		bestMse += float32(float32(qw[i]*diff) * diff)
	}
	for is := -4; is <= 4; is++ {
		if is == 0 {
			continue
		}
		iscaleIs := float32(float32(0.1*float32(is))+fmax) / xmax
		scaleIs := 1 / iscaleIs
		var mse float32
		for i, v := range x {
			l := min(nmax, nearestInt(float32(iscaleIs*v)))
			diff := float32(v - float32(scaleIs*float32(l)))
			mse += float32(float32(qw[i]*diff) * diff)
		}
		if mse < bestMse {
			bestMse = mse
			iscale = iscaleIs
		}
	}
	var sumlx, suml2 float32
	for i, v := range x {
		l := min(nmax, nearestInt(float32(iscale*v)))
		L[i] = uint8(l)
		fl := float32(l)
		sumlx += float32(float32(qw[i]*v) * fl)
		suml2 += float32(float32(qw[i]*fl) * fl)
	}
	for itry := 0; itry < 5; itry++ {
		changed := false
		for i, v := range x {
			w := qw[i]
			li := float32(L[i])
			slx := float32(sumlx - float32(float32(w*v)*li))
			sl2 := float32(suml2 - float32(float32(w*li)*li))
			if slx > 0 && sl2 > 0 {
				newL := min(nmax, nearestInt(float32(v*sl2)/slx))
				if newL != int32(L[i]) {
					fl := float32(newL)
					slx += float32(float32(w*v) * fl)
					sl2 += float32(float32(w*fl) * fl)
					if float32(float32(slx*slx)*suml2) > float32(float32(sumlx*sumlx)*sl2) {
						L[i] = uint8(newL)
						sumlx, suml2 = slx, sl2
						changed = true
					}
				}
			}
		}
		if !changed {
			break
		}
	}
	if suml2 > 0 {
		return sumlx / suml2
	}
	return 0
}

// sumSquares is the float32 running sum of x², in order, as the C loops
// compute it.
func sumSquares(x []float32) float32 {
	var s float32
	for _, v := range x {
		s += float32(v * v)
	}
	return s
}

// importanceWeights fills w[j] = qw[j]·sqrt(sigma2 + x[j]²), the per-weight
// weights the _impl quantizers derive from the importance matrix, and
// returns their sum.
func importanceWeights(w, qw, x []float32, sigma2 float32) float32 {
	var s float32
	for j, v := range x {
		w[j] = float32(qw[j] * sqrt32(float32(sigma2+float32(v*v))))
	}
	for _, v := range w[:len(x)] {
		s += v
	}
	return s
}

// packQ2 stores 2-bit levels L (256 of them) in the Q2_K/Q3_K layout: byte l
// of each 32-byte group holds elements l, l+32, l+64, l+96 of a 128-element
// half, lowest bits first.
func packQ2(L []uint8, qs []byte) {
	for j := 0; j < qkK; j += 128 {
		for l := 0; l < 32; l++ {
			qs[j/4+l] = L[j+l] | L[j+l+32]<<2 | L[j+l+64]<<4 | L[j+l+96]<<6
		}
	}
}

// QuantizeQ2_K quantizes x into Q2_K blocks as ggml's quantize_row_q2_K_ref.
func QuantizeQ2_K(x []float32, dst []byte) { quantizeQ2K(x, dst, nil) }

// quantizeQ2K is quantize_row_q2_K_ref for qw nil, else
// quantize_row_q2_K_impl with importances qw (one per element of x).
func quantizeQ2K(x []float32, dst []byte, qw []float32) {
	nb := blocks(Q2_K, x, dst)
	var L [qkK]uint8
	var laux [16]uint8
	var weights, sw [16]float32
	var mins, scales [16]float32
	var Ls, Lm [16]uint8
	for i := 0; i < nb; i++ {
		xb := x[i*qkK : i*qkK+qkK]
		b := dst[i*84 : i*84+84]
		if qw == nil {
			var maxScale, maxMin float32
			for j := 0; j < 16; j++ {
				for l := 0; l < 16; l++ {
					weights[l] = abs32(xb[16*j+l])
				}
				scales[j], mins[j] = makeQKXQuants(3, xb[16*j:16*j+16], weights[:], L[16*j:16*j+16], laux[:], -0.5, 0.1, 15, true)
				if scales[j] > maxScale {
					maxScale = scales[j]
				}
				if mins[j] > maxMin {
					maxMin = mins[j]
				}
			}
			const q4scale = 15
			if maxScale > 0 {
				iscale := q4scale / maxScale
				for j := 0; j < 16; j++ {
					b[j] = uint8(nearestInt(float32(iscale * scales[j])))
				}
				putF16(b[80:], F32ToF16(maxScale/q4scale))
			} else {
				clear(b[:16])
				putF16(b[80:], 0)
			}
			if maxMin > 0 {
				iscale := q4scale / maxMin
				for j := 0; j < 16; j++ {
					b[j] |= uint8(nearestInt(float32(iscale*mins[j])) << 4)
				}
				putF16(b[82:], F32ToF16(maxMin/q4scale))
			} else {
				putF16(b[82:], 0)
			}
		} else {
			sigma2 := sumSquares(xb) / qkK
			for j := 0; j < 16; j++ {
				sw[j] = importanceWeights(weights[:], qw[qkK*i+16*j:qkK*i+16*j+16], xb[16*j:16*j+16], sigma2)
				scales[j], mins[j] = makeQKXQuants(3, xb[16*j:16*j+16], weights[:], L[16*j:16*j+16], laux[:], -0.9, 0.05, 36, false)
			}
			putF16(b[80:], F32ToF16(makeQPQuants(15, scales[:], Ls[:], sw[:])))
			putF16(b[82:], F32ToF16(makeQPQuants(15, mins[:], Lm[:], sw[:])))
			for j := 0; j < 16; j++ {
				b[j] = Ls[j] | Lm[j]<<4
			}
		}
		dAll, dmAll := f16(b[80:]), f16(b[82:])
		for j := 0; j < 16; j++ {
			d := dAll * float32(b[j]&0x0f)
			if d == 0 {
				continue
			}
			dm := dmAll * float32(b[j]>>4)
			for ii := 0; ii < 16; ii++ {
				l := nearestInt(float32(xb[16*j+ii]+dm) / d)
				L[16*j+ii] = uint8(clampInt(l, 0, 3))
			}
		}
		packQ2(L[:], b[16:80])
	}
}

// QuantizeQ3_K quantizes x into Q3_K blocks as ggml's quantize_row_q3_K_ref.
func QuantizeQ3_K(x []float32, dst []byte) { quantizeQ3K(x, dst, nil) }

// quantizeQ3K is quantize_row_q3_K_ref for qw nil, else
// quantize_row_q3_K_impl with importances qw.
func quantizeQ3K(x []float32, dst []byte, qw []float32) {
	nb := blocks(Q3_K, x, dst)
	var L [qkK]int8
	var scales, weights, sw [16]float32
	var Ls [16]int8
	var packed [qkK]uint8
	for i := 0; i < nb; i++ {
		xb := x[i*qkK : i*qkK+qkK]
		b := dst[i*110 : i*110+110]
		sc := b[96:108]
		// levels: the sixteen 6-bit sub-block scales, offset by 32.
		var levels [16]uint8
		if qw == nil {
			var maxScale, amax float32
			for j := 0; j < 16; j++ {
				scales[j] = makeQ3Quants(4, xb[16*j:16*j+16], L[16*j:16*j+16])
				if s := abs32(scales[j]); s > amax {
					amax, maxScale = s, scales[j]
				}
			}
			if maxScale != 0 {
				iscale := -32 / maxScale
				for j := 0; j < 16; j++ {
					l := int8(nearestInt(float32(iscale * scales[j])))
					levels[j] = uint8(max(-32, min(31, l)) + 32)
				}
				putF16(b[108:], F32ToF16(1/iscale))
			} else {
				putF16(b[108:], 0)
			}
		} else {
			sigma2 := float32(2*sumSquares(xb)) / qkK
			for j := 0; j < 16; j++ {
				sw[j] = importanceWeights(weights[:], qw[qkK*i+16*j:qkK*i+16*j+16], xb[16*j:16*j+16], sigma2)
				scales[j] = makeQXQuants(4, xb[16*j:16*j+16], L[16*j:16*j+16], weights[:])
			}
			putF16(b[108:], F32ToF16(makeQXQuants(32, scales[:], Ls[:], sw[:])))
			for j := range levels {
				levels[j] = uint8(Ls[j])
			}
		}
		clear(sc)
		for j, l := range levels {
			if j < 8 {
				sc[j] = l & 0x0f
			} else {
				sc[j-8] |= (l & 0x0f) << 4
			}
			sc[j%4+8] |= (l >> 4) << (2 * (j / 4))
		}
		var s6 [16]int8
		q3kScales(sc, &s6)
		dAll := f16(b[108:])
		for j := 0; j < 16; j++ {
			d := dAll * float32(int32(s6[j])-32)
			if d == 0 {
				continue
			}
			for ii := 0; ii < 16; ii++ {
				l := nearestInt(xb[16*j+ii] / d)
				L[16*j+ii] = int8(clampInt(l, -4, 3) + 4)
			}
		}
		hm := b[0:32]
		clear(hm)
		for j := 0; j < qkK; j++ {
			l := L[j]
			if l > 3 {
				hm[j%32] |= 1 << (j / 32)
				l -= 4
			}
			packed[j] = uint8(l)
		}
		packQ2(packed[:], b[32:96])
	}
}

// packScalesK4 stores eight 6-bit scales and mins in Q4_K/Q5_K's 12 bytes
// (the inverse of scaleMinK4).
func packScalesK4(ls, lm *[8]uint8, s []byte) {
	for j := 0; j < 8; j++ {
		if j < 4 {
			s[j] = ls[j]
			s[j+4] = lm[j]
		} else {
			s[j+4] = ls[j]&0x0f | (lm[j]&0x0f)<<4
			s[j-4] |= (ls[j] >> 4) << 6
			s[j] |= (lm[j] >> 4) << 6
		}
	}
}

// quantizeQ45K is the shared body of quantize_row_q4_K (nmax 15) and
// quantize_row_q5_K (nmax 31), _ref for qw nil (with the search parameters
// rmin, rdelta, nstep) and _impl otherwise; it returns the levels for the
// caller to pack.
func quantizeQ45K(xb, qw []float32, b []byte, nmax int32, rmin, rdelta float32, nstep int, L *[qkK]uint8) {
	var laux [32]uint8
	var weights [32]float32
	var sw, mins, scales [8]float32
	var ls, lm [8]uint8
	if qw == nil {
		var maxScale, maxMin float32
		for j := 0; j < 8; j++ {
			xs := xb[32*j : 32*j+32]
			var sumX2 float32
			for _, v := range xs {
				sumX2 += float32(v * v)
			}
			avX := float32(math.Sqrt(float64(sumX2 / 32)))
			for l, v := range xs {
				weights[l] = avX + abs32(v)
			}
			scales[j], mins[j] = makeQKXQuants(nmax, xs, weights[:], L[32*j:32*j+32], laux[:], rmin, rdelta, nstep, false)
			if scales[j] > maxScale {
				maxScale = scales[j]
			}
			if mins[j] > maxMin {
				maxMin = mins[j]
			}
		}
		var invScale, invMin float32
		if maxScale > 0 {
			invScale = 63 / maxScale
		}
		if maxMin > 0 {
			invMin = 63 / maxMin
		}
		for j := 0; j < 8; j++ {
			ls[j] = min(63, uint8(nearestInt(float32(invScale*scales[j]))))
			lm[j] = min(63, uint8(nearestInt(float32(invMin*mins[j]))))
		}
		putF16(b, F32ToF16(maxScale/63))
		putF16(b[2:], F32ToF16(maxMin/63))
	} else {
		sigma2 := float32(2*sumSquares(xb)) / qkK
		for j := 0; j < 8; j++ {
			sw[j] = importanceWeights(weights[:], qw[32*j:32*j+32], xb[32*j:32*j+32], sigma2)
			scales[j], mins[j] = makeQKXQuants(nmax, xb[32*j:32*j+32], weights[:], L[32*j:32*j+32], laux[:], -0.9, 0.05, 36, false)
		}
		putF16(b, F32ToF16(makeQPQuants(63, scales[:], ls[:], sw[:])))
		putF16(b[2:], F32ToF16(makeQPQuants(63, mins[:], lm[:], sw[:])))
		for j := range ls {
			ls[j], lm[j] = min(63, ls[j]), min(63, lm[j])
		}
	}
	packScalesK4(&ls, &lm, b[4:16])
	dAll, dmAll := f16(b), f16(b[2:])
	for j := 0; j < 8; j++ {
		sc, m := scaleMinK4(j, b[4:16])
		d := dAll * float32(sc)
		if d == 0 {
			continue
		}
		dm := dmAll * float32(m)
		for ii := 0; ii < 32; ii++ {
			l := nearestInt(float32(xb[32*j+ii]+dm) / d)
			L[32*j+ii] = uint8(clampInt(l, 0, nmax))
		}
	}
}

// QuantizeQ4_K quantizes x into Q4_K blocks as ggml's quantize_row_q4_K_ref.
func QuantizeQ4_K(x []float32, dst []byte) { quantizeQ4K(x, dst, nil) }

// quantizeQ4K is quantize_row_q4_K_ref for qw nil, else _impl.
func quantizeQ4K(x []float32, dst []byte, qw []float32) {
	nb := blocks(Q4_K, x, dst)
	var L [qkK]uint8
	for i := 0; i < nb; i++ {
		b := dst[i*144 : i*144+144]
		quantizeQ45K(x[i*qkK:i*qkK+qkK], subWeights(qw, i), b, 15, -1, 0.1, 20, &L)
		q := b[16:144]
		for j := 0; j < 4; j++ {
			for l := 0; l < 32; l++ {
				q[32*j+l] = L[64*j+l] | L[64*j+l+32]<<4
			}
		}
	}
}

// QuantizeQ5_K quantizes x into Q5_K blocks as ggml's quantize_row_q5_K_ref.
func QuantizeQ5_K(x []float32, dst []byte) { quantizeQ5K(x, dst, nil) }

// quantizeQ5K is quantize_row_q5_K_ref for qw nil, else _impl.
func quantizeQ5K(x []float32, dst []byte, qw []float32) {
	nb := blocks(Q5_K, x, dst)
	var L [qkK]uint8
	for i := 0; i < nb; i++ {
		b := dst[i*176 : i*176+176]
		quantizeQ45K(x[i*qkK:i*qkK+qkK], subWeights(qw, i), b, 31, -0.5, 0.1, 15, &L)
		qh, ql := b[16:48], b[48:176]
		clear(qh)
		for j := 0; j < 4; j++ {
			m1, m2 := uint8(1)<<(2*j), uint8(2)<<(2*j)
			for l := 0; l < 32; l++ {
				l1, l2 := L[64*j+l], L[64*j+l+32]
				if l1 > 15 {
					l1 -= 16
					qh[l] |= m1
				}
				if l2 > 15 {
					l2 -= 16
					qh[l] |= m2
				}
				ql[32*j+l] = l1 | l2<<4
			}
		}
	}
}

// subWeights is the importance of super-block i, or nil.
func subWeights(qw []float32, i int) []float32 {
	if qw == nil {
		return nil
	}
	return qw[i*qkK : i*qkK+qkK]
}

// QuantizeQ6_K quantizes x into Q6_K blocks as ggml's quantize_row_q6_K_ref.
func QuantizeQ6_K(x []float32, dst []byte) { quantizeQ6K(x, dst, nil) }

// quantizeQ6K is quantize_row_q6_K_ref for qw nil, else _impl, which unlike
// the other types uses the importances directly as weights.
func quantizeQ6K(x []float32, dst []byte, qw []float32) {
	nb := blocks(Q6_K, x, dst)
	var L [qkK]int8
	var scales [16]float32
	for i := 0; i < nb; i++ {
		xb := x[i*qkK : i*qkK+qkK]
		b := dst[i*210 : i*210+210]
		var maxScale, maxAbs float32
		for ib := 0; ib < 16; ib++ {
			var w []float32
			if qw != nil {
				w = qw[qkK*i+16*ib : qkK*i+16*ib+16]
			}
			scales[ib] = makeQXQuants(32, xb[16*ib:16*ib+16], L[16*ib:16*ib+16], w)
			if s := abs32(scales[ib]); s > maxAbs {
				maxAbs, maxScale = s, scales[ib]
			}
		}
		if maxAbs < groupMaxEps {
			clear(b)
			continue
		}
		iscale := -128 / maxScale
		putF16(b[208:], F32ToF16(1/iscale))
		sc := b[192:208]
		for ib := 0; ib < 16; ib++ {
			sc[ib] = byte(int8(min(127, nearestInt(float32(iscale*scales[ib])))))
		}
		dAll := f16(b[208:])
		for j := 0; j < 16; j++ {
			d := dAll * float32(int8(sc[j]))
			if d == 0 {
				continue
			}
			for ii := 0; ii < 16; ii++ {
				l := nearestInt(xb[16*j+ii] / d)
				L[16*j+ii] = int8(clampInt(l, -32, 31) + 32)
			}
		}
		for h := 0; h < 2; h++ {
			ql := b[64*h : 64*h+64]
			qh := b[128+32*h : 128+32*h+32]
			Lh := L[128*h : 128*h+128]
			for l := 0; l < 32; l++ {
				q1, q2, q3, q4 := uint8(Lh[l]), uint8(Lh[l+32]), uint8(Lh[l+64]), uint8(Lh[l+96])
				ql[l] = q1&0x0f | (q3&0x0f)<<4
				ql[l+32] = q2&0x0f | (q4&0x0f)<<4
				qh[l] = q1>>4 | (q2>>4)<<2 | (q3>>4)<<4 | (q4>>4)<<6
			}
		}
	}
}

// The legacy types' importance-weighted quantizers (their reference
// quantizers are in legacy.go): quantize_row_<t>_impl, one row at a time,
// with σ² taken over the whole row.

// quantizeQ4_0Weighted is quantize_row_q4_0_impl.
func quantizeQ4_0Weighted(x []float32, dst []byte, qw []float32) {
	var weight [qk]float32
	var L [qk]int8
	sigma2 := sumSquares(x) / float32(len(x))
	for ib := 0; ib < len(x)/qk; ib++ {
		xb := x[qk*ib : qk*ib+qk]
		importanceWeights(weight[:], qw[qk*ib:qk*ib+qk], xb, sigma2)
		d := makeQXQuants(8, xb, L[:], weight[:])
		b := dst[18*ib : 18*ib+18]
		putF16(b, F32ToF16(d))
		for j := 0; j < 16; j++ {
			b[2+j] = uint8(L[j]) | uint8(L[j+16])<<4
		}
	}
}

// quantizeQ4_1Weighted is quantize_row_q4_1_impl.
func quantizeQ4_1Weighted(x []float32, dst []byte, qw []float32) {
	var weight [qk]float32
	var L, laux [qk]uint8
	sigma2 := sumSquares(x) / float32(len(x))
	for ib := 0; ib < len(x)/qk; ib++ {
		xb := x[qk*ib : qk*ib+qk]
		importanceWeights(weight[:], qw[qk*ib:qk*ib+qk], xb, sigma2)
		d, negMin := makeQKXQuants(15, xb, weight[:], L[:], laux[:], -0.9, 0.05, 36, false)
		b := dst[20*ib : 20*ib+20]
		putF16(b, F32ToF16(d))
		putF16(b[2:], F32ToF16(-negMin))
		for j := 0; j < 16; j++ {
			b[4+j] = L[j] | L[j+16]<<4
		}
	}
}

// put5 stores 32 five-bit levels as Q5_0/Q5_1 do: nibbles in qs, bit 4 of
// element j in bit j of the little-endian uint32 qh.
func put5(L []uint8, qh, qs []byte) {
	var h uint32
	for j := 0; j < 16; j++ {
		x0, x1 := L[j], L[j+16]
		qs[j] = x0&0x0f | (x1&0x0f)<<4
		h |= uint32(x0>>4&1) << j
		h |= uint32(x1>>4&1) << (j + 16)
	}
	qh[0], qh[1], qh[2], qh[3] = byte(h), byte(h>>8), byte(h>>16), byte(h>>24)
}

// quantizeQ5_0Weighted is quantize_row_q5_0_impl.
func quantizeQ5_0Weighted(x []float32, dst []byte, qw []float32) {
	var weight [qk]float32
	var L [qk]int8
	var u [qk]uint8
	sigma2 := sumSquares(x) / float32(len(x))
	for ib := 0; ib < len(x)/qk; ib++ {
		xb := x[qk*ib : qk*ib+qk]
		importanceWeights(weight[:], qw[qk*ib:qk*ib+qk], xb, sigma2)
		d := makeQXQuants(16, xb, L[:], weight[:])
		b := dst[22*ib : 22*ib+22]
		putF16(b, F32ToF16(d))
		for j, l := range L {
			u[j] = uint8(l)
		}
		put5(u[:], b[2:6], b[6:22])
	}
}

// quantizeQ5_1Weighted is quantize_row_q5_1_impl.
func quantizeQ5_1Weighted(x []float32, dst []byte, qw []float32) {
	var weight [qk]float32
	var L, laux [qk]uint8
	sigma2 := sumSquares(x) / float32(len(x))
	for ib := 0; ib < len(x)/qk; ib++ {
		xb := x[qk*ib : qk*ib+qk]
		importanceWeights(weight[:], qw[qk*ib:qk*ib+qk], xb, sigma2)
		d, negMin := makeQKXQuants(31, xb, weight[:], L[:], laux[:], -0.9, 0.05, 36, false)
		b := dst[24*ib : 24*ib+24]
		putF16(b, F32ToF16(d))
		putF16(b[2:], F32ToF16(-negMin))
		put5(L[:], b[4:8], b[8:24])
	}
}
