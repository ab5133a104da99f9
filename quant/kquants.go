package quant

import (
	"fmt"
	"math"

	"tamp/tensor"
)

// Importance-weighted quantizers, ported from ggml's quantize_row_<t>_impl
// (the path llama-quantize takes when it is given an importance matrix).
// Each takes one row x and the row's importance weights qw (one per column,
// the imatrix's mean squared activation) and writes the row's blocks to dst.
// Without an importance matrix llama.cpp uses the reference quantizers, which
// tamp has in package tensor; quantizeRow picks between the two exactly as
// ggml_quantize_chunk does.
//
// Float expressions follow the C source's evaluation order with every
// intermediate rounded to float32; explicit conversions keep the Go compiler
// from fusing multiply-adds (see tensor/legacy.go).

const (
	qk          = 32  // elements per legacy block
	qkK         = 256 // elements per K-quant super-block
	groupMaxEps = 1e-15
)

// nearestInt is ggml's nearest_int: round to nearest, ties to even, through
// the 1.5·2^23 trick. ggml asserts |f| ≤ 4194303; beyond that it returns
// ggml's garbage, reproduced bit for bit.
func nearestInt(f float32) int32 {
	v := f + 12582912
	return int32(math.Float32bits(v)&0x007fffff) - 0x00400000
}

func clampInt(v, lo, hi int32) int32 { return max(lo, min(hi, v)) }

func abs32(f float32) float32 { return math.Float32frombits(math.Float32bits(f) &^ (1 << 31)) }

func sqrt32(f float32) float32 { return float32(math.Sqrt(float64(f))) }

// roundF16 is GGML_FP16_TO_FP32(GGML_FP32_TO_FP16(f)).
func roundF16(f float32) float32 { return tensor.F16ToF32(tensor.F32ToF16(f)) }

func putF16(b []byte, f float32) {
	h := tensor.F32ToF16(f)
	b[0], b[1] = byte(h), byte(h>>8)
}

func getF16(b []byte) float32 { return tensor.F16ToF32(uint16(b[0]) | uint16(b[1])<<8) }

// makeQXQuants is ggml's make_qx_quants: a symmetric fit of x to levels
// -nmax..nmax-1 that tries 19 scales and keeps the one with the least
// weighted squared error. Weights are qw, or for qw == nil chosen by
// rmseType (1: x², 2: 1, 3: |x|, else sqrt|x|). A negative rmseType returns
// early with the mean of the first least-squares scale and 1/iscale. L
// receives levels offset by nmax.
func makeQXQuants(nmax int32, x []float32, L []int8, rmseType int, qw []float32) float32 {
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
	if rmseType == 0 {
		for i, v := range x {
			L[i] = int8(nmax + clampInt(nearestInt(float32(iscale*v)), -nmax, nmax-1))
		}
		return 1 / iscale
	}
	returnEarly := false
	if rmseType < 0 {
		rmseType, returnEarly = -rmseType, true
	}
	weight := func(i int) float32 {
		switch {
		case qw != nil:
			return qw[i]
		case rmseType == 1:
			return float32(x[i] * x[i])
		case rmseType == 2:
			return 1
		case rmseType == 3:
			return abs32(x[i])
		}
		return sqrt32(abs32(x[i]))
	}
	var sumlx, suml2 float32
	for i, v := range x {
		l := clampInt(nearestInt(float32(iscale*v)), -nmax, nmax-1)
		L[i] = int8(l + nmax)
		w := weight(i)
		fl := float32(l)
		sumlx += float32(float32(w*v) * fl)
		suml2 += float32(float32(w*fl) * fl)
	}
	var scale float32
	if suml2 != 0 {
		scale = sumlx / suml2
	}
	if returnEarly {
		if suml2 > 0 {
			return float32(0.5 * float32(scale+1/iscale))
		}
		return 1 / iscale
	}
	best := float32(scale * sumlx)
	for is := -9; is <= 9; is++ {
		if is == 0 {
			continue
		}
		iscale = -float32(fmax+float32(0.1*float32(is))) / xmax
		sumlx, suml2 = 0, 0
		for i, v := range x {
			l := clampInt(nearestInt(float32(iscale*v)), -nmax, nmax-1)
			w := weight(i)
			fl := float32(l)
			sumlx += float32(float32(w*v) * fl)
			suml2 += float32(float32(w*fl) * fl)
		}
		if suml2 > 0 && float32(sumlx*sumlx) > float32(best*suml2) {
			for i, v := range x {
				L[i] = int8(nmax + clampInt(nearestInt(float32(iscale*v)), -nmax, nmax-1))
			}
			scale = sumlx / suml2
			best = float32(scale * sumlx)
		}
	}
	return scale
}

