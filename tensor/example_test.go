package tensor_test

import (
	"fmt"

	"tamp/tensor"
)

func ExampleF32ToF16() {
	h := tensor.F32ToF16(0.1)
	fmt.Printf("%#04x %v\n", h, tensor.F16ToF32(h))
	// Output: 0x2e66 0.099975586
}

// Quantize a row to Q8_0 the way llama.cpp does and read it back: 1.25
// becomes 20 steps of d = fp16(7.75/127).
func ExampleQuantize() {
	x := make([]float32, 32)
	for i := range x {
		x[i] = float32(i) / 4
	}
	buf := make([]byte, 34) // one Q8_0 block
	if err := tensor.Quantize(tensor.Q8_0, x, buf); err != nil {
		panic(err)
	}
	y := make([]float32, 32)
	if err := tensor.Dequantize(tensor.Q8_0, buf, y); err != nil {
		panic(err)
	}
	fmt.Println(x[5], y[5])
	// Output: 1.25 1.2207031
}

// Multiply a 2×4 F32 matrix by a vector. Dims are innermost first: 4 columns,
// 2 rows.
func ExampleMatVec() {
	rows := []float32{1, 2, 3, 4, -1, 0, 1, 0}
	w := &tensor.Tensor{Name: "w", Type: tensor.F32, Dims: []int{4, 2}, Data: make([]byte, 4*len(rows))}
	if err := tensor.Quantize(tensor.F32, rows, w.Data); err != nil {
		panic(err)
	}
	out := make([]float32, 2)
	if err := tensor.MatVec(w, []float32{1, 1, 1, 1}, out); err != nil {
		panic(err)
	}
	fmt.Println(out)
	// Output: [10 0]
}
