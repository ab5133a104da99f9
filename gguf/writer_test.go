package gguf

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"tamp/tensor"
)

// roundTrip writes f and parses the result.
func roundTrip(t *testing.T, f *File) (*File, []byte) {
	t.Helper()
	var buf bytes.Buffer
	if _, err := f.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	g, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return g, buf.Bytes()
}

// allValues has one value of every scalar type and every array kind,
// including nested arrays of mixed element types.
func allValues() []KV {
	return []KV{
		{"u8", Uint8(200)}, {"i8", Int8(-100)}, {"u16", Uint16(60000)}, {"i16", Int16(-30000)},
		{"u32", Uint32(4e9)}, {"i32", Int32(-2e9)}, {"f32", Float32(1.5)}, {"bool", Bool(true)},
		{"str", String("héllo\x00world")}, {"u64", Uint64(math.MaxUint64)}, {"i64", Int64(math.MinInt64)},
		{"f64", Float64(-0.25)}, {"empty", String("")},
		{"a.u8", ArrayOf(TypeUint8, []uint8{1, 2, 255})},
		{"a.i8", ArrayOf(TypeInt8, []int8{-1, 0, 1})},
		{"a.u16", ArrayOf(TypeUint16, []uint16{1, 65535})},
		{"a.i16", ArrayOf(TypeInt16, []int16{-32768, 7})},
		{"a.u32", Uint32Array([]uint32{0, 4e9})},
		{"a.i32", Int32Array([]int32{-5, 5})},
		{"a.f32", Float32Array([]float32{0.5, float32(math.Inf(-1))})},
		{"a.bool", ArrayOf(TypeBool, []bool{true, false})},
		{"a.str", StringArray([]string{"", "x", "yz"})},
		{"a.u64", ArrayOf(TypeUint64, []uint64{1 << 63})},
		{"a.i64", ArrayOf(TypeInt64, []int64{-1 << 63})},
		{"a.f64", ArrayOf(TypeFloat64, []float64{1e300})},
		{"a.empty", ArrayOf(TypeString, []string{})},
		{"a.nested", ArrayOf(TypeArray, []Array{
			{Elem: TypeInt32, Values: []int32{1, 2}},
			{Elem: TypeString, Values: []string{"deep"}},
			{Elem: TypeArray, Values: []Array{{Elem: TypeFloat64, Values: []float64{2.5}}, {Elem: TypeUint8, Values: []uint8{}}}},
		})},
	}
}

func TestValueRoundTrip(t *testing.T) {
	f := New()
	for _, kv := range allValues() {
		f.Set(kv.Key, kv.Value)
	}
	g, b := roundTrip(t, f)
	if !reflect.DeepEqual(g.KV, f.KV) {
		for i := range f.KV {
			if !reflect.DeepEqual(g.KV[i], f.KV[i]) {
				t.Errorf("%s: wrote %#v, read %#v", f.KV[i].Key, f.KV[i].Value, g.KV[i].Value)
			}
		}
	}
	_, b2 := roundTrip(t, g)
	if !bytes.Equal(b, b2) {
		t.Error("writing the parsed file gives different bytes")
	}
}

