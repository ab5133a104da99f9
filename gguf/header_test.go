package gguf_test

import (
	"bytes"
	"strings"
	"testing"

	"tamp/gguf"
	"tamp/tensor"
)

// TestHeaderStreamsLikeWriteTo writes a file the streaming way (Header, then
// each tensor's bytes at its offset, then the end padding) and checks it
// against WriteTo of the same contents, for alignments that leave padding
// between tensors.
func TestHeaderStreamsLikeWriteTo(t *testing.T) {
	for _, align := range []uint32{0, 64} {
		full, info := gguf.New(), gguf.New()
		for _, f := range []*gguf.File{full, info} {
			f.Set("general.architecture", gguf.String("llama"))
			if align != 0 {
				f.Set("general.alignment", gguf.Uint32(align))
				f.Alignment = uint64(align)
			}
		}
		shapes := [][]uint64{{3}, {32, 3}, {5, 2}, {64}}
		types := []tensor.Type{tensor.F32, tensor.Q8_0, tensor.F16, tensor.Q4_0}
		var datas [][]byte
		for i, dims := range shapes {
			size, err := tensor.RowBytes(types[i], int(dims[0]))
			if err != nil {
				t.Fatal(err)
			}
			if len(dims) > 1 {
				size *= int(dims[1])
			}
			data := bytes.Repeat([]byte{byte(i + 1)}, size)
			datas = append(datas, data)
			name := "t" + string(rune('a'+i))
			if err := full.AddTensor(name, types[i], dims, data); err != nil {
				t.Fatal(err)
			}
			if err := info.AddTensorInfo(name, types[i], dims); err != nil {
				t.Fatal(err)
			}
		}
		var want bytes.Buffer
		if _, err := full.WriteTo(&want); err != nil {
			t.Fatal(err)
		}
		hdr, dataSize, err := info.Header()
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, uint64(len(hdr))+dataSize)
		copy(got, hdr)
		for i, tn := range info.Tensors {
			copy(got[uint64(len(hdr))+tn.Offset:], datas[i])
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Errorf("alignment %d: streamed file (%d bytes) differs from WriteTo's (%d bytes)", align, len(got), want.Len())
		}
		if info.DataOffset != uint64(len(hdr)) {
			t.Errorf("alignment %d: DataOffset %d, header %d bytes", align, info.DataOffset, len(hdr))
		}
		// A file without its data cannot be written whole.
		_, err = info.WriteTo(&bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), `"ta"`) {
			t.Errorf("alignment %d: WriteTo of a header-only file: err = %v, want one naming the tensor", align, err)
		}
	}
}

func TestAddTensorInfoChecksShape(t *testing.T) {
	f := gguf.New()
	if err := f.AddTensorInfo("w", tensor.Q4_0, []uint64{33}); err == nil {
		t.Error("a Q4_0 row of 33 weights was accepted")
	}
	if err := f.AddTensor("w", tensor.F32, []uint64{4}, nil); err == nil {
		t.Error("AddTensor without data was accepted")
	}
}
