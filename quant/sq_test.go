package quant

import (
	"bytes"
	"math"
	"math/bits"
	"math/rand/v2"
	"testing"

	"tamp/gguf"
	"tamp/tensor"
)

// randRow returns n values of a bell-shaped distribution with a few large
// outliers, like LLM weight rows.
func randRow(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64() * 0.05)
		if r.IntN(50) == 0 {
			x[i] *= 12
		}
	}
	return x
}

func TestSQTypesRegistered(t *testing.T) {
	for _, tc := range []struct {
		name       string
		id         tensor.Type
		blockBytes int
		bpw        float64
	}{
		// 4 B scales + 8 B mask + 32 B nibbles + k/2 B top nibbles.
		{"SQ4_8", 1024, 48, 6},
		{"SQ4_16", 1025, 52, 6.5},
		// 4 B scales + 8 B mask + 16 B 2-bit codes + k B INT8 values.
		{"SQ2_8", 1026, 36, 4.5},
		{"SQ2_16", 1027, 44, 5.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			typ, ok := tensor.ParseType(tc.name)
			if !ok || typ != tc.id {
				t.Fatalf("ParseType(%s) = %d, %v; want id %d", tc.name, typ, ok, tc.id)
			}
			info, _ := typ.Info()
			if info.BlockSize != SQBank || info.BlockBytes != tc.blockBytes || info.BitsPerWeight() != tc.bpw {
				t.Errorf("info %+v (%.4g bpw), want %d bytes per %d, %.4g bpw", info, info.BitsPerWeight(), tc.blockBytes, SQBank, tc.bpw)
			}
			if !tensor.Supported(typ) || tensor.VecDotType(typ) != tensor.Q8_0 {
				t.Errorf("kernel not registered (supported %v, vec-dot %s)", tensor.Supported(typ), tensor.VecDotType(typ))
			}
			found := false
			for _, p := range SQPresets() {
				if p.Type == typ {
					found = true
					if sum := p.DenseBPW + p.SparseBPW + p.MaskBPW + p.ScaleBPW; math.Abs(sum-p.BPW) > 1e-12 || p.BPW != tc.bpw {
						t.Errorf("preset parts sum to %g, total %g, want %g", sum, p.BPW, tc.bpw)
					}
				}
			}
			if !found {
				t.Error("missing from SQPresets")
			}
		})
	}
}

// TestSQRoundTrip checks the quantizer's structure (exactly k slots, the
// INT8 values on the most important elements) and its accuracy.
func TestSQRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const n = 4 * SQBank
	x := randRow(r, n)
	qw := make([]float32, n)
	for i := range qw {
		qw[i] = float32(r.ExpFloat64())
	}
	for _, typ := range SQTypes() {
		f := sqFormats[typ]
		for _, weights := range [][]float32{nil, qw} {
			rb, _ := tensor.RowBytes(typ, n)
			dst := make([]byte, rb)
			if err := QuantizeRow(typ, x, dst, weights); err != nil {
				t.Fatal(err)
			}
			back := make([]float32, n)
			if err := tensor.Dequantize(typ, dst, back); err != nil {
				t.Fatal(err)
			}
			var se, ss float64
			for i := range x {
				se += float64((x[i] - back[i]) * (x[i] - back[i]))
				ss += float64(x[i] * x[i])
			}
			rel := math.Sqrt(se / ss)
			// INT4 dense parts with outliers moved out keep the relative
			// error well under 10%; INT2 under 40%.
			limit := 0.1
			if f.lowBits == 2 {
				limit = 0.4
			}
			if rel > limit {
				t.Errorf("%s (imatrix %v): relative RMS error %.3f > %.2f", typ, weights != nil, rel, limit)
			}
			for b := 0; b < n/SQBank; b++ {
				blk := dst[b*f.blockBytes():]
				m := f.mask(blk)
				if bits.OnesCount64(m) != f.k {
					t.Fatalf("%s block %d has %d slots, want %d", typ, b, bits.OnesCount64(m), f.k)
				}
				// The largest magnitude must be a slot.
				best, bestScore := 0, float32(-1)
				for j := 0; j < SQBank; j++ {
					if s := abs32(x[b*SQBank+j]); s > bestScore {
						best, bestScore = j, s
					}
				}
				if m>>best&1 == 0 {
					t.Errorf("%s block %d: the largest element %d is not an INT8 slot", typ, b, best)
				}
			}
		}
	}
}

