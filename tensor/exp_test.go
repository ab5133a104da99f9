package tensor

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"testing"
)

// exactFMA32 is a·b + c rounded once to float32, computed exactly with
// big.Float.
func exactFMA32(a, b, c float32) float32 {
	x := new(big.Float).SetPrec(400).SetFloat64(float64(a))
	x.Mul(x, new(big.Float).SetPrec(400).SetFloat64(float64(b)))
	x.Add(x, new(big.Float).SetPrec(400).SetFloat64(float64(c)))
	f, _ := x.Float32()
	return f
}

// TestFMAF32 checks the float32 fused multiply-add against exact arithmetic,
// including sums that lie just beside a float32 rounding tie, where rounding
// a float64 result again would go wrong.
func TestFMAF32(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	check := func(a, b, c float32) {
		t.Helper()
		if got, want := fmaF32(a, b, c), exactFMA32(a, b, c); math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("fmaF32(%g, %g, %g) = %g, want %g", a, b, c, got, want)
		}
	}
	for range 20000 {
		a := float32(math.Ldexp(rng.Float64()*2-1, rng.IntN(40)-20))
		b := float32(math.Ldexp(rng.Float64()*2-1, rng.IntN(40)-20))
		c := float32(math.Ldexp(rng.Float64()*2-1, rng.IntN(80)-40))
		check(a, b, c)
	}
	// Sums a hair from a float32 rounding tie: c plus a product of
	// (1+x)(1−x)·h = h − x²h, h half an ulp of c, lands x²h below the tie
	// between c and its neighbour, closer than float64 resolves, so a
	// float64 sum would round onto the tie and then to even — the wrong way
	// when c is odd. Likewise for the negated product and for c = ±2^k
	// (where the spacing below is half).
	for k := 1; k <= 300; k++ {
		x := float32(k) * 0x1p-22
		for _, c := range []float32{1, 1 + 0x1p-23, 1.5 + 0x1p-23, 3 - 0x1p-22, -(1 + 0x1p-23), 0x1p20 + 1} {
			ulp := math.Nextafter32(c, float32(math.Inf(1))) - c
			if c < 0 {
				ulp = c - math.Nextafter32(c, float32(math.Inf(-1)))
			}
			h := ulp / 2
			check(1+x, (1-x)*h, c)
			check(1+x, -(1-x)*h, c)
			check(-(1 + x), (1-x)*h, c)
			check(1+x, (1+x)*h, c)
		}
	}
	check(3, 0x1p-25, 1) // an exact tie
	check(0, 5, -0)
	check(float32(math.Inf(1)), 2, 1)
	check(math.MaxFloat32, 2, -math.MaxFloat32)
}

// ulps is the number of float32 values between a and b (a and b finite or
// infinite, not NaN).
func ulps(a, b float32) int64 {
	key := func(x float32) int64 {
		u := math.Float32bits(x)
		if u&0x80000000 != 0 {
			return -int64(u & 0x7fffffff)
		}
		return int64(u)
	}
	d := key(a) - key(b)
	if d < 0 {
		d = -d
	}
	return d
}

// TestExpAccuracy measures expf against the correctly rounded exponential
// over float32 inputs in [-104, 89]: every 1013th (every 100003rd with
// -short), all of them with TAMP_EXHAUSTIVE=1.
func TestExpAccuracy(t *testing.T) {
	stride := uint32(1013)
	switch {
	case os.Getenv("TAMP_EXHAUSTIVE") != "":
		stride = 1
	case testing.Short():
		stride = 100003
	}
	var worst, worstSub int64
	var worstX float32
	check := func(x float32) {
		got := expf(x)
		want := float32(math.Exp(float64(x)))
		d := ulps(got, want)
		if want < 0x1p-126 {
			worstSub = max(worstSub, d)
			return
		}
		if d > worst {
			worst, worstX = d, x
		}
	}
	// Positive inputs up to 89, then negative ones down to -104.
	for b := uint32(0); b <= math.Float32bits(89); b += stride {
		check(math.Float32frombits(b))
	}
	for b := uint32(0x80000000); b <= math.Float32bits(-104); b += stride {
		check(math.Float32frombits(b))
	}
	t.Logf("max error %d ulp (at %g), subnormal results %d ulp", worst, worstX, worstSub)
	if worst > 1 || worstSub > 1 {
		t.Errorf("max error %d ulp (at %g), subnormal results %d ulp; want ≤ 1", worst, worstX, worstSub)
	}
}

