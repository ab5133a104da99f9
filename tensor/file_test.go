package tensor_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"tamp/gguf"
	"tamp/internal/testdata"
	"tamp/tensor"
)

// The mixed files were written by llama.cpp's reference quantizers from the
// F32 stories260K.gguf (see the shared data's PROVENANCE-gguf.md).

func openGGUF(t *testing.T, name string) *gguf.File {
	t.Helper()
	f, err := gguf.Open(testdata.Path(t, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// f32Tensor returns the float32 values of the F32 model's tensor called name.
func f32Tensor(t *testing.T, f *gguf.File, name string) []float32 {
	t.Helper()
	gt, ok := f.Tensor(name)
	if !ok {
		t.Fatalf("F32 model has no tensor %q", name)
	}
	if gt.Type != tensor.F32 {
		t.Fatalf("tensor %q of the F32 model is %s", name, gt.Type)
	}
	x, err := tensor.DequantizeTensor(gt.Tensor())
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// TestQuantizeMatchesLlamaCpp quantizes every tensor of the F32 model into
// the type the mixed files store it as and demands the same bytes.
func TestQuantizeMatchesLlamaCpp(t *testing.T) {
	ref := openGGUF(t, "stories260K.gguf")
	for _, file := range []string{"stories260K-Q8_0-mixed.gguf", "stories260K-Q4_0-mixed.gguf"} {
		t.Run(file, func(t *testing.T) {
			f := openGGUF(t, file)
			counts := map[tensor.Type]int{}
			for _, gt := range f.Tensors {
				x := f32Tensor(t, ref, gt.Name)
				got := make([]byte, len(gt.Data))
				if err := tensor.Quantize(gt.Type, x, got); err != nil {
					t.Fatalf("%s: %v", gt.Name, err)
				}
				ti, _ := gt.Type.Info()
				for i := range got {
					if got[i] != gt.Data[i] {
						blk := i / ti.BlockBytes
						t.Errorf("%s (%s): block %d differs at byte %d: got % x, want % x", gt.Name, gt.Type, blk, i%ti.BlockBytes,
							got[blk*ti.BlockBytes:(blk+1)*ti.BlockBytes], gt.Data[blk*ti.BlockBytes:(blk+1)*ti.BlockBytes])
						break
					}
				}
				counts[gt.Type]++
			}
			t.Logf("tensors checked by type: %v", counts)
			for _, typ := range []tensor.Type{tensor.Q8_0, tensor.F16, tensor.F32} {
				if counts[typ] == 0 {
					t.Errorf("no %s tensors found: the file is not what this test expects", typ)
				}
			}
			if file == "stories260K-Q4_0-mixed.gguf" && counts[tensor.Q4_0] == 0 {
				t.Error("no Q4_0 tensors found")
			}
		})
	}
}

// TestDequantizeMixedFiles checks the stored blocks against the F32 weights
// they were made from, within each format's quantization error.
func TestDequantizeMixedFiles(t *testing.T) {
	ref := openGGUF(t, "stories260K.gguf")
	for _, file := range []string{"stories260K-Q8_0-mixed.gguf", "stories260K-Q4_0-mixed.gguf"} {
		f := openGGUF(t, file)
		for _, gt := range f.Tensors {
			x := f32Tensor(t, ref, gt.Name)
			y, err := tensor.DequantizeTensor(gt.Tensor())
			if err != nil {
				t.Fatalf("%s %s: %v", file, gt.Name, err)
			}
			ti, _ := gt.Type.Info()
			bs := ti.BlockSize
			if bs == 1 {
				bs = len(x) // float types: bound per element below
			}
			for b := 0; b < len(x); b += bs {
				xb := x[b : b+bs]
				var amax float64
				for _, v := range xb {
					amax = math.Max(amax, math.Abs(float64(v)))
				}
				for i, v := range xb {
					var bound float64
					switch gt.Type {
					case tensor.F32:
						bound = 0
					case tensor.F16:
						// Relative 2^-11, or half the subnormal spacing.
						bound = math.Max(math.Abs(float64(v))*0x1p-11, 0x1p-25)
					case tensor.Q8_0:
						bound = amax/127/2 + amax*0x1p-10
					case tensor.Q4_0:
						bound = amax/8 + amax*0x1p-10 // full step on the side opposite the extreme
					default:
						t.Fatalf("%s: unexpected type %s", gt.Name, gt.Type)
					}
					if e := math.Abs(float64(v) - float64(y[b+i])); e > bound {
						t.Fatalf("%s %s (%s) element %d: %g -> %g, error %g > %g", file, gt.Name, gt.Type, b+i, v, y[b+i], e, bound)
					}
				}
			}
		}
	}
}

// TestMatVecRealWeights runs MatVec over every matrix of the mixed files and
// compares it with the F32 model's product: the difference must be explained
// by the weights' and activations' quantization.
func TestMatVecRealWeights(t *testing.T) {
	ref := openGGUF(t, "stories260K.gguf")
	r := rand.New(rand.NewPCG(20, 21))
	for _, file := range []string{"stories260K-Q8_0-mixed.gguf", "stories260K-Q4_0-mixed.gguf"} {
		f := openGGUF(t, file)
		for _, gt := range f.Tensors {
			w := gt.Tensor()
			if len(w.Dims) != 2 {
				continue
			}
			wq, err := tensor.DequantizeTensor(w)
			if err != nil {
				t.Fatal(err)
			}
			wf := f32Tensor(t, ref, gt.Name)
			cols, rows := w.Cols(), w.Rows()
			x := make([]float32, cols)
			for i := range x {
				x[i] = float32(r.NormFloat64())
			}
			out := make([]float32, rows)
			if err := tensor.MatVec(w, x, out); err != nil {
				t.Fatalf("%s: %v", gt.Name, err)
			}
			// Activation error bound per element for this weight type.
			xd := make([]float32, cols)
			if err := tensor.Dequantize(tensor.VecDotType(w.Type), tensor.ConvertActivation(w.Type, x, nil), xd); err != nil {
				t.Fatal(err)
			}
			for j := 0; j < rows; j++ {
				var exact, bound float64
				for i := 0; i < cols; i++ {
					wqi, wfi := float64(wq[j*cols+i]), float64(wf[j*cols+i])
					exact += wfi * float64(x[i])
					bound += math.Abs(wqi-wfi)*math.Abs(float64(x[i])) + math.Abs(wqi)*math.Abs(float64(x[i]-xd[i]))
				}
				bound = bound*(1+1e-4) + 1e-5
				if d := math.Abs(float64(out[j]) - exact); d > bound {
					t.Fatalf("%s %s row %d: MatVec %g, F32 product %g, diff %g > %g", file, gt.Name, j, out[j], exact, d, bound)
				}
			}
		}
	}
}
