package tensor

import (
	"math"
	"strings"
	"testing"
)

// Two tamp types for the registration tests: one with a kernel, one without.
const (
	testTypeI8   = TampTypeBase + 1000
	testTypeBare = TampTypeBase + 1001
)

func init() {
	RegisterType(testTypeI8, TypeInfo{Name: "TEST_I8", BlockSize: 4, BlockBytes: 4})
	RegisterType(testTypeBare, TypeInfo{Name: "TEST_BARE", BlockSize: 4, BlockBytes: 1})
	// TEST_I8 stores int8 values; dots run against F32 activations.
	RegisterKernel(testTypeI8, Kernel{
		Dequantize: func(src []byte, dst []float32) {
			for i := range dst {
				dst[i] = float32(int8(src[i]))
			}
		},
		VecDotType: F32,
		Dot: func(n int, row, xq []byte) float32 {
			var s float64
			for i := 0; i < n; i++ {
				s += float64(int8(row[i])) * float64(f32(xq[4*i:]))
			}
			return float32(s)
		},
	})
}

func TestRegisteredKernel(t *testing.T) {
	if !Supported(testTypeI8) || VecDotType(testTypeI8) != F32 {
		t.Fatalf("registered type: Supported=%v VecDotType=%s", Supported(testTypeI8), VecDotType(testTypeI8))
	}
	w := &Tensor{Name: "i8", Type: testTypeI8, Dims: []int{4, 2}, Data: []byte{1, 2, 3, 4, 0xff, 0xfe, 0, 5}}
	got, err := DequantizeTensor(w)
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{1, 2, 3, 4, -1, -2, 0, 5}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("dequantized %v, want %v", got, want)
		}
	}
	out := make([]float32, 2)
	if err := MatVec(w, []float32{1, 10, 100, 1000}, out); err != nil {
		t.Fatal(err)
	}
	if out[0] != 4321 || out[1] != 4979 {
		t.Errorf("MatVec = %v, want [4321 4979]", out)
	}

	if Supported(testTypeBare) {
		t.Error("type without a kernel reported supported")
	}
	err = Dequantize(testTypeBare, make([]byte, 1), make([]float32, 4))
	if err == nil || !strings.Contains(err.Error(), "TEST_BARE") {
		t.Errorf("kernel-less tamp type: %v", err)
	}
	err = MatVec(&Tensor{Name: "bare", Type: testTypeBare, Dims: []int{4, 1}, Data: []byte{0}}, make([]float32, 4), make([]float32, 1))
	if err == nil || !strings.Contains(err.Error(), "TEST_BARE") {
		t.Errorf("MatVec on kernel-less tamp type: %v", err)
	}
}

func TestRegisterKernelPanics(t *testing.T) {
	ok := Kernel{
		Dequantize: func([]byte, []float32) {},
		VecDotType: F32,
		Dot:        func(int, []byte, []byte) float32 { return float32(math.NaN()) },
	}
	noDot := ok
	noDot.Dot = nil
	badVec := ok
	badVec.VecDotType = Q4_0
	tests := []struct {
		name string
		t    Type
		k    Kernel
		want string
	}{
		{"standard type", Q4_0, ok, "only tamp's own types"},
		{"unregistered", TampTypeBase + 1002, ok, "not registered"},
		{"twice", testTypeI8, ok, "registered twice"},
		{"missing func", testTypeBare, noDot, "missing"},
		{"bad activation type", testTypeBare, badVec, "not an activation type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if msg := mustPanic(t, func() { RegisterKernel(tc.t, tc.k) }); !strings.Contains(msg, tc.want) {
				t.Errorf("panic %q does not mention %q", msg, tc.want)
			}
		})
	}
	if Supported(testTypeBare) {
		t.Error("a rejected registration was kept")
	}
}