func TestAccessors(t *testing.T) {
	f := New()
	for _, kv := range allValues() {
		f.Set(kv.Key, kv.Value)
	}
	f.Set("a.big", ArrayOf(TypeUint64, []uint64{1, 1 << 40}))
	f.Set("a.small", ArrayOf(TypeInt64, []int64{-3, 3}))
	type res struct {
		v  any
		ok bool
	}
	cases := []struct {
		name string
		got  res
		want res
	}{
		{"Uint u8", call(f.Uint("u8")), res{uint64(200), true}},
		{"Uint i8 negative", call(f.Uint("i8")), res{uint64(0), false}},
		{"Uint u64 max", call(f.Uint("u64")), res{uint64(math.MaxUint64), true}},
		{"Uint string", call(f.Uint("str")), res{uint64(0), false}},
		{"Uint missing", call(f.Uint("nope")), res{uint64(0), false}},
		{"Int i64 min", call(f.Int("i64")), res{int64(math.MinInt64), true}},
		{"Int u64 max", call(f.Int("u64")), res{int64(0), false}},
		{"Int u32", call(f.Int("u32")), res{int64(4e9), true}},
		{"Int float", call(f.Int("f32")), res{int64(0), false}},
		{"Float f32", call(f.Float("f32")), res{1.5, true}},
		{"Float f64", call(f.Float("f64")), res{-0.25, true}},
		{"Float i16", call(f.Float("i16")), res{-30000.0, true}},
		{"Float bool", call(f.Float("bool")), res{0.0, false}},
		{"Bool", call(f.Bool("bool")), res{true, true}},
		{"Bool int", call(f.Bool("u8")), res{false, false}},
		{"String", call(f.String("str")), res{"héllo\x00world", true}},
		{"String array", call(f.String("a.str")), res{"", false}},
		{"Strings", call(f.Strings("a.str")), res{[]string{"", "x", "yz"}, true}},
		{"Strings ints", call(f.Strings("a.i32")), res{[]string(nil), false}},
		{"Float32s f32", call(f.Float32s("a.f32")), res{[]float32{0.5, float32(math.Inf(-1))}, true}},
		{"Float32s f64", call(f.Float32s("a.f64")), res{[]float32{float32(math.Inf(1))}, true}},
		{"Float32s ints", call(f.Float32s("a.i32")), res{[]float32(nil), false}},
		{"Int32s i32", call(f.Int32s("a.i32")), res{[]int32{-5, 5}, true}},
		{"Int32s u8", call(f.Int32s("a.u8")), res{[]int32{1, 2, 255}, true}},
		{"Int32s i64 small", call(f.Int32s("a.small")), res{[]int32{-3, 3}, true}},
		{"Int32s u64 too big", call(f.Int32s("a.big")), res{[]int32(nil), false}},
		{"Int32s u32 too big", call(f.Int32s("a.u32")), res{[]int32(nil), false}},
		{"Int32s floats", call(f.Int32s("a.f32")), res{[]int32(nil), false}},
		{"Int32s scalar", call(f.Int32s("i32")), res{[]int32(nil), false}},
	}
	for _, c := range cases {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

// call packs a two-result accessor call for the table above.
func call[T any](v T, ok bool) struct {
	v  any
	ok bool
} {
	return struct {
		v  any
		ok bool
	}{v, ok}
}

func TestSetDelete(t *testing.T) {
	f := New()
	f.Set("a", Uint32(1))
	f.Set("b", Uint32(2))
	f.Set("c", Uint32(3))
	f.Set("a", String("one")) // replaced in place
	f.Delete("b")
	f.Delete("missing")
	var keys []string
	for _, kv := range f.KV {
		keys = append(keys, kv.Key)
	}
	if strings.Join(keys, ",") != "a,c" {
		t.Errorf("keys %v, want [a c]", keys)
	}
	if s, _ := f.String("a"); s != "one" {
		t.Errorf("a = %q", s)
	}
	if v, ok := f.Uint("c"); !ok || v != 3 {
		t.Errorf("c = %d %v", v, ok)
	}
	if _, ok := f.Lookup("b"); ok {
		t.Error("b survived Delete")
	}
	// Editing KV directly must not leave lookups stale.
	f.KV[0].Key = "z"
	f.KV = append(f.KV, KV{"late", Bool(true)})
	if _, ok := f.Lookup("a"); ok {
		t.Error("lookup found a renamed key")
	}
	if v, ok := f.Bool("late"); !ok || !v {
		t.Error("lookup missed a key appended to KV")
	}
}

func TestAlignment(t *testing.T) {
	f := New()
	f.Set("general.alignment", Uint32(64))
	if f.Alignment != 64 {
		t.Fatalf("Alignment %d after Set", f.Alignment)
	}
	for i, n := range []int{3, 5, 1} {
		if err := f.AddTensor(string(rune('a'+i)), tensor.F32, []uint64{uint64(n)}, seq(byte(i*50), 4*n)); err != nil {
			t.Fatal(err)
		}
	}
	g, b := roundTrip(t, f)
	if g.Alignment != 64 || g.DataOffset%64 != 0 || f.DataOffset != g.DataOffset || len(b)%64 != 0 {
		t.Errorf("alignment %d, data offset %d (writer said %d), size %d", g.Alignment, g.DataOffset, f.DataOffset, len(b))
	}
	for i, tn := range g.Tensors {
		if tn.Offset != uint64(64*i) || !bytes.Equal(tn.Data, f.Tensors[i].Data) {
			t.Errorf("%s at %d, want %d", tn.Name, tn.Offset, 64*i)
		}
	}

	f.Delete("general.alignment")
	if f.Alignment != 32 {
		t.Errorf("Alignment %d after Delete, want 32", f.Alignment)
	}
	g, _ = roundTrip(t, f)
	if g.Tensors[1].Offset != 32 {
		t.Errorf("repacked at alignment 32: second tensor at %d", g.Tensors[1].Offset)
	}

	f.Alignment = 128 // without general.alignment a reader would use 32
	if _, err := f.WriteTo(&bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "general.alignment") {
		t.Errorf("Alignment without general.alignment: %v", err)
	}
}

func TestAddTensor(t *testing.T) {
	f := &File{} // the zero File works too
	if err := f.AddTensor("w", tensor.Q8_0, []uint64{64, 3}, make([]byte, 2*34*3)); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		typ  tensor.Type
		dims []uint64
		size int
		want string
	}{
		{"w", tensor.F32, []uint64{1}, 4, "duplicate"},
		{"x", tensor.F32, []uint64{2}, 4, "needs 8 bytes, got 4"},
		{"x", tensor.Q8_0, []uint64{31}, 34, "block size 32"},
		{"x", 77, []uint64{1}, 4, "unknown tensor type id 77"},
		{"x", tensor.F32, []uint64{1, 0}, 0, "zero"},
		{"x", tensor.F32, []uint64{1, 1, 1, 1, 1}, 4, "at most 4"},
		{"x", tensor.F32, []uint64{1 << 40, 1 << 40}, 0, "overflows"},
	}
	for _, c := range cases {
		err := f.AddTensor(c.name, c.typ, c.dims, make([]byte, c.size))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("AddTensor(%s, %s, %v): %v, want an error containing %q", c.name, c.typ, c.dims, err, c.want)
		}
	}
	if err := f.AddTensor("v", tensor.F16, []uint64{3}, seq(9, 6)); err != nil {
		t.Fatal(err)
	}
	if f.Tensors[1].Offset != alignUp(2*34*3, 32) {
		t.Errorf("second tensor at %d", f.Tensors[1].Offset)
	}
	g, _ := roundTrip(t, f)
	if g.Version != 3 || len(g.Tensors) != 2 {
		t.Fatalf("version %d, %d tensors", g.Version, len(g.Tensors))
	}
	v, ok := g.Tensor("v")
	if !ok || v.Type != tensor.F16 || !bytes.Equal(v.Data, seq(9, 6)) {
		t.Errorf("tensor v: %+v", v)
	}
	tt := v.Tensor()
	if tt.Name != "v" || tt.Type != tensor.F16 || !reflect.DeepEqual(tt.Dims, []int{3}) || tt.Check() != nil {
		t.Errorf("Tensor(): %+v", tt)
	}
}

