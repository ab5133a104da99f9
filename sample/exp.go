package sample

import "math"

// Range-reduction constants from FreeBSD's e_exp.c, as math.Exp uses them:
// ln2Hi has its low 21 bits zero, so k·ln2Hi is exact for any k exp can need.
const (
	ln2Hi  = 6.93147180369123816490e-01
	ln2Lo  = 1.90821492927058770002e-10
	log2e  = 1.44269504088896338700e+00
	expMax = 7.09782712893383973096e+02  // above this exp overflows
	expMin = -7.45133219101941108420e+02 // below this exp underflows to 0
)

// expDet returns e**x to within a few ulps, computed the same way on every
// architecture. math.Exp is assembly on amd64, arm64, loong64 and s390x, and
// its results can differ from the portable code by an ulp; a sampler whose
// choices must not depend on the machine cannot use it. Every product below
// is converted to float64 before it is added to, which by the Go spec stops
// the compiler from fusing it into an FMA (which would round differently on
// the architectures that have one).
func expDet(x float64) float64 {
	switch {
	case x != x:
		return x
	case x > expMax:
		return math.Inf(1)
	case x < expMin:
		return 0
	}
	// x = k·ln2 + r with |r| <= ln2/2.
	kf := math.Floor(float64(x*log2e) + 0.5)
	r := (x - float64(kf*ln2Hi)) - float64(kf*ln2Lo)
	// Taylor series of e**r to r**13: the first omitted term is below
	// 0.347**14/14! ≈ 4e-18, well under half an ulp of e**r.
	p := 1.0 / 6227020800 // 1/13!
	p = float64(p*r) + 1.0/479001600
	p = float64(p*r) + 1.0/39916800
	p = float64(p*r) + 1.0/3628800
	p = float64(p*r) + 1.0/362880
	p = float64(p*r) + 1.0/40320
	p = float64(p*r) + 1.0/5040
	p = float64(p*r) + 1.0/720
	p = float64(p*r) + 1.0/120
	p = float64(p*r) + 1.0/24
	p = float64(p*r) + 1.0/6
	p = float64(p*r) + 1.0/2
	p = float64(p*r) + 1
	p = float64(p*r) + 1
	// Ldexp has no assembly version on any architecture, and scaling by a
	// power of two is exact (correctly rounded when the result is subnormal).
	return math.Ldexp(p, int(kf))
}