// makeQKX3Quants is ggml's make_qkx3_quants: an asymmetric (scale, min) fit
// of x to levels 0..nmax under weights (x² when nil), trying nstep+1 scale
// perturbations and keeping the least weighted error. It returns the scale
// and -min.
func makeQKX3Quants(nmax int32, x, weights []float32, L, Laux []uint8, rmin, rdelta float32, nstep int, useMad bool) (scale, negMin float32) {
	n := len(x)
	w := func(i int) float32 {
		if weights != nil {
			return weights[i]
		}
		return float32(x[i] * x[i])
	}
	xmin, xmax := x[0], x[0]
	sumW := w(0)
	sumX := float32(sumW * x[0])
	for i := 1; i < n; i++ {
		if x[i] < xmin {
			xmin = x[i]
		}
		if x[i] > xmax {
			xmax = x[i]
		}
		wi := w(i)
		sumW += wi
		sumX += float32(wi * x[i])
	}
	if xmin > 0 {
		xmin = 0
	}
	if xmax <= xmin {
		clear(L[:n])
		return 0, -xmin
	}
	errOf := func(diff float32) float32 {
		if useMad {
			return abs32(diff)
		}
		return float32(diff * diff)
	}
	fmax := float32(nmax)
	iscale := fmax / float32(xmax-xmin)
	scale = 1 / iscale
	var bestMad float32
	for i := 0; i < n; i++ {
		L[i] = uint8(clampInt(nearestInt(float32(iscale*float32(x[i]-xmin))), 0, nmax))
		diff := float32(float32(float32(scale*float32(L[i]))+xmin) - x[i])
		bestMad += float32(w(i) * errOf(diff))
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
			wi := w(i)
			fl := float32(l)
			sumL += float32(wi * fl)
			sumL2 += float32(float32(wi*fl) * fl)
			sumXL += float32(float32(wi*fl) * x[i])
		}
		D := float32(float32(sumW*sumL2) - float32(sumL*sumL))
		if D > 0 {
			thisScale := float32(float32(sumW*sumXL)-float32(sumX*sumL)) / D
			thisMin := float32(float32(sumL2*sumX)-float32(sumL*sumXL)) / D
			if thisMin > 0 {
				thisMin = 0
				thisScale = sumXL / sumL2
			}
			var mad float32
			for i := 0; i < n; i++ {
				diff := float32(float32(float32(thisScale*float32(Laux[i]))+thisMin) - x[i])
				mad += float32(w(i) * errOf(diff))
			}
			if mad < bestMad {
				copy(L[:n], Laux[:n])
				bestMad = mad
				scale = thisScale
				xmin = thisMin
			}
		}
	}
	return scale, -xmin
}

// makeQPQuants is ggml's make_qp_quants: a fit of non-negative x (sub-block
// scales or mins) to levels 0..nmax under weights qw, used to quantize the
// scales of a K-quant super-block. It returns the super-block scale.
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
// weights every _impl quantizer derives from the importance matrix.
func importanceWeights(w, qw, x []float32, sigma2 float32) {
	for j, v := range x {
		w[j] = float32(qw[j] * sqrt32(float32(sigma2+float32(v*v))))
	}
}

// quantizeRowQ4_0 is quantize_row_q4_0_impl with an importance matrix.
func quantizeRowQ4_0(x []float32, dst []byte, qw []float32) {
	var weight [qk]float32
	var L [qk]int8
	sigma2 := sumSquares(x) / float32(len(x))
	for ib := 0; ib < len(x)/qk; ib++ {
		xb := x[qk*ib : qk*ib+qk]
		importanceWeights(weight[:], qw[qk*ib:qk*ib+qk], xb, sigma2)
		d := makeQXQuants(8, xb, L[:], 1, weight[:])
		b := dst[18*ib : 18*ib+18]
		putF16(b, d)
		for j := 0; j < 16; j++ {
			b[2+j] = uint8(L[j]) | uint8(L[j+16])<<4
		}
	}
}

