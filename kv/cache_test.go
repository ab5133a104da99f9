package kv

import (
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"tamp/tensor"
)

func TestRetainMovesEverything(t *testing.T) {
	for _, q := range []Quant{{}, {Bits: 4, Group: 4, Residual: 4}, {Bits: 8, Group: 4, Hadamard: true}} {
		for _, st := range []Storage{F16, F32} {
			shape := Shape{Layers: 1, Heads: 2, KVHeads: 2, HeadDim: 8}
			c, err := NewCache(shape, 64, Options{Storage: st, Quant: q, Scores: true, Aux: true})
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(7, 8))
			fillRandom(t, c, 30, rng)
			for j := range 30 {
				c.Scores(0, 1)[j] = float32(j)
				c.Aux(0, 1)[j] = float32(-j)
			}
			hd := shape.HeadDim
			before := make([][2][]float32, 30)
			for j := range before {
				k, v := make([]float32, hd), make([]float32, hd)
				c.Key(0, 1, j, k)
				c.Value(0, 1, j, v)
				before[j] = [2][]float32{k, v}
			}
			keep := []int{0, 3, 4, 5, 11, 17, 22, 28, 29}
			if err := c.Retain(0, 1, keep); err != nil {
				t.Fatal(err)
			}
			if c.Len(0, 0) != 30 {
				t.Errorf("retain on head 1 changed head 0")
			}
			k, v := make([]float32, hd), make([]float32, hd)
			for w, j := range keep {
				if p := c.Positions(0, 1)[w]; p != int32(j) {
					t.Fatalf("%v %v: entry %d has position %d, want %d", q, st, w, p, j)
				}
				if c.Scores(0, 1)[w] != float32(j) || c.Aux(0, 1)[w] != float32(-j) {
					t.Errorf("%v %v: entry %d lost its score or aux value", q, st, w)
				}
				c.Key(0, 1, w, k)
				c.Value(0, 1, w, v)
				if !slices.Equal(k, before[j][0]) || !slices.Equal(v, before[j][1]) {
					t.Errorf("%v %v: entry %d (was %d) changed its key or value", q, st, w, j)
				}
			}
			// Appending after a retain keeps working and quantizing.
			fillMore(t, c, 30, 20, rng)
			if c.Len(0, 1) != len(keep)+20 {
				t.Errorf("after appending: %d entries", c.Len(0, 1))
			}
		}
	}
}