// TestWriteRejects checks that a File the writer cannot encode faithfully
// is refused before any byte is written.
func TestWriteRejects(t *testing.T) {
	cases := []struct {
		name string
		edit func(f *File)
		want string
	}{
		{"value of the wrong Go type", func(f *File) { f.Set("k", Value{TypeUint32, 5}) }, "Go int"},
		{"unknown value type", func(f *File) { f.Set("k", Value{99, uint8(1)}) }, "unknown value type 99"},
		{"array of the wrong slice", func(f *File) { f.Set("k", ArrayOf(TypeInt32, []int64{1})) }, "array of int32 holds a Go []int64"},
		{"bad nested array", func(f *File) {
			f.Set("k", ArrayOf(TypeArray, []Array{{Elem: TypeString, Values: []int{1}}}))
		}, "element 0"},
		{"duplicate key", func(f *File) { f.KV = append(f.KV, f.KV[0]) }, "duplicate key"},
		{"duplicate tensor", func(f *File) { f.Tensors = append(f.Tensors, f.Tensors[0]) }, "duplicate tensor name"},
		{"nil tensor", func(f *File) { f.Tensors = append(f.Tensors, nil) }, "nil"},
		{"data of the wrong size", func(f *File) { f.Tensors[0].Data = f.Tensors[0].Data[:4] }, "needs 32 bytes, Data has 4"},
		{"bad alignment", func(f *File) { f.Set("general.alignment", Uint32(3)) }, "not a power of two"},
		{"alignment of the wrong type", func(f *File) { f.Set("general.alignment", Uint64(64)) }, "must be a uint32"},
	}
	for _, c := range cases {
		f, err := Parse(validRaw().encode())
		if err != nil {
			t.Fatal(err)
		}
		c.edit(f)
		var buf bytes.Buffer
		n, err := f.WriteTo(&buf)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", c.name, err, c.want)
		}
		if n != 0 || buf.Len() != 0 {
			t.Errorf("%s: wrote %d bytes before failing", c.name, buf.Len())
		}
	}
}