// TestExpSpecial checks the ends of the range and the non-finite inputs.
func TestExpSpecial(t *testing.T) {
	inf := float32(math.Inf(1))
	for _, tc := range []struct {
		x, want float32
	}{
		{0, 1},
		{float32(math.Copysign(0, -1)), 1},
		{-inf, 0},
		{inf, inf},
		{-104, 0},
		{-1e30, 0},
		{88.72284, inf},
		{89, inf},
		{1e30, inf},
		{-math.MaxFloat32, 0},
	} {
		if got := expf(tc.x); math.Float32bits(got) != math.Float32bits(tc.want) {
			t.Errorf("expf(%g) = %g, want %g", tc.x, got, tc.want)
		}
	}
	// The largest argument with a finite exponential, and the smallest
	// ones with a nonzero (subnormal) one.
	if x := math.Nextafter32(88.72284, 0); math.IsInf(float64(expf(x)), 0) {
		t.Errorf("expf(%g) = +Inf, want finite", x)
	}
	if got := expf(-103.9); got == 0 || got >= 0x1p-140 {
		t.Errorf("expf(-103.9) = %g, want a small subnormal", got)
	}
	if got := expf(float32(math.NaN())); !math.IsNaN(float64(got)) {
		t.Errorf("expf(NaN) = %g", got)
	}
}

// expInputs is a test vector of n arguments: normal ones, the edges of the
// range and non-finite values.
func expInputs(rng *rand.Rand, n int) []float32 {
	special := []float32{0, -0.5, 88.72284, 88.72283, 89, 90, -103.9, -104, -105,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), -87.5, 1e-30, -1e-40}
	x := make([]float32, n)
	for i := range x {
		switch rng.IntN(4) {
		case 0:
			x[i] = special[rng.IntN(len(special))]
		case 1:
			x[i] = float32(rng.Float64()*200 - 105)
		default:
			x[i] = float32(rng.NormFloat64() * 4)
		}
	}
	return x
}

// sameBits reports whether a and b are the same float32, any NaN matching
// any NaN.
func sameBits(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || a != a && b != b
}

// TestExpSIMDMatchesReference runs ExpSum and SiLUMul with the assembly
// kernels and with the plain-Go reference on the same inputs, of lengths
// that do and do not fill whole vectors, and requires identical bits.
func TestExpSIMDMatchesReference(t *testing.T) {
	if !hasExpKernels {
		t.Skip("no exp kernels on this machine")
	}
	defer func(u bool) { useSIMD = u }(useSIMD)
	rng := rand.New(rand.NewPCG(9, 10))
	for _, n := range []int{0, 1, 7, 8, 9, 15, 16, 17, 31, 64, 100, 1000} {
		for rep := range 20 {
			x := expInputs(rng, n)
			// Maxima as softmax passes them, and ones it never does.
			m := []float32{0, float32(rng.NormFloat64() * 3), float32(math.Inf(-1)),
				float32(math.Inf(1)), float32(math.NaN())}[rep%5]
			useSIMD = true
			a := append([]float32(nil), x...)
			sa := ExpSum(a, m)
			useSIMD = false
			b := append([]float32(nil), x...)
			sb := ExpSum(b, m)
			if math.Float64bits(sa) != math.Float64bits(sb) && !(math.IsNaN(sa) && math.IsNaN(sb)) {
				t.Fatalf("n=%d: ExpSum %v with kernels, %v without", n, sa, sb)
			}
			for i := range a {
				if !sameBits(a[i], b[i]) || !sameBits(b[i], expf(x[i]-m)) {
					t.Fatalf("n=%d: exp(%g) = %g with kernels, %g without", n, x[i]-m, a[i], b[i])
				}
			}

			u := expInputs(rng, n+rep%3)
			useSIMD = true
			a = append(a[:0], x...)
			SiLUMul(a, u)
			useSIMD = false
			b = append(b[:0], x...)
			SiLUMul(b, u)
			for i := range a {
				if !sameBits(a[i], b[i]) {
					t.Fatalf("n=%d: silu(%g)·%g = %g with kernels, %g without", n, x[i], u[i], a[i], b[i])
				}
			}
		}
	}
}

