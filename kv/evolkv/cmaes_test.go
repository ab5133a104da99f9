package evolkv

import (
	"math"
	"testing"
)

// TestCMAESMinimises checks the optimiser on an ill-conditioned rotated
// ellipsoid, which needs the covariance adaptation to converge.
func TestCMAESMinimises(t *testing.T) {
	f := func(x []float64) float64 {
		// Rotate by 45° in pairs, then weight axes 1..1e4.
		var s float64
		for i := 0; i+1 < len(x); i += 2 {
			a, b := (x[i]+x[i+1])/math.Sqrt2, (x[i]-x[i+1])/math.Sqrt2
			s += math.Pow(1e4, float64(i)/float64(len(x)-1))*(a-1)*(a-1) + math.Pow(1e4, float64(i+1)/float64(len(x)-1))*(b-0.5)*(b-0.5)
		}
		return s
	}
	e := NewCMAES(make([]float64, 6), 0.5, 0, 1)
	for range 400 {
		xs := e.Ask()
		fs := make([]float64, len(xs))
		for i, x := range xs {
			fs[i] = f(x)
		}
		e.Tell(xs, fs)
	}
	x, best := e.Best()
	if best > 1e-8 {
		t.Fatalf("best value %g at %v, want ~0", best, x)
	}
}
