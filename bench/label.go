package bench

import (
	"tamp/gguf"
	"tamp/quant"
	"tamp/tensor"
)

// fileTypes names llama.cpp's general.file_type values (enum llama_ftype).
var fileTypes = map[uint64]string{
	0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
	10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M",
	16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 32: "BF16",
}

// TypeName names a model file's weight type for a results table: the
// target tamp quantized (or synthesized) it to, else llama.cpp's
// general.file_type, else the type holding the most bytes.
func TypeName(f *gguf.File) string {
	if s, ok := f.String(quant.KeyTarget); ok && s != "" {
		return s
	}
	if ft, ok := f.Uint("general.file_type"); ok {
		if s, ok := fileTypes[ft]; ok {
			return s
		}
	}
	bytes := map[tensor.Type]int{}
	best, most := tensor.Type(0), -1
	for _, t := range f.Tensors {
		bytes[t.Type] += len(t.Data)
		if bytes[t.Type] > most {
			best, most = t.Type, bytes[t.Type]
		}
	}
	if most < 0 {
		return "?"
	}
	return best.String()
}
