package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestF16BatchMatchesMatVec: F16 products of several vectors run three at
// a time through the batched kernel; every result must be MatVec's to the
// bit, for row lengths with and without a tail past the last 32 elements,
// vector counts that leave one or two for the one-vector kernel, values
// that round to zero or overflow in half precision, and 1 or 2 threads.
func TestF16BatchMatchesMatVec(t *testing.T) {
	if f16BatchFor(F16) == nil {
		t.Log("no batched F16 kernel on this machine: MatMul uses the one-vector kernel")
	}
	r := rand.New(rand.NewPCG(40, 41))
	defer SetThreads(Threads())
	for _, threads := range []int{1, 2} {
		SetThreads(threads)
		for _, cols := range []int{8, 32, 40, 256, 1000} {
			for _, n := range []int{3, 4, 5, 7, 64} {
				w := randomTensor(r, F16, cols, 37)
				x := randomVector(r, n*cols)
				x[0], x[len(x)-1] = 1e-9, 7e4 // below half's range; above it
				out := make([]float32, n*37)
				if err := MatMul(w, x, n, out); err != nil {
					t.Fatal(err)
				}
				one := make([]float32, 37)
				for v := range n {
					if err := MatVec(w, x[v*cols:(v+1)*cols], one); err != nil {
						t.Fatal(err)
					}
					for i, want := range one {
						got := out[v*37+i]
						if math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
							t.Fatalf("threads %d cols %d n %d: vector %d row %d: MatMul %g, MatVec %g", threads, cols, n, v, i, got, want)
						}
					}
				}
			}
		}
	}
}