type failWriter struct{ left int }

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) > w.left {
		n := w.left
		w.left = 0
		return n, errors.New("disk full")
	}
	w.left -= len(p)
	return len(p), nil
}

func TestWriteFileFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.gguf")
	if err := os.WriteFile(path, []byte("old contents"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(validRaw().encode())
	if err != nil {
		t.Fatal(err)
	}
	f.Tensors[1].Data = f.Tensors[1].Data[:1]
	if err := WriteFile(path, f); err == nil {
		t.Fatal("WriteFile succeeded with a bad tensor")
	}
	if got, _ := os.ReadFile(path); string(got) != "old contents" {
		t.Errorf("the old file was replaced by %d bytes", len(got))
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("%d entries left in the directory, want only the old file", len(entries))
	}
	if err := WriteFile(filepath.Join(dir, "no", "such", "dir.gguf"), New()); err == nil {
		t.Error("WriteFile into a missing directory succeeded")
	}

	// A writer that fails midway reports the error and the bytes it took.
	g, _ := Parse(validRaw().encode())
	n, err := g.WriteTo(&failWriter{left: 100})
	if err == nil || !strings.Contains(err.Error(), "disk full") || n != 100 {
		t.Errorf("WriteTo a failing writer: %d, %v", n, err)
	}
}

func TestValueString(t *testing.T) {
	cases := []struct {
		v    Value
		want string
	}{
		{Uint32(7), "7"},
		{String("hi"), `"hi"`},
		{Float32(0.5), "0.5"},
		{StringArray([]string{"a", "b"}), `[2×string: "a" "b"]`},
		{Int32Array(make([]int32, 10)), "[10×int32: 0 0 0 0 0 0 0 0 …]"},
		{ArrayOf(TypeArray, []Array{{Elem: TypeBool, Values: []bool{true}}}), "[1×array: [1×bool: true]]"},
	}
	for _, c := range cases {
		if got := c.v.String(); got != c.want {
			t.Errorf("%#v: %q, want %q", c.v, got, c.want)
		}
	}
	if TypeFloat64.String() != "float64" || ValueType(40).String() != "ValueType(40)" {
		t.Error("ValueType.String")
	}
}
