package quant_test

import (
	"fmt"

	"tamp/quant"
)

// The SQ presets and what each part of a bank costs.
func ExampleSQPresets() {
	for _, p := range quant.SQPresets() {
		fmt.Println(p)
	}
	// Output:
	// SQ4_8: 64-weight banks, 8 INT8 slots + 56 INT4, 48 bytes a bank = 6 bits/weight (dense 3.5, sparse 1, mask 1, scales 0.5)
	// SQ4_16: 64-weight banks, 16 INT8 slots + 48 INT4, 52 bytes a bank = 6.5 bits/weight (dense 3, sparse 2, mask 1, scales 0.5)
	// SQ2_8: 64-weight banks, 8 INT8 slots + 56 INT2, 36 bytes a bank = 4.5 bits/weight (dense 1.75, sparse 1.25, mask 1, scales 0.5)
	// SQ2_16: 64-weight banks, 16 INT8 slots + 48 INT2, 44 bytes a bank = 5.5 bits/weight (dense 1.5, sparse 2.5, mask 1, scales 0.5)
}

// Calibration and evaluation halves of one text, cut at a line break.
func ExampleSplitText() {
	first, second := quant.SplitText([]byte("one\ntwo\nthree\nfour\n"))
	fmt.Printf("%q %q\n", first, second)
	// Output: "one\ntwo\nthree\n" "four\n"
}

// llama-quantize's file types and tamp's own types by name.
func ExampleParseTarget() {
	for _, name := range []string{"Q4_K_M", "q8_0", "SQ4_16"} {
		t, err := quant.ParseTarget(name)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(t.Name, t.Type, t.FileType)
	}
	// Output:
	// Q4_K_M Q4_K 15
	// Q8_0 Q8_0 7
	// SQ4_16 SQ4_16 -1
}
