// Package quant holds tamp's static compression: turning a model's weights
// into smaller tensor types, once, offline.
//
// This file applies one tensor type to a whole model with llama.cpp's
// per-tensor rules (norms and other 1-D tensors stay F32; the output matrix
// gets a wider type; a tensor whose rows do not divide into the type's blocks
// falls back to the nearest type that fits, where llama.cpp would refuse the
// file).
package quant

import (
	"fmt"
	"math"
	"strings"

	"tamp/gguf"
	"tamp/tensor"
)

// Options says how to quantize a model.
type Options struct {
	Type tensor.Type
	// Progress, if set, is called after each tensor.
	Progress func(done, total int, name string)
}

// TensorReport says what happened to one tensor.
type TensorReport struct {
	Name     string
	From, To tensor.Type
	Elements int
	Bytes    int64
	// Note explains a type other than the one asked for.
	Note string
	// RMSE is the root-mean-square difference between the original and the
	// quantized weights (0 when the tensor was copied).
	RMSE float64
}

// BitsPerWeight is the tensor's storage cost per element.
func (r TensorReport) BitsPerWeight() float64 {
	return float64(r.Bytes*8) / float64(max(r.Elements, 1))
}

// Report describes a quantized model.
type Report struct {
	Tensors           []TensorReport
	InBytes, OutBytes int64
	Elements          int64
	Fallbacks         int // tensors stored in another type than asked, and why is in their Note
}

// BitsPerWeight is the whole model's storage cost per element.
func (r *Report) BitsPerWeight() float64 {
	return float64(r.OutBytes*8) / float64(max(r.Elements, 1))
}

// quantizers maps each type tamp can write to its reference quantizer.
var quantizers = map[tensor.Type]func(x []float32, dst []byte){
	tensor.Q8_0: tensor.QuantizeQ8_0,
	tensor.Q4_0: tensor.QuantizeQ4_0,
}

// Writable reports whether Quantize can produce type t.
func Writable(t tensor.Type) bool {
	_, ok := quantizers[t]
	return ok || t == tensor.F32 || t == tensor.F16
}

// WritableTypes lists the types Quantize can produce, by name.
func WritableTypes() string {
	names := []string{"F32", "F16"}
	for t := range quantizers {
		names = append(names, t.String())
	}
	return strings.Join(names, ", ")
}

// Quantize returns a copy of f with its weight matrices converted to opts.Type.
// Metadata is copied; general.file_type is left as it was unless the type maps
// onto one of llama.cpp's file types.
func Quantize(f *gguf.File, opts Options) (*gguf.File, *Report, error) {
	if !Writable(opts.Type) {
		return nil, nil, fmt.Errorf("quant: cannot write type %s (writable: %s)", opts.Type, WritableTypes())
	}
	out := &gguf.File{Version: 3, Alignment: f.Alignment}
	for _, kv := range f.KV {
		out.Set(kv.Key, kv.Value)
	}
	if ft, ok := fileTypes[opts.Type]; ok {
		out.Set("general.file_type", gguf.Uint32(ft))
		out.Set("general.quantization_version", gguf.Uint32(2))
	}
	rep := &Report{}
	for i, t := range f.Tensors {
		tt := t.Tensor()
		want, note := chooseType(tt, opts.Type)
		data, r, err := convert(tt, want)
		if err != nil {
			return nil, nil, err
		}
		r.Note = note
		if err := out.AddTensor(t.Name, want, t.Dims, data); err != nil {
			return nil, nil, err
		}
		rep.Tensors = append(rep.Tensors, r)
		rep.InBytes += int64(len(t.Data))
		rep.OutBytes += r.Bytes
		rep.Elements += int64(r.Elements)
		if strings.HasPrefix(note, "fallback") {
			rep.Fallbacks++
		}
		if opts.Progress != nil {
			opts.Progress(i+1, len(f.Tensors), t.Name)
		}
	}
	return out, rep, nil
}

// fileTypes are llama.cpp's general.file_type values (enum llama_ftype).
var fileTypes = map[tensor.Type]uint32{
	tensor.F32:  0,
	tensor.F16:  1,
	tensor.Q4_0: 2,
	tensor.Q8_0: 7,
}

// chooseType applies llama.cpp's per-tensor rules for a uniform target type.
func chooseType(t *tensor.Tensor, target tensor.Type) (tensor.Type, string) {
	// 1-D tensors (norms, biases) keep their type, as in llama.cpp.
	if len(t.Dims) < 2 || !strings.HasSuffix(t.Name, ".weight") {
		return t.Type, ""
	}
	want, note := target, ""
	// llama.cpp gives the output matrix more bits: Q6_K where its rows hold
	// whole 256-blocks, else Q8_0. Of these tamp writes Q8_0 so far.
	if t.Name == "output.weight" && target != tensor.F32 && target != tensor.F16 && target != tensor.Q8_0 {
		want, note = tensor.Q8_0, "output matrix kept wider (llama.cpp's rule)"
	}
	if _, err := tensor.RowBytes(want, t.Cols()); err != nil {
		info, _ := want.Info()
		return tensor.F16, fmt.Sprintf("fallback: rows of %d do not divide into %s blocks of %d", t.Cols(), want, info.BlockSize)
	}
	return want, note
}

// convert stores t as type to, reporting the quantization error.
func convert(t *tensor.Tensor, to tensor.Type) ([]byte, TensorReport, error) {
	r := TensorReport{Name: t.Name, From: t.Type, To: to, Elements: t.Elements()}
	if to == t.Type {
		r.Bytes = int64(len(t.Data))
		return t.Data, r, nil
	}
	src, err := tensor.DequantizeTensor(t)
	if err != nil {
		return nil, r, fmt.Errorf("quant: %s: %w", t.Name, err)
	}
	rb, err := tensor.RowBytes(to, t.Cols())
	if err != nil {
		return nil, r, fmt.Errorf("quant: %s: %w", t.Name, err)
	}
	data := make([]byte, rb*t.Rows())
	cols := t.Cols()
	for row := range t.Rows() {
		x := src[row*cols : (row+1)*cols]
		dst := data[row*rb : (row+1)*rb]
		switch to {
		case tensor.F32:
			for i, v := range x {
				putU32(dst[4*i:], math.Float32bits(v))
			}
		case tensor.F16:
			for i, v := range x {
				putU16(dst[2*i:], tensor.F32ToF16(v))
			}
		default:
			quantizers[to](x, dst)
		}
	}
	back := make([]float32, len(src))
	if err := tensor.Dequantize(to, data, back); err != nil {
		return nil, r, err
	}
	var se float64
	for i, v := range src {
		d := float64(v - back[i])
		se += d * d
	}
	r.RMSE = math.Sqrt(se / float64(max(len(src), 1)))
	r.Bytes = int64(len(data))
	return data, r, nil
}

func putU16(b []byte, v uint16) { b[0], b[1] = byte(v), byte(v>>8) }
func putU32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}
