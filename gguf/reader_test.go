package gguf

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"tamp/tensor"
)

func TestParseSynthetic(t *testing.T) {
	f, err := Parse(validRaw().encode())
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != 3 || f.Alignment != 32 || f.DataOffset%32 != 0 || len(f.KV) != 3 || len(f.Tensors) != 2 {
		t.Fatalf("header: version %d alignment %d data offset %d, %d KVs, %d tensors", f.Version, f.Alignment, f.DataOffset, len(f.KV), len(f.Tensors))
	}
	if f.Architecture() != "llama" {
		t.Errorf("architecture %q", f.Architecture())
	}
	if v, ok := f.Int32s("test.ints"); !ok || fmt.Sprint(v) != "[1 2 -1]" {
		t.Errorf("test.ints = %v, %v", v, ok)
	}
	if v, ok := f.Strings("test.words"); !ok || fmt.Sprint(v) != "[a bc]" {
		t.Errorf("test.words = %q, %v", v, ok)
	}
	a, ok := f.Tensor("a")
	if !ok || a.Type != tensor.F32 || !bytes.Equal(a.Data, seq(1, 32)) {
		t.Errorf("tensor a: %+v", a)
	}
	b, ok := f.Tensor("b")
	if !ok || b.Type != tensor.Q8_0 || b.Offset != 32 || !bytes.Equal(b.Data, seq(100, 34)) {
		t.Errorf("tensor b: %+v", b)
	}
	if _, ok := f.Tensor("c"); ok {
		t.Error("found a tensor that is not there")
	}
}