// quantizeRowQ4_1 is quantize_row_q4_1_impl with an importance matrix.
func quantizeRowQ4_1(x []float32, dst []byte, qw []float32) {
	var weight [qk]float32
	var L, laux [qk]uint8
	sigma2 := sumSquares(x) / float32(len(x))
	for ib := 0; ib < len(x)/qk; ib++ {
		xb := x[qk*ib : qk*ib+qk]
		importanceWeights(weight[:], qw[qk*ib:qk*ib+qk], xb, sigma2)
		d, negMin := makeQKX3Quants(15, xb, weight[:], L[:], laux[:], -0.9, 0.05, 36, false)
		b := dst[20*ib : 20*ib+20]
		putF16(b, d)
		putF16(b[2:], -negMin)
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

// quantizeRowQ5_0 is quantize_row_q5_0_impl with an importance matrix.
func quantizeRowQ5_0(x []float32, dst []byte, qw []float32) {
	var weight [qk]float32
	var L [qk]int8
	var u [qk]uint8
	sigma2 := sumSquares(x) / float32(len(x))
	for ib := 0; ib < len(x)/qk; ib++ {
		xb := x[qk*ib : qk*ib+qk]
		importanceWeights(weight[:], qw[qk*ib:qk*ib+qk], xb, sigma2)
		d := makeQXQuants(16, xb, L[:], 1, weight[:])
		b := dst[22*ib : 22*ib+22]
		putF16(b, d)
		for j, l := range L {
			u[j] = uint8(l)
		}
		put5(u[:], b[2:6], b[6:22])
	}
}

// quantizeRowQ5_1 is quantize_row_q5_1_impl with an importance matrix.
func quantizeRowQ5_1(x []float32, dst []byte, qw []float32) {
	var weight [qk]float32
	var L, laux [qk]uint8
	sigma2 := sumSquares(x) / float32(len(x))
	for ib := 0; ib < len(x)/qk; ib++ {
		xb := x[qk*ib : qk*ib+qk]
		importanceWeights(weight[:], qw[qk*ib:qk*ib+qk], xb, sigma2)
		d, negMin := makeQKX3Quants(31, xb, weight[:], L[:], laux[:], -0.9, 0.05, 36, false)
		b := dst[24*ib : 24*ib+24]
		putF16(b, d)
		putF16(b[2:], -negMin)
		put5(L[:], b[4:8], b[8:24])
	}
}

// packQ2 stores 256 two-bit levels in the Q2_K/Q3_K layout.
func packQ2(L []uint8, qs []byte) {
	for j := 0; j < qkK; j += 128 {
		for l := 0; l < 32; l++ {
			qs[j/4+l] = L[j+l] | L[j+l+32]<<2 | L[j+l+64]<<4 | L[j+l+96]<<6
		}
	}
}

// quantizeRowQ2_K is quantize_row_q2_K_impl.
func quantizeRowQ2_K(x []float32, dst []byte, qw []float32) {
	var L [qkK]uint8
	var laux [16]uint8
	var mins, scales, sw, weight [16]float32
	var Ls, Lm [16]uint8
	for i := 0; i < len(x)/qkK; i++ {
		xb := x[qkK*i : qkK*i+qkK]
		b := dst[84*i : 84*i+84]
		sigma2 := sumSquares(xb) / qkK
		for j := 0; j < 16; j++ {
			importanceWeights(weight[:], qw[qkK*i+16*j:qkK*i+16*j+16], xb[16*j:16*j+16], sigma2)
			var s float32
			for _, w := range weight {
				s += w
			}
			sw[j] = s
			scales[j], mins[j] = makeQKX3Quants(3, xb[16*j:16*j+16], weight[:], L[16*j:16*j+16], laux[:], -0.9, 0.05, 36, false)
		}
		dm := makeQPQuants(15, scales[:], Ls[:], sw[:])
		mm := makeQPQuants(15, mins[:], Lm[:], sw[:])
		putF16(b[80:], dm)
		putF16(b[82:], mm)
		dm, mm = getF16(b[80:]), getF16(b[82:])
		for j := 0; j < 16; j++ {
			b[j] = Ls[j] | Lm[j]<<4
		}
		for j := 0; j < 16; j++ {
			d := float32(dm * float32(b[j]&0x0f))
			if d == 0 {
				continue
			}
			m := float32(mm * float32(b[j]>>4))
			for ii := 0; ii < 16; ii++ {
				L[16*j+ii] = uint8(clampInt(nearestInt(float32(xb[16*j+ii]+m)/d), 0, 3))
			}
		}
		packQ2(L[:], b[16:80])
	}
}

// quantizeRowQ3_K is quantize_row_q3_K_impl with an importance matrix.
func quantizeRowQ3_K(x []float32, dst []byte, qw []float32) {
	var L [qkK]int8
	var scales, weight, sw [16]float32
	var Ls [16]int8
	var packed [qkK]uint8
	for i := 0; i < len(x)/qkK; i++ {
		xb := x[qkK*i : qkK*i+qkK]
		b := dst[110*i : 110*i+110]
		sigma2 := float32(2*sumSquares(xb)) / qkK
		for j := 0; j < 16; j++ {
			importanceWeights(weight[:], qw[qkK*i+16*j:qkK*i+16*j+16], xb[16*j:16*j+16], sigma2)
			var s float32
			for _, w := range weight {
				s += w
			}
			sw[j] = s
			scales[j] = makeQXQuants(4, xb[16*j:16*j+16], L[16*j:16*j+16], 1, weight[:])
		}
		sc := b[96:108]
		clear(sc)
		dBlock := makeQXQuants(32, scales[:], Ls[:], 1, sw[:])
		for j := 0; j < 16; j++ {
			l := uint8(Ls[j])
			if j < 8 {
				sc[j] = l & 0x0f
			} else {
				sc[j-8] |= (l & 0x0f) << 4
			}
			l >>= 4
			sc[j%4+8] |= l << (2 * (j / 4))
		}
		putF16(b[108:], dBlock)
		dAll := getF16(b[108:])
		for j := 0; j < 16; j++ {
			lo := sc[j%8] >> (4 * (j / 8)) & 0x0f
			hi := sc[8+j%4] >> (2 * (j / 4)) & 3
			d := float32(dAll * float32(int32(lo|hi<<4)-32))
			if d == 0 {
				continue
			}
			for ii := 0; ii < 16; ii++ {
				L[16*j+ii] = int8(clampInt(nearestInt(xb[16*j+ii]/d), -4, 3) + 4)
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

// packScalesK4 stores eight 6-bit scales and mins in Q4_K/Q5_K's 12 bytes.
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

// scaleMinK4 is ggml's get_scale_min_k4.
func scaleMinK4(j int, q []byte) (sc, m uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0x0f | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

// quantizeQ45KImpl is the shared body of quantize_row_q4_K_impl (nmax 15)
// and quantize_row_q5_K_impl (nmax 31) with an importance matrix; it leaves
// the levels in L for the caller to pack.
func quantizeQ45KImpl(xb, qw []float32, b []byte, nmax int32, L *[qkK]uint8) {
	var laux [32]uint8
	var weights [32]float32
	var sw, mins, scales [8]float32
	var ls, lm [8]uint8
	sigma2 := float32(2*sumSquares(xb)) / qkK
	for j := 0; j < 8; j++ {
		importanceWeights(weights[:], qw[32*j:32*j+32], xb[32*j:32*j+32], sigma2)
		var s float32
		for _, w := range weights {
			s += w
		}
		sw[j] = s
		scales[j], mins[j] = makeQKX3Quants(nmax, xb[32*j:32*j+32], weights[:], L[32*j:32*j+32], laux[:], -0.9, 0.05, 36, false)
	}
	dBlock := makeQPQuants(63, scales[:], ls[:], sw[:])
	mBlock := makeQPQuants(63, mins[:], lm[:], sw[:])
	for j := range ls {
		ls[j], lm[j] = min(63, ls[j]), min(63, lm[j])
	}
	packScalesK4(&ls, &lm, b[4:16])
	putF16(b, dBlock)
	putF16(b[2:], mBlock)
	dAll, dmAll := getF16(b), getF16(b[2:])
	for j := 0; j < 8; j++ {
		sc, m := scaleMinK4(j, b[4:16])
		d := float32(dAll * float32(sc))
		if d == 0 {
			continue
		}
		dm := float32(dmAll * float32(m))
		for ii := 0; ii < 32; ii++ {
			L[32*j+ii] = uint8(clampInt(nearestInt(float32(xb[32*j+ii]+dm)/d), 0, nmax))
		}
	}
}

// quantizeRowQ4_K is quantize_row_q4_K_impl with an importance matrix.
func quantizeRowQ4_K(x []float32, dst []byte, qw []float32) {
	var L [qkK]uint8
	for i := 0; i < len(x)/qkK; i++ {
		b := dst[144*i : 144*i+144]
		quantizeQ45KImpl(x[qkK*i:qkK*i+qkK], qw[qkK*i:qkK*i+qkK], b, 15, &L)
		q := b[16:144]
		for j := 0; j < 4; j++ {
			for l := 0; l < 32; l++ {
				q[32*j+l] = L[64*j+l] | L[64*j+l+32]<<4
			}
		}
	}
}

// quantizeRowQ5_K is quantize_row_q5_K_impl with an importance matrix.
func quantizeRowQ5_K(x []float32, dst []byte, qw []float32) {
	var L [qkK]uint8
	for i := 0; i < len(x)/qkK; i++ {
		b := dst[176*i : 176*i+176]
		quantizeQ45KImpl(x[qkK*i:qkK*i+qkK], qw[qkK*i:qkK*i+qkK], b, 31, &L)
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

// quantizeRowQ6_K is quantize_row_q6_K_impl with an importance matrix: unlike
// the other types, Q6_K uses the importance values directly as weights.
func quantizeRowQ6_K(x []float32, dst []byte, qw []float32) {
	var L [qkK]int8
	var scales [16]float32
	for i := 0; i < len(x)/qkK; i++ {
		xb := x[qkK*i : qkK*i+qkK]
		b := dst[210*i : 210*i+210]
		var maxScale, maxAbs float32
		for ib := 0; ib < 16; ib++ {
			scales[ib] = makeQXQuants(32, xb[16*ib:16*ib+16], L[16*ib:16*ib+16], 1, qw[qkK*i+16*ib:qkK*i+16*ib+16])
			if s := abs32(scales[ib]); s > maxAbs {
				maxAbs, maxScale = s, scales[ib]
			}
		}
		if maxAbs < groupMaxEps {
			clear(b)
			continue
		}
		iscale := -128 / maxScale
		putF16(b[208:], 1/iscale)
		sc := b[192:208]
		for ib := 0; ib < 16; ib++ {
			sc[ib] = byte(int8(min(127, nearestInt(float32(iscale*scales[ib])))))
		}
		dAll := getF16(b[208:])
		for j := 0; j < 16; j++ {
			d := float32(dAll * float32(int8(sc[j])))
			if d == 0 {
				continue
			}
			for ii := 0; ii < 16; ii++ {
				L[16*j+ii] = int8(clampInt(nearestInt(xb[16*j+ii]/d), -32, 31) + 32)
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

// weightedQuantizers are the importance-weighted row quantizers. Types not
// listed (Q8_0, F16, F32, BF16) ignore the importance matrix, as in ggml.
var weightedQuantizers = map[tensor.Type]func(x []float32, dst []byte, qw []float32){
	tensor.Q4_0: quantizeRowQ4_0,
	tensor.Q4_1: quantizeRowQ4_1,
	tensor.Q5_0: quantizeRowQ5_0,
	tensor.Q5_1: quantizeRowQ5_1,
	tensor.Q2_K: quantizeRowQ2_K,
	tensor.Q3_K: quantizeRowQ3_K,
	tensor.Q4_K: quantizeRowQ4_K,
	tensor.Q5_K: quantizeRowQ5_K,
	tensor.Q6_K: quantizeRowQ6_K,
}

// QuantizeRow stores one row x as type t in dst, which must hold exactly
// the row's stored size. With importance weights qw (one per element of x)
// it uses the importance-weighted quantizer for t where ggml has one, as
// llama-quantize --imatrix does; with qw nil, or for types without one, the
// reference quantizer. tamp's own SQ types take qw for their choice of
// high-precision slots.
func QuantizeRow(t tensor.Type, x []float32, dst []byte, qw []float32) error {
	rb, err := tensor.RowBytes(t, len(x))
	if err != nil {
		return err
	}
	if len(dst) != rb {
		return fmt.Errorf("quant: row of %d elements as %s needs %d bytes, got %d", len(x), t, rb, len(dst))
	}
	if qw != nil && len(qw) != len(x) {
		return fmt.Errorf("quant: %d importance weights for a row of %d", len(qw), len(x))
	}
	if sq, ok := sqFormats[t]; ok {
		sq.quantizeRow(x, dst, qw)
		return nil
	}
	if f, ok := weightedQuantizers[t]; ok && qw != nil {
		f(x, dst, qw)
		return nil
	}
	return tensor.Quantize(t, x, dst)
}