// TestSQWithImatrixLowersWeightedError checks that the importance-weighted
// scale search of the dense part lowers the importance-weighted error.
func TestSQWithImatrixLowersWeightedError(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const n = 64 * SQBank
	x := randRow(r, n)
	qw := make([]float32, n)
	for i := range qw {
		qw[i] = float32(math.Exp(2 * r.NormFloat64()))
	}
	for _, typ := range SQTypes() {
		rb, _ := tensor.RowBytes(typ, n)
		werr := func(weights []float32) float64 {
			dst := make([]byte, rb)
			if err := QuantizeRow(typ, x, dst, weights); err != nil {
				t.Fatal(err)
			}
			back := make([]float32, n)
			tensor.Dequantize(typ, dst, back)
			var e float64
			for i := range x {
				d := float64(x[i] - back[i])
				e += float64(qw[i]) * d * d
			}
			return e
		}
		plain, weighted := werr(nil), werr(qw)
		if !(weighted < plain) {
			t.Errorf("%s: importance-weighted error %.4g with the imatrix, %.4g without", typ, weighted, plain)
		}
	}
}

func q8Activations(r *rand.Rand, n int) []byte {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	xq := make([]byte, n/32*34)
	tensor.QuantizeQ8_0(x, xq)
	return xq
}

// TestSQDotMatchesDequantized checks both dot kernels against the
// dequantized row times the dequantized activations.
func TestSQDotMatchesDequantized(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{SQBank, 3 * SQBank, 130 * SQBank} {
		x := randRow(r, n)
		xq := q8Activations(r, n)
		xf := make([]float32, n)
		tensor.Dequantize(tensor.Q8_0, xq, xf)
		for _, typ := range SQTypes() {
			f := sqFormats[typ]
			rb, _ := tensor.RowBytes(typ, n)
			row := make([]byte, rb)
			QuantizeRow(typ, x, row, nil)
			w := make([]float32, n)
			tensor.Dequantize(typ, row, w)
			var want, mag float64
			for i := range w {
				want += float64(w[i]) * float64(xf[i])
				mag += math.Abs(float64(w[i]) * float64(xf[i]))
			}
			ref := f.dotRef(n, row, xq)
			fast := tensor.DotRow(typ, n, row, xq)
			// float32 accumulation over n terms: relative to Σ|w·x|.
			if d := math.Abs(float64(ref) - want); d > 1e-5*mag+1e-6 {
				t.Errorf("%s n=%d: reference dot %g, dequantized %g (mag %g)", typ, n, ref, want, mag)
			}
			if fast != ref {
				t.Errorf("%s n=%d: kernel dot %g differs from reference %g", typ, n, fast, ref)
			}
		}
	}
}

// TestSQ4DenseSumsAsm checks the assembly routine against its reference on
// random blocks, including arbitrary masks and extreme activations.
func TestSQ4DenseSumsAsm(t *testing.T) {
	if !hasSQ4Asm {
		t.Log("no assembly kernel on this machine; checking the fallback")
	}
	r := rand.New(rand.NewPCG(7, 8))
	for _, stride := range []int{48, 52} {
		for trial := 0; trial < 200; trial++ {
			cnt := 1 + r.IntN(9)
			row := make([]byte, cnt*stride+32)
			for i := range row {
				row[i] = byte(r.Uint32())
			}
			xq := make([]byte, cnt*68+64)
			for i := range xq {
				xq[i] = byte(r.Uint32())
				if trial%3 == 0 {
					xq[i] = 0x81 // -127 everywhere stresses the 16-bit pair sums
				}
			}
			got := make([]int32, 4*cnt)
			want := make([]int32, 4*cnt)
			sq4DenseSums(row, xq, cnt, stride, got)
			sq4DenseSumsRef(row, xq, cnt, stride, want)
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("stride %d trial %d: sums %v, reference %v", stride, trial, got, want)
				}
			}
		}
	}
}

// TestSQDamagedMask checks that blocks with more (or fewer) mask bits than
// slots are read consistently by every path and never panic.
func TestSQDamagedMask(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, typ := range SQTypes() {
		f := sqFormats[typ]
		for trial := 0; trial < 50; trial++ {
			n := 2 * SQBank
			rb, _ := tensor.RowBytes(typ, n)
			row := make([]byte, rb)
			for i := range row {
				row[i] = byte(r.Uint32())
			}
			for b := 0; b < 2; b++ {
				putF16(row[b*f.blockBytes():], 0.01)
				putF16(row[b*f.blockBytes()+2:], 0.02)
			}
			xq := q8Activations(r, n)
			xf := make([]float32, n)
			tensor.Dequantize(tensor.Q8_0, xq, xf)
			w := make([]float32, n)
			if err := tensor.Dequantize(typ, row, w); err != nil {
				t.Fatal(err)
			}
			var want float64
			for i := range w {
				want += float64(w[i]) * float64(xf[i])
			}
			ref := f.dotRef(n, row, xq)
			fast := f.dot(n, row, xq)
			if math.Abs(float64(ref)-want) > 1e-3*(1+math.Abs(want)) || math.Abs(float64(fast-ref)) > 1e-3*(1+math.Abs(float64(ref))) {
				t.Fatalf("%s: dequantized %g, reference %g, kernel %g", typ, want, ref, fast)
			}
		}
	}
}