// TestParseCorrupt feeds one broken file per check and asserts the error
// names the field at fault and says what is wrong.
func TestParseCorrupt(t *testing.T) {
	type mut func(r *rawFile)
	kv := func(i int, typ ValueType, val []byte) mut {
		return func(r *rawFile) { r.kvs[i].typ, r.kvs[i].val = uint32(typ), val }
	}
	cases := []struct {
		name  string
		mut   mut
		bytes func([]byte) []byte // applied after encoding
		field string
		msg   string
	}{
		{name: "empty", bytes: func([]byte) []byte { return nil }, field: "header.magic", msg: "truncated"},
		{name: "bad magic", mut: func(r *rawFile) { r.magic = "GGML" }, field: "header.magic", msg: "not a GGUF file"},
		{name: "version 1", mut: func(r *rawFile) { r.version = 1 }, field: "header.version", msg: "version 1 is not supported"},
		{name: "version 4", mut: func(r *rawFile) { r.version = 4 }, field: "header.version", msg: "unsupported GGUF version 4"},
		{name: "version 0", mut: func(r *rawFile) { r.version = 0 }, field: "header.version", msg: "unsupported GGUF version 0"},
		{name: "big-endian", mut: func(r *rawFile) { r.version = 3 << 24 }, field: "header.version", msg: "big-endian"},
		{name: "truncated counts", bytes: func(b []byte) []byte { return b[:12] }, field: "header.tensor_count", msg: "truncated"},
		{name: "huge tensor count", mut: func(r *rawFile) { r.tensorCount = ptr(1 << 60) }, field: "header.tensor_count", msg: "cannot fit"},
		{name: "tensor count over metadata", mut: func(r *rawFile) { r.tensorCount = ptr(10) }, field: "header.tensor_count", msg: "cannot fit"},
		{name: "huge kv count", mut: func(r *rawFile) { r.kvCount = ptr(1 << 62) }, field: "header.kv_count", msg: "cannot fit"},
		{name: "huge key length", bytes: func([]byte) []byte {
			return append(rawFile{version: 3, kvCount: ptr(1), noDataPad: true}.encode(), enc(nil).u64(1<<62).u32(0).raw(0)...)
		}, field: "kv[0].key", msg: "string length"},
		{name: "unknown value type", mut: kv(1, 13, u32v(0)), field: "kv[1].type", msg: "unknown value type 13"},
		{name: "truncated value", mut: func(r *rawFile) {
			r.tensors, r.data, r.noDataPad = nil, nil, true
			r.kvs = []rawKV{{"general.name", uint32(TypeUint32), []byte{1, 2}}}
		}, field: "kv[0].value", msg: "truncated"},
		{name: "string cut short", mut: func(r *rawFile) {
			r.tensors, r.data, r.noDataPad = nil, nil, true
			r.kvs[2].val = r.kvs[2].val[:len(r.kvs[2].val)-1]
		}, field: "kv[2].value[1]", msg: "string length 2 exceeds the 1 bytes left"},
		{name: "huge string value", mut: kv(0, TypeString, u64v(1<<40)), field: "kv[0].value", msg: "string length"},
		{name: "huge array count", mut: kv(1, TypeArray, enc(nil).arr(uint32(TypeUint8), 1<<60)), field: "kv[1].value.count", msg: "cannot fit"},
		{name: "huge nested array count", mut: kv(1, TypeArray, enc(nil).arr(uint32(TypeArray), 1).arr(uint32(TypeFloat64), 1<<59)), field: "kv[1].value[0].count", msg: "cannot fit"},
		{name: "unknown array element type", mut: kv(1, TypeArray, enc(nil).arr(99, 0)), field: "kv[1].value.elem_type", msg: "unknown array element type 99"},
		{name: "huge string in array", mut: kv(2, TypeArray, enc(nil).arr(uint32(TypeString), 2).str("a").u64(1<<50)), field: "kv[2].value[1]", msg: "string length"},
		{name: "arrays nested too deep", mut: func(r *rawFile) {
			var e enc
			for range 40 {
				e = e.arr(uint32(TypeArray), 1)
			}
			r.kvs[1].typ, r.kvs[1].val = uint32(TypeArray), e.arr(uint32(TypeUint8), 0)
		}, field: "kv[1].value" + strings.Repeat("[0]", maxArrayDepth), msg: "nested more than"},
		{name: "duplicate key", mut: func(r *rawFile) { r.kvs[2].key = "test.ints" }, field: "kv[2].key", msg: "duplicate key \"test.ints\""},
		{name: "alignment not a power of two", mut: func(r *rawFile) {
			r.kvs = append(r.kvs, rawKV{"general.alignment", uint32(TypeUint32), u32v(48)})
		}, field: "kv[3].value", msg: "not a power of two"},
		{name: "alignment zero", mut: func(r *rawFile) {
			r.kvs = append(r.kvs, rawKV{"general.alignment", uint32(TypeUint32), u32v(0)})
		}, field: "kv[3].value", msg: "not a power of two"},
		{name: "alignment of wrong type", mut: func(r *rawFile) {
			r.kvs = append(r.kvs, rawKV{"general.alignment", uint32(TypeUint64), u64v(32)})
		}, field: "kv[3].value", msg: "must be a uint32"},
		{name: "duplicate tensor name", mut: func(r *rawFile) { r.tensors[1].name = "a" }, field: "tensor_info[1].name", msg: "duplicate tensor name \"a\""},
		{name: "too many dims", mut: func(r *rawFile) { r.tensors[0].dims = []uint64{4, 2, 1, 1, 1} }, field: "tensor_info[0].n_dims", msg: "5 dimensions"},
		{name: "zero dim", mut: func(r *rawFile) { r.tensors[0].dims = []uint64{4, 0} }, field: "tensor_info[0].dims[1]", msg: "dimension 1 is zero"},
		{name: "dim product overflow", mut: func(r *rawFile) { r.tensors[0].dims = []uint64{1 << 32, 1 << 30, 4} }, field: "tensor_info[0].dims[2]", msg: "overflows"},
		{name: "unknown tensor type", mut: func(r *rawFile) { r.tensors[1].typ = 77 }, field: "tensor_info[1].type", msg: "unknown tensor type id 77"},
		{name: "unregistered tamp type", mut: func(r *rawFile) { r.tensors[1].typ = 2000 }, field: "tensor_info[1].type", msg: "tamp's own id range"},
		{name: "row not whole blocks", mut: func(r *rawFile) { r.tensors[1].dims = []uint64{33} }, field: "tensor_info[1].dims[0]", msg: "not a multiple of Q8_0's block size 32"},
		{name: "misaligned offset", mut: func(r *rawFile) { r.tensors[1].off = 40 }, field: "tensor_info[1].offset", msg: "not a multiple of the alignment 32"},
		{name: "offset beyond file", mut: func(r *rawFile) { r.tensors[1].off = 1 << 62 }, field: "tensor_info[1].offset", msg: "runs past the end"},
		{name: "truncated data", bytes: func(b []byte) []byte { return b[:len(b)-40] }, field: "tensor_info[1].offset", msg: "runs past the end"},
		{name: "overlapping tensors", mut: func(r *rawFile) { r.tensors[0].off = 32; r.tensors[1].off = 0 }, field: "tensor_info[0].offset", msg: "overlaps tensor \"b\""},
		{name: "truncated tensor info", mut: func(r *rawFile) { r.data = nil; r.noDataPad = true },
			bytes: func(b []byte) []byte { return b[:len(b)-3] }, field: "tensor_info[1].offset", msg: "truncated"},
		{name: "truncated dims", mut: func(r *rawFile) { r.data = nil; r.noDataPad = true; r.tensors = r.tensors[:1] },
			bytes: func(b []byte) []byte { return b[:len(b)-4-8-4] }, field: "tensor_info[0].dims[1]", msg: "truncated"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := validRaw()
			if c.mut != nil {
				c.mut(&r)
			}
			data := r.encode()
			if c.bytes != nil {
				data = c.bytes(data)
			}
			_, err := Parse(data)
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("Parse: want a *FormatError, got %v", err)
			}
			if fe.Field != c.field || !strings.Contains(fe.Msg, c.msg) {
				t.Errorf("got %q\nwant field %q, message containing %q", err, c.field, c.msg)
			}
			if fe.Offset < 0 || fe.Offset > int64(len(data)) {
				t.Errorf("offset %d outside the %d-byte file: %v", fe.Offset, len(data), err)
			}
			if want := fmt.Sprintf("gguf: %s at byte %d: ", fe.Field, fe.Offset); !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error %q does not start with %q", err, want)
			}
		})
	}
}