func fillMore(t *testing.T, c *Cache, from, n int, rng *rand.Rand) {
	t.Helper()
	w := c.KVHeads() * c.HeadDim()
	for p := from; p < from+n; p++ {
		for l := range c.Layers() {
			if err := c.Append(l, int32(p), randVec(rng, w), randVec(rng, w)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestBytesAccounting(t *testing.T) {
	shape := Shape{Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 8}
	rng := rand.New(rand.NewPCG(9, 10))
	c, _ := NewCache(shape, 100, Options{Storage: F16})
	fillRandom(t, c, 50, rng)
	if got, want := c.Bytes(), c.FullBytes(50); got != want {
		t.Errorf("F16 cache of 50 tokens: %d bytes, FullBytes says %d", got, want)
	}
	// 2 layers × 2 heads × 50 × (2·8·2 + 4) bytes.
	if want := int64(2 * 2 * 50 * (32 + 4)); c.Bytes() != want {
		t.Errorf("bytes %d, want %d", c.Bytes(), want)
	}
	for l := range 2 {
		for h := range 2 {
			if err := c.Retain(l, h, []int{1, 2, 3}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got, want := c.Bytes(), c.FullBytes(3); got != want {
		t.Errorf("after retaining 3: %d bytes, want %d", got, want)
	}
	if got, want := c.PeakBytes(), c.FullBytes(50); got != want {
		t.Errorf("peak %d, want %d", got, want)
	}
	c.Reset()
	if c.Bytes() != 0 || c.PeakBytes() != 0 || c.Entries() != 0 {
		t.Errorf("reset left %d bytes, peak %d, %d entries", c.Bytes(), c.PeakBytes(), c.Entries())
	}
}

func TestQuantBytes(t *testing.T) {
	// 64 tokens, head 32, group 32, no residual: keys become 2 blocks (codes
	// plus 32 minimums and steps each), values 64 rows with one group each.
	shape := Shape{Layers: 1, Heads: 1, KVHeads: 1, HeadDim: 32}
	for _, bits := range []int{2, 4, 8} {
		c, err := NewCache(shape, 64, Options{Storage: F16, Quant: Quant{Bits: bits, Group: 32}})
		if err != nil {
			t.Fatal(err)
		}
		fillRandom(t, c, 64, rand.New(rand.NewPCG(1, 1)))
		row := 32 * bits / 8
		want := int64(64*4 + // positions
			64*row + 2*32*4 + // keys: codes, two blocks of parameters
			64*(row+4)) // values: codes and one (min, step) pair each
		if got := c.Bytes(); got != want {
			t.Errorf("%d bits: %d bytes, want %d", bits, got, want)
		}
		if c.Bytes() >= c.FullBytes(64) {
			t.Errorf("%d bits: %d bytes is not below the F16 cache's %d", bits, c.Bytes(), c.FullBytes(64))
		}
	}
}

func TestQuantError(t *testing.T) {
	shape := Shape{Layers: 1, Heads: 1, KVHeads: 1, HeadDim: 16}
	for _, tc := range []struct {
		q    Quant
		rmse float64 // relative to unit-variance data
	}{
		{Quant{Bits: 8, Group: 8}, 0.01},
		{Quant{Bits: 4, Group: 8}, 0.15},
		{Quant{Bits: 2, Group: 8}, 0.6},
		{Quant{Bits: 2, Group: 8, Hadamard: true}, 0.6},
	} {
		rng := rand.New(rand.NewPCG(2, 3))
		n := 64
		c, err := NewCache(shape, n, Options{Storage: F32, Quant: tc.q})
		if err != nil {
			t.Fatal(err)
		}
		ks, vs := make([][]float32, n), make([][]float32, n)
		for p := range n {
			ks[p], vs[p] = randVec(rng, 16), randVec(rng, 16)
			if err := c.Append(0, int32(p), ks[p], vs[p]); err != nil {
				t.Fatal(err)
			}
		}
		var se float64
		k, v := make([]float32, 16), make([]float32, 16)
		for j := range n {
			c.Key(0, 0, j, k)
			c.Value(0, 0, j, v)
			if tc.q.Hadamard {
				hadamard(k) // back to the original basis
				hadamard(v)
			}
			for i := range k {
				se += sq(k[i]-ks[j][i]) + sq(v[i]-vs[j][i])
			}
		}
		if rmse := math.Sqrt(se / float64(2*n*16)); rmse > tc.rmse || rmse == 0 {
			t.Errorf("%v: rmse %.4f, want in (0, %.2f]", tc.q, rmse, tc.rmse)
		}
	}
}

func sq(x float32) float64 { return float64(x) * float64(x) }

// TestQuantResidual checks KIVI's full-precision window: keys quantize a
// whole residual at once, values one by one, oldest first.
func TestQuantResidual(t *testing.T) {
	shape := Shape{Layers: 1, Heads: 1, KVHeads: 1, HeadDim: 8}
	c, _ := NewCache(shape, 100, Options{Storage: F16, Quant: Quant{Bits: 2, Group: 4, Residual: 8}})
	rng := rand.New(rand.NewPCG(4, 4))
	var vs [][]float32
	for p := range 21 {
		k, v := randVec(rng, 8), randVec(rng, 8)
		vs = append(vs, v)
		if err := c.Append(0, int32(p), k, v); err != nil {
			t.Fatal(err)
		}
		e := c.head(0, 0)
		if want := (p + 1) / 8 * 8; e.kq != want {
			t.Fatalf("after %d tokens %d keys quantized, want %d", p+1, e.kq, want)
		}
		if want := max(p+1-8, 0); e.vq != want {
			t.Fatalf("after %d tokens %d values quantized, want %d", p+1, e.vq, want)
		}
	}
	// The last 8 values are exact F16.
	v := make([]float32, 8)
	for j := 13; j < 21; j++ {
		c.Value(0, 0, j, v)
		for i := range v {
			if v[i] != tensor.F16ToF32(tensor.F32ToF16(vs[j][i])) {
				t.Fatalf("recent value %d channel %d is %v, want F16 %v", j, i, v[i], vs[j][i])
			}
		}
	}
}

func TestCacheErrors(t *testing.T) {
	shape := Shape{Layers: 1, Heads: 2, KVHeads: 1, HeadDim: 4}
	c, _ := NewCache(shape, 2, Options{})
	k := make([]float32, 4)
	for _, tc := range []struct {
		err  error
		want string
	}{
		{c.Append(1, 0, k, k), "layer 1 out of range"},
		{c.Append(0, 0, k[:3], k), "append of 3/4"},
		{func() error { c.Append(0, 5, k, k); return c.Append(0, 5, k, k) }(), "position 5 appended after position 5"},
		{func() error { c.Append(0, 6, k, k); return c.Append(0, 7, k, k) }(), "cache full"},
		{c.Retain(0, 0, []int{1, 0}), "strictly increasing"},
		{c.Retain(0, 0, []int{2}), "strictly increasing"},
		{c.Retain(0, 3, nil), "out of range"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("error %v, want %q", tc.err, tc.want)
		}
	}
	for _, tc := range []struct {
		shape Shape
		q     Quant
		want  string
	}{
		{Shape{Layers: 1, Heads: 3, KVHeads: 2, HeadDim: 4}, Quant{}, "not a multiple"},
		{Shape{Layers: 0, Heads: 1, KVHeads: 1, HeadDim: 4}, Quant{}, "must be positive"},
		{Shape{Layers: 1, Heads: 1, KVHeads: 1, HeadDim: 6}, Quant{Bits: 4, Hadamard: true}, "power-of-two"},
		{Shape{Layers: 1, Heads: 1, KVHeads: 1, HeadDim: 6}, Quant{Bits: 2}, "whole bytes"},
		{Shape{Layers: 1, Heads: 1, KVHeads: 1, HeadDim: 8}, Quant{Bits: 4, Residual: -1}, "negative"},
	} {
		_, err := NewCache(tc.shape, 4, Options{Quant: tc.q})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v %+v: error %v, want %q", tc.shape, tc.q, err, tc.want)
		}
	}
}

func TestHadamardIsOrthonormalInvolution(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	x := randVec(rng, 64)
	y := slices.Clone(x)
	hadamard(y)
	var nx, ny float64
	for i := range x {
		nx += sq(x[i])
		ny += sq(y[i])
	}
	if math.Abs(nx-ny) > 1e-4*nx {
		t.Errorf("norm² %v became %v", nx, ny)
	}
	hadamard(y)
	for i := range x {
		if math.Abs(float64(x[i]-y[i])) > 1e-5 {
			t.Fatalf("H·H·x differs from x at %d: %v vs %v", i, y[i], x[i])
		}
	}
}

func TestPool1D(t *testing.T) {
	src := []float32{0, 0, 3, 0, 0, 6}
	dst := make([]float32, len(src))
	Pool1D(dst, src, 3, PoolMax)
	if want := []float32{0, 3, 3, 3, 6, 6}; !slices.Equal(dst, want) {
		t.Errorf("max pool %v, want %v", dst, want)
	}
	Pool1D(dst, src, 3, PoolAvg)
	// Zero padding counts in the average, as in PyTorch's avg_pool1d.
	if want := []float32{0, 1, 1, 1, 2, 2}; !slices.Equal(dst, want) {
		t.Errorf("avg pool %v, want %v", dst, want)
	}
}

func TestTopK(t *testing.T) {
	s := []float32{1, 5, 5, 2, float32(math.NaN()), 4}
	if got, want := TopK(s, 3), []int{1, 2, 5}; !slices.Equal(got, want) {
		t.Errorf("top 3 %v, want %v", got, want)
	}
	// Ties go to the later index.
	if got, want := TopK(s, 1), []int{2}; !slices.Equal(got, want) {
		t.Errorf("top 1 %v, want %v", got, want)
	}
	if got := TopK(s, 0); len(got) != 0 {
		t.Errorf("top 0 %v", got)
	}
	if got := TopK(s, 9); len(got) != len(s) {
		t.Errorf("top 9 of 6 gave %v", got)
	}
}

func TestTables(t *testing.T) {
	shape := Shape{Layers: 4, Heads: 2, KVHeads: 2, HeadDim: 4}
	if got := ScaleBudgets([]int{10, 20, 30, 40}, 4*50); sum(got) != 200 || got[3] <= got[0] {
		t.Errorf("scaled %v: want sum 200, proportions kept", got)
	}
	if got := Apportion([]float64{1, 1, 8}, 10, 0, 4); !slices.Equal(got, []int{3, 3, 4}) {
		t.Errorf("apportion with a cap: %v, want [3 3 4]", got)
	}
	tab := &Table{Kind: TableLayers, Budget: 32, Layers: []int{64, 32, 16, 16}, Heads: [][]int{{60, 68}, {32, 32}, {8, 24}, {16, 16}}}
	if err := tab.Check(shape); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := tab.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	back, err := ReadTable(&buf)
	if err != nil {
		t.Fatal(err)
	}
	r := back.Resolve(shape, 32, 0, 0)
	if !slices.Equal(r[0], []int{60, 68}) || !slices.Equal(r[2], []int{8, 24}) {
		t.Errorf("per-head budgets %v", r)
	}
	// Asking for twice the mean doubles every budget.
	r = back.Resolve(shape, 64, 0, 0)
	if !slices.Equal(r[0], []int{120, 136}) || r[1][0] != 64 {
		t.Errorf("expanded budgets %v", r)
	}
	for _, tc := range []struct{ json, want string }{
		{`{"kind":"layers","layers":[]}`, "lists no layers"},
		{`{"kind":"layers","layers":[4,0]}`, "must be positive"},
		{`{"kind":"cone"}`, "unknown budget table kind"},
		{`{"layers":[1,2],"heads":[[1]]}`, "1 rows of head budgets for 2 layers"},
		{`{"kind":"uniform","extra":1}`, "unknown field"},
		{`[`, "reading budget table"},
	} {
		_, err := ReadTable(strings.NewReader(tc.json))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.json, err, tc.want)
		}
	}
	if err := (&Table{Kind: TableLayers, Layers: []int{1, 2, 3}}).Check(shape); err == nil {
		t.Error("a 3-layer table fits a 4-layer model")
	}
}

func sum(x []int) int {
	s := 0
	for _, v := range x {
		s += v
	}
	return s
}