// TestSQInGGUF writes an SQ tensor to GGUF and reads it back; the type id
// survives and the data is unchanged.
func TestSQInGGUF(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	f := gguf.New()
	x := randRow(r, 2*SQBank*3)
	rb, _ := tensor.RowBytes(SQ4_8, 2*SQBank)
	data := make([]byte, 3*rb)
	for row := 0; row < 3; row++ {
		QuantizeRow(SQ4_8, x[row*2*SQBank:(row+1)*2*SQBank], data[row*rb:(row+1)*rb], nil)
	}
	if err := f.AddTensor("w", SQ4_8, []uint64{2 * SQBank, 3}, data); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := f.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	g, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	gt, _ := g.Tensor("w")
	if gt.Type != SQ4_8 || !bytes.Equal(gt.Data, data) {
		t.Errorf("read back type %s, data equal %v", gt.Type, bytes.Equal(gt.Data, data))
	}
}

func FuzzSQDot(f *testing.F) {
	f.Add(make([]byte, 52), make([]byte, 68), uint8(1))
	f.Fuzz(func(t *testing.T, block, act []byte, which uint8) {
		typs := SQTypes()
		typ := typs[int(which)%len(typs)]
		fm := sqFormats[typ]
		bb := fm.blockBytes()
		if len(block) < bb || len(act) < 68 {
			return
		}
		row, xq := block[:bb], act[:68]
		out := make([]float32, SQBank)
		if err := tensor.Dequantize(typ, row, out); err != nil {
			t.Fatal(err)
		}
		ref := fm.dotRef(SQBank, row, xq)
		fast := fm.dot(SQBank, row, xq)
		if !(ref == fast || (math.IsNaN(float64(ref)) && math.IsNaN(float64(fast)))) {
			t.Fatalf("kernel %g, reference %g", fast, ref)
		}
	})
}

func BenchmarkSQDot(b *testing.B) {
	r := rand.New(rand.NewPCG(13, 14))
	const n = 4096
	x := randRow(r, n)
	xq := q8Activations(r, n)
	for _, typ := range []tensor.Type{SQ4_8, SQ4_16, SQ2_8} {
		f := sqFormats[typ]
		rb, _ := tensor.RowBytes(typ, n)
		row := make([]byte, rb)
		QuantizeRow(typ, x, row, nil)
		b.Run(typ.String()+"/kernel", func(b *testing.B) {
			for b.Loop() {
				f.dot(n, row, xq)
			}
		})
		b.Run(typ.String()+"/reference", func(b *testing.B) {
			for b.Loop() {
				f.dotRef(n, row, xq)
			}
		})
	}
	q4 := make([]byte, n/32*18)
	tensor.QuantizeQ4_0(x, q4)
	b.Run("Q4_0", func(b *testing.B) {
		for b.Loop() {
			tensor.DotRow(tensor.Q4_0, n, q4, xq)
		}
	})
}

// TestSQSlotRule checks, on stories260K's weights and an importance matrix
// collected from a story, that choosing the INT8 slots by magnitude gives a
// lower importance-weighted error than ranking them by |w|·sqrt(importance)
// (the reason selectSlots ignores the importance matrix).
func TestSQSlotRule(t *testing.T) {
	f := openTB(t, "stories260K.gguf")
	im := storiesImatrix(t, f)
	defer func() { sqSelectByScore = false }()
	for _, typ := range []tensor.Type{SQ4_8, SQ4_16} {
		var errs [2]float64
		for _, gt := range f.Tensors {
			cols := int(gt.Dims[0])
			qw, _ := im.Weights(gt.Name, 0, cols)
			if qw == nil || cols%SQBank != 0 {
				continue
			}
			x, _ := tensor.DequantizeTensor(gt.Tensor())
			for rule := range errs {
				sqSelectByScore = rule == 1
				data, err := quantizeRows(typ, x, cols, qw)
				if err != nil {
					t.Fatal(err)
				}
				back := make([]float32, len(x))
				tensor.Dequantize(typ, data, back)
				for i := range x {
					d := float64(x[i] - back[i])
					errs[rule] += float64(qw[i%cols]) * d * d
				}
			}
		}
		t.Logf("%s importance-weighted error: by magnitude %.4g, by |w|·sqrt(importance) %.4g", typ, errs[0], errs[1])
		if !(errs[0] < errs[1]) {
			t.Errorf("%s: magnitude rule %.4g is not below the importance rule %.4g", typ, errs[0], errs[1])
		}
	}
}