// TestExpSum checks the sum and the in-place results against float64
// arithmetic, including masked (-Inf) entries.
func TestExpSum(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, n := range []int{0, 1, 5, 8, 13, 64, 257} {
		x := make([]float32, n)
		m := float32(math.Inf(-1))
		for i := range x {
			x[i] = float32(rng.NormFloat64() * 5)
			if i%5 == 4 {
				x[i] = float32(math.Inf(-1))
			}
			m = max(m, x[i])
		}
		orig := append([]float32(nil), x...)
		s := ExpSum(x, m)
		var want float64
		for i, v := range orig {
			e := math.Exp(float64(v - m))
			want += e
			if math.Abs(float64(x[i])-e) > 2e-7*e {
				t.Fatalf("n=%d: exp(%g) = %g, want %g", n, v-m, x[i], e)
			}
		}
		if math.Abs(s-want) > 1e-6*want {
			t.Errorf("n=%d: sum %v, want %v", n, s, want)
		}
	}
}

// TestSiLUMul checks the gate against float64 arithmetic.
func TestSiLUMul(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, n := range []int{0, 3, 8, 29, 300} {
		g := make([]float32, n)
		u := make([]float32, n+2)
		for i := range g {
			g[i] = float32(rng.NormFloat64() * 6)
		}
		for i := range u {
			u[i] = float32(rng.NormFloat64())
		}
		copy(g, []float32{-200, 200})
		orig := append([]float32(nil), g...)
		SiLUMul(g, u)
		for i, v := range orig {
			want := float64(v) / (1 + math.Exp(-float64(v))) * float64(u[i])
			if math.Abs(float64(g[i])-want) > 1e-6*math.Abs(want)+1e-30 {
				t.Fatalf("silu(%g)·%g = %g, want %g", v, u[i], g[i], want)
			}
		}
	}
}

func ExampleExpSum() {
	scores := []float32{1, 2, 3}
	sum := ExpSum(scores, 3) // subtract the maximum
	for i := range scores {
		scores[i] /= float32(sum)
	}
	fmt.Printf("%.4f\n", scores)
	// Output: [0.0900 0.2447 0.6652]
}

// BenchmarkExp times ExpSum and SiLUMul over 4096 elements with the
// kernels and with the plain-Go reference, and the float64 math.Exp loop
// they replace.
func BenchmarkExp(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, 4096)
	u := make([]float32, len(x))
	for i := range x {
		x[i] = float32(rng.NormFloat64() * 3)
		u[i] = float32(rng.NormFloat64())
	}
	buf := make([]float32, len(x))
	defer func(u bool) { useSIMD = u }(useSIMD)
	for _, simd := range []bool{true, false} {
		name := "simd"
		if !simd {
			name = "generic"
		}
		b.Run("ExpSum/"+name, func(b *testing.B) {
			useSIMD = simd
			b.SetBytes(int64(4 * len(x)))
			for b.Loop() {
				copy(buf, x)
				ExpSum(buf, 3)
			}
		})
		b.Run("SiLUMul/"+name, func(b *testing.B) {
			useSIMD = simd
			b.SetBytes(int64(4 * len(x)))
			for b.Loop() {
				copy(buf, x)
				SiLUMul(buf, u)
			}
		})
	}
	b.Run("math.Exp", func(b *testing.B) {
		b.SetBytes(int64(4 * len(x)))
		for b.Loop() {
			var s float64
			for i, v := range x {
				e := float32(math.Exp(float64(v - 3)))
				buf[i] = e
				s += float64(e)
			}
			_ = s
		}
	})
}