func TestErrorOffsets(t *testing.T) {
	cases := []struct {
		data []byte
		want int64
	}{
		{rawFile{version: 9}.encode(), 4},
		{rawFile{version: 3, tensorCount: ptr(1 << 60)}.encode(), 8},
		{rawFile{version: 3, kvCount: ptr(1 << 60)}.encode(), 16},
	}
	// An unknown type id in tensor_info[1]: find its bytes (type 77, then
	// offset 32) to know where the error must point.
	r := validRaw()
	r.tensors[1].typ = 77
	data := r.encode()
	cases = append(cases, struct {
		data []byte
		want int64
	}{data, int64(bytes.LastIndex(data, enc(nil).u32(77).u64(32)))})
	for _, c := range cases {
		_, err := Parse(c.data)
		var fe *FormatError
		if !errors.As(err, &fe) || fe.Offset != c.want {
			t.Errorf("got %v, want an error at byte %d", err, c.want)
		}
	}
}

// TestTruncations cuts the valid file at every length: shorter than its last
// tensor's data it must fail cleanly, longer it must parse.
func TestTruncations(t *testing.T) {
	r := validRaw()
	full := r.encode()
	f, err := Parse(full)
	if err != nil {
		t.Fatal(err)
	}
	need := int(f.DataOffset) + 32 + 34
	for n := range len(full) + 1 {
		_, err := Parse(full[:n])
		var fe *FormatError
		switch {
		case n < need && !errors.As(err, &fe):
			t.Fatalf("cut at %d of %d: want a *FormatError, got %v", n, len(full), err)
		case n >= need && err != nil:
			t.Fatalf("cut at %d (data ends at %d): %v", n, need, err)
		}
	}
}

// TestHostileCountsDoNotAllocate checks that absurd counts are refused before
// anything is allocated for them.
func TestHostileCountsDoNotAllocate(t *testing.T) {
	inputs := map[string][]byte{
		"tensor_count": rawFile{version: 3, tensorCount: ptr(1 << 60)}.encode(),
		"kv_count":     rawFile{version: 3, kvCount: ptr(1 << 60)}.encode(),
		"array":        rawFile{version: 3, kvs: []rawKV{{"x", uint32(TypeArray), enc(nil).arr(uint32(TypeUint64), 1<<58)}}}.encode(),
		"string array": rawFile{version: 3, kvs: []rawKV{{"x", uint32(TypeArray), enc(nil).arr(uint32(TypeString), 1<<58)}}}.encode(),
		"string":       rawFile{version: 3, kvs: []rawKV{{"x", uint32(TypeString), u64v(1 << 58)}}}.encode(),
	}
	for name, data := range inputs {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := Parse(data)
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Errorf("%s: hostile count accepted", name)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
			t.Errorf("%s: parsing allocated %d bytes before failing", name, grew)
		}
	}
}

func TestReadV2(t *testing.T) {
	v3 := validRaw().encode()
	r := validRaw()
	r.version = 2
	f, err := Parse(r.encode())
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != 2 {
		t.Errorf("version %d, want 2", f.Version)
	}
	var buf bytes.Buffer
	if _, err := f.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), v3) {
		t.Error("a v2 file written back is not the same file as version 3")
	}
}

// TestGapsAreRepacked: a reader accepts tensors with holes between them or
// out of order, and the writer lays them out the way llama.cpp requires.
func TestGapsAreRepacked(t *testing.T) {
	r := validRaw()
	r.tensors[0].off = 128 // "a" after "b", with a hole at [64, 128)
	r.tensors[1].off = 0
	r.data = make([]byte, 160)
	copy(r.data[128:], seq(1, 32))
	copy(r.data, seq(100, 34))
	f, err := Parse(r.encode())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := f.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), validRaw().encode()) {
		t.Error("repacked file differs from the packed original")
	}
	if f.Tensors[0].Offset != 0 || f.Tensors[1].Offset != 32 {
		t.Errorf("offsets after writing: %d, %d; want 0, 32", f.Tensors[0].Offset, f.Tensors[1].Offset)
	}
}

// TestUnpaddedEnd: a file ending right after its last tensor (or header) is
// read, and written back the same way.
func TestUnpaddedEnd(t *testing.T) {
	for _, r := range []rawFile{
		func() rawFile { r := validRaw(); r.data = r.data[:66]; return r }(),
		{version: 3, kvs: validRaw().kvs, noDataPad: true},
	} {
		data := r.encode()
		f, err := Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := f.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), data) {
			t.Errorf("%d-byte file written back as %d bytes", len(data), buf.Len())
		}
	}
}
