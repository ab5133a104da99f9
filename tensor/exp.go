package tensor

import "math"

// Vectorised float32 exponentials for the softmax of attention and the
// SwiGLU gate of the feed-forward layers, the two places where prefill calls
// exp millions of times. llama.cpp computes both with a vectorised expf
// (ggml_v_expf) rather than libm's exp, so a float32 exp of a few ulp is as
// faithful to it as a correctly rounded one.
//
// expf is the reference: exp(x) = 2ⁿ·p(r) with n = round(x·log₂e), r =
// x − n·ln2 in two fused steps (ln2 split into a float32 head and tail) and
// p(r) = 1 + r + r²·q(r), q the degree-5 polynomial of Cephes' expf. 2ⁿ is
// applied as 2^⌊n/2⌋·2^(n−⌊n/2⌋), two exact scalings, so that results in the
// subnormal range are rounded once and n = 128 does not overflow the
// exponent field. Measured against float32(math.Exp(float64(x))) over every
// float32 in [-104, 89] (TestExpAccuracy samples them densely, and checks
// all two billion with TAMP_EXHAUSTIVE=1), the error is at most 1 ulp for
// normal results; subnormal results (x < -87.3) are within
// 1 ulp of the subnormal spacing. x ≤ -104 (and -Inf) gives +0, x ≥
// 88.72284 (the first float32 whose exponential rounds past the largest
// float32) and +Inf give +Inf, NaN gives NaN.
//
// The AVX2 kernels of exp_amd64.s compute exactly the same float32
// operations, in the same order, with a fused multiply-add (VFMADD) exactly
// where expf calls fmaF32, so results are bit-identical on every input
// (TestExpSIMDMatchesReference checks it).

// Constants of expf.
const (
	expLo    = -104           // below this exp rounds to +0
	expHi    = 89             // above this exp overflows to +Inf
	expLog2E = 1.442695       // float32(log₂e)
	expLn2Hi = 0.6931472      // float32(ln 2)
	expLn2Lo = -1.9046542e-09 // float32(ln 2 − expLn2Hi)

	// q(r) = ((((c0·r + c1)·r + c2)·r + c3)·r + c4)·r + c5, Cephes' expf.
	expC0 = 1.9875691500e-4
	expC1 = 1.3981999507e-3
	expC2 = 8.3334519073e-3
	expC3 = 4.1665795894e-2
	expC4 = 1.6666665459e-1
	expC5 = 5.0000001201e-1
)

// expf is the scalar exponential the kernels reproduce bit for bit. The
// explicit float32 conversions keep every product separately rounded on
// machines whose Go compiler would otherwise fuse it into an add.
func expf(x float32) float32 {
	if x != x {
		return x
	}
	x = min(max(x, expLo), expHi)
	n := float32(math.RoundToEven(float64(float32(x * expLog2E))))
	r := fmaF32(n, -expLn2Hi, x)
	r = fmaF32(n, -expLn2Lo, r)
	z := float32(r * r)
	p := float32(expC0)
	p = fmaF32(p, r, expC1)
	p = fmaF32(p, r, expC2)
	p = fmaF32(p, r, expC3)
	p = fmaF32(p, r, expC4)
	p = fmaF32(p, r, expC5)
	p = fmaF32(p, z, r)
	p = float32(p + 1)
	k := int32(n)
	k1 := k >> 1
	s1 := math.Float32frombits(uint32(k1+127) << 23)
	s2 := math.Float32frombits(uint32(k-k1+127) << 23)
	return float32(float32(p*s1) * s2)
}

// fmaF32 is a·b + c rounded once to float32, as the VFMADD instructions of
// the kernels compute it. The product of two float32 values is exact in
// float64, so the float64 sum is a·b + c rounded once; rounding that to
// float32 again gives the correct result unless it landed exactly on a
// float32 rounding tie (or is too small for the tie test). Then the sum's
// rounding error e is recovered exactly (TwoSum) and the sum rounded to odd
// — nudged one float64 ulp towards the exact value when inexact and even —
// before rounding to float32: a float64 rounded to odd keeps enough bits
// (53 ≥ 24+2) for the second rounding to be the correct one. math.FMA
// alone would round twice.
func fmaF32(a, b, c float32) float32 {
	// A compiler may fuse this into one float64 FMA: the product is exact,
	// so the result is the same.
	s := float64(a)*float64(b) + float64(c)
	const (
		tie    = 1 << 28            // the 29 float64 bits below a float32's last: one half
		normal = (1023 - 126) << 52 // the exponent field of 2⁻¹²⁶
	)
	if b := math.Float64bits(s); b&(1<<29-1) != tie && b&(0x7ff<<52) >= normal {
		return float32(s)
	}
	return fmaF32Tie(a, b, c)
}

// fmaF32Tie is fmaF32 for sums on a float32 rounding tie or tiny.
func fmaF32Tie(a, b, c float32) float32 {
	p := float64(a) * float64(b)
	z := float64(c)
	s := p + z
	if math.IsInf(s, 0) || math.IsNaN(s) {
		return float32(s)
	}
	bp := s - z
	e := (p - bp) + (z - (s - bp))
	if e != 0 {
		bits := math.Float64bits(s)
		if bits&1 == 0 {
			if (e > 0) == (s > 0) {
				bits++
			} else {
				bits--
			}
			s = math.Float64frombits(bits)
		}
	}
	return float32(s)
}

// ExpSum sets x[i] = exp(x[i] − m) for every i, the numerators of a softmax
// whose maximum is m, and returns their sum. Each exponential is the float32
// exp described above (at most 1 ulp from the correctly rounded value; +0
// for −Inf arguments, so masked scores of −Inf contribute nothing). The sum
// runs in float64 in a fixed order that does not depend on the machine:
// element i is added to partial sum i mod 8 in increasing i, and the
// partials are combined as ((s₀+s₄)+(s₂+s₆)) + ((s₁+s₅)+(s₃+s₇)).
func ExpSum(x []float32, m float32) float64 {
	var s [8]float64
	i := 0
	if useSIMD && hasExpKernels {
		i = len(x) &^ 7
		if i > 0 {
			expSumAVX2(&x[0], i, m, &s)
		}
		if i < len(x) {
			// The last few elements in a padded vector, added to the
			// partial sums here.
			var t [8]float32
			var ts [8]float64
			n := copy(t[:], x[i:])
			expSumAVX2(&t[0], 8, m, &ts)
			copy(x[i:], t[:n])
			for k, e := range t[:n] {
				s[k] += float64(e)
			}
		}
		return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]))
	}
	for ; i < len(x); i++ {
		e := expf(x[i] - m)
		x[i] = e
		s[i&7] += float64(e)
	}
	return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]))
}

// SiLUMul sets g[i] = silu(g[i])·u[i] = g[i]/(1 + exp(−g[i]))·u[i] for every
// i of g, the gated activation of a SwiGLU feed-forward layer, with the
// float32 exp of ExpSum and float32 division and product. u must be at
// least as long as g.
func SiLUMul(g, u []float32) {
	u = u[:len(g)]
	i := 0
	if useSIMD && hasExpKernels {
		i = len(g) &^ 7
		if i > 0 {
			siluMulAVX2(&g[0], &u[0], i)
		}
		if i < len(g) {
			var a, b [8]float32
			n := copy(a[:], g[i:])
			copy(b[:], u[i:])
			siluMulAVX2(&a[0], &b[0], 8)
			copy(g[i:], a[:n])
		}
		return
	}
	for ; i < len(g); i++ {
		v := g[i]
		g[i] = float32(v/float32(1+expf(-v))) * u[i]
	}
}
