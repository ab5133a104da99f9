package quant

import (
	"bytes"
	"strings"
	"testing"

	"tamp/gguf"
	"tamp/internal/testdata"
	"tamp/model"
	"tamp/tensor"
)

func openTB(tb testing.TB, name string) *gguf.File {
	tb.Helper()
	f, err := gguf.Open(testdata.Path(tb, name))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	return f
}

// TestMatchesLlamaCppMixed checks tamp's Q8_0 and Q4_0 output for
// stories260K against the files llama.cpp's reference quantizers wrote:
// every tensor both store in the same type must be byte-identical, and the
// types must agree except where the reference file kept ffn_down in F16
// (which tamp also does, as its fallback).
func TestMatchesLlamaCppMixed(t *testing.T) {
	src := openTB(t, "stories260K.gguf")
	for _, tc := range []struct {
		typ       tensor.Type
		file      string
		fallbacks int
	}{
		// The five ffn_down tensors (rows of 172) fall back to F16.
		{tensor.Q8_0, "stories260K-Q8_0-mixed.gguf", 5},
		// And output.weight: llama.cpp's Q6_K for the output matrix does
		// not fit rows of 64 and falls back to Q8_0.
		{tensor.Q4_0, "stories260K-Q4_0-mixed.gguf", 6},
	} {
		t.Run(tc.typ.String(), func(t *testing.T) {
			ref := openTB(t, tc.file)
			out, rep, err := Quantize(src, Options{Type: tc.typ})
			if err != nil {
				t.Fatal(err)
			}
			same := 0
			for _, rt := range ref.Tensors {
				ot, ok := out.Tensor(rt.Name)
				if !ok {
					t.Errorf("%s: missing from tamp's output", rt.Name)
					continue
				}
				if ot.Type != rt.Type {
					t.Errorf("%s: tamp wrote %s, llama.cpp's file has %s", rt.Name, ot.Type, rt.Type)
					continue
				}
				if !bytes.Equal(ot.Data, rt.Data) {
					t.Errorf("%s (%s): bytes differ", rt.Name, rt.Type)
					continue
				}
				same++
			}
			if same != len(ref.Tensors) || len(out.Tensors) != len(ref.Tensors) {
				t.Errorf("%d of %d tensors identical; tamp wrote %d tensors", same, len(ref.Tensors), len(out.Tensors))
			}
			if rep.Fallbacks != tc.fallbacks {
				t.Errorf("report counts %d fallbacks, want %d", rep.Fallbacks, tc.fallbacks)
			}
		})
	}
}

// TestRequantize quantizes an already quantized file: it works, says it
// loses accuracy, and the result runs.
func TestRequantize(t *testing.T) {
	src := openTB(t, "stories260K-Q8_0-mixed.gguf")
	out, rep, err := Quantize(src, Options{Type: tensor.Q4_0})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "already quantized") {
		t.Errorf("warnings %q", rep.Warnings)
	}
	tt, _ := out.Tensor("blk.0.attn_q.weight")
	if tt.Type != tensor.Q4_0 {
		t.Errorf("attn_q is %s", tt.Type)
	}
	if _, err := model.Load(out); err != nil {
		t.Fatal(err)
	}
}
