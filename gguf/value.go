package gguf

import (
	"fmt"
	"math"
	"strings"
)

// ValueType is the type id of a metadata value, as stored in GGUF files.
type ValueType uint32

// GGUF's metadata value types.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

var valueTypeNames = [...]string{
	TypeUint8: "uint8", TypeInt8: "int8", TypeUint16: "uint16", TypeInt16: "int16",
	TypeUint32: "uint32", TypeInt32: "int32", TypeFloat32: "float32", TypeBool: "bool",
	TypeString: "string", TypeArray: "array", TypeUint64: "uint64", TypeInt64: "int64",
	TypeFloat64: "float64",
}

// String returns the type's GGUF name, such as "uint32", or "ValueType(N)" for
// an unknown id.
func (t ValueType) String() string {
	if t.valid() {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("ValueType(%d)", uint32(t))
}

func (t ValueType) valid() bool { return t <= TypeFloat64 }

// fixedSize is the encoded size of a scalar of type t, 0 for strings, arrays
// and unknown types.
func (t ValueType) fixedSize() int {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

// minSize is the fewest bytes one value of type t can occupy; it bounds counts
// read from a file before anything is allocated for them.
func (t ValueType) minSize() int {
	switch t {
	case TypeString:
		return 8 // the length
	case TypeArray:
		return 12 // element type and count
	}
	return t.fixedSize()
}

// Value is one metadata value. V holds uint8, int8, uint16, int16, uint32,
// int32, float32, bool, string, uint64, int64, float64 or Array, matching Type.
type Value struct {
	Type ValueType
	V    any
}

// Array is an array value. Values is a typed slice matching Elem ([]uint8,
// []int8, []uint16, []int16, []uint32, []int32, []float32, []bool, []string,
// []uint64, []int64, []float64), or []Array when Elem is TypeArray. A nil
// Values is an empty array.
type Array struct {
	Elem   ValueType
	Values any
}

// Len is the number of elements, 0 if Values does not match Elem.
func (a Array) Len() int {
	switch v := a.Values.(type) {
	case []uint8:
		return len(v)
	case []int8:
		return len(v)
	case []uint16:
		return len(v)
	case []int16:
		return len(v)
	case []uint32:
		return len(v)
	case []int32:
		return len(v)
	case []float32:
		return len(v)
	case []bool:
		return len(v)
	case []string:
		return len(v)
	case []uint64:
		return len(v)
	case []int64:
		return len(v)
	case []float64:
		return len(v)
	case []Array:
		return len(v)
	}
	return 0
}

// KV is one metadata key and its value.
type KV struct {
	Key   string
	Value Value
}

// String makes a string value.
func String(s string) Value { return Value{TypeString, s} }

// Uint8 makes a uint8 value.
func Uint8(v uint8) Value { return Value{TypeUint8, v} }

// Int8 makes an int8 value.
func Int8(v int8) Value { return Value{TypeInt8, v} }

// Uint16 makes a uint16 value.
func Uint16(v uint16) Value { return Value{TypeUint16, v} }

// Int16 makes an int16 value.
func Int16(v int16) Value { return Value{TypeInt16, v} }

// Uint32 makes a uint32 value.
func Uint32(v uint32) Value { return Value{TypeUint32, v} }

// Int32 makes an int32 value.
func Int32(v int32) Value { return Value{TypeInt32, v} }

// Uint64 makes a uint64 value.
func Uint64(v uint64) Value { return Value{TypeUint64, v} }

// Int64 makes an int64 value.
func Int64(v int64) Value { return Value{TypeInt64, v} }

// Float32 makes a float32 value.
func Float32(v float32) Value { return Value{TypeFloat32, v} }

// Float64 makes a float64 value.
func Float64(v float64) Value { return Value{TypeFloat64, v} }

// Bool makes a bool value.
func Bool(v bool) Value { return Value{TypeBool, v} }

// StringArray makes an array of strings. The slice is not copied.
func StringArray(v []string) Value { return ArrayOf(TypeString, v) }

// Float32Array makes an array of float32. The slice is not copied.
func Float32Array(v []float32) Value { return ArrayOf(TypeFloat32, v) }

// Int32Array makes an array of int32. The slice is not copied.
func Int32Array(v []int32) Value { return ArrayOf(TypeInt32, v) }

// Uint32Array makes an array of uint32. The slice is not copied.
func Uint32Array(v []uint32) Value { return ArrayOf(TypeUint32, v) }

// ArrayOf makes an array value of elem-typed values, which must be the slice
// type Array documents for elem; WriteTo reports a mismatch. The slice is not
// copied.
func ArrayOf(elem ValueType, values any) Value {
	return Value{TypeArray, Array{Elem: elem, Values: values}}
}

// String formats the value for people: strings quoted, long arrays cut short.
func (v Value) String() string {
	var b strings.Builder
	formatValue(&b, v.V)
	return b.String()
}

func formatValue(b *strings.Builder, v any) {
	switch x := v.(type) {
	case string:
		const maxLen = 80
		if len(x) > maxLen {
			fmt.Fprintf(b, "%q…", x[:maxLen])
		} else {
			fmt.Fprintf(b, "%q", x)
		}
	case Array:
		const show = 8
		n := x.Len()
		fmt.Fprintf(b, "[%d×%s:", n, x.Elem)
		for i := range min(n, show) {
			b.WriteByte(' ')
			formatValue(b, index(x.Values, i))
		}
		if n > show {
			b.WriteString(" …")
		}
		b.WriteByte(']')
	default:
		fmt.Fprint(b, x)
	}
}

// index returns element i of a typed slice as any.
func index(values any, i int) any {
	switch v := values.(type) {
	case []uint8:
		return v[i]
	case []int8:
		return v[i]
	case []uint16:
		return v[i]
	case []int16:
		return v[i]
	case []uint32:
		return v[i]
	case []int32:
		return v[i]
	case []float32:
		return v[i]
	case []bool:
		return v[i]
	case []string:
		return v[i]
	case []uint64:
		return v[i]
	case []int64:
		return v[i]
	case []float64:
		return v[i]
	case []Array:
		return v[i]
	}
	return nil
}

// asInt widens any integer value. neg reports a negative signed value, big a
// uint64 above math.MaxInt64; ok is false for non-integers.
func asInt(v any) (i int64, u uint64, neg, ok bool) {
	switch x := v.(type) {
	case uint8:
		return int64(x), uint64(x), false, true
	case uint16:
		return int64(x), uint64(x), false, true
	case uint32:
		return int64(x), uint64(x), false, true
	case uint64:
		return int64(x), x, false, true
	case int8:
		return int64(x), uint64(x), x < 0, true
	case int16:
		return int64(x), uint64(x), x < 0, true
	case int32:
		return int64(x), uint64(x), x < 0, true
	case int64:
		return x, uint64(x), x < 0, true
	}
	return 0, 0, false, false
}

func toUint(v any) (uint64, bool) {
	_, u, neg, ok := asInt(v)
	if !ok || neg {
		return 0, false
	}
	return u, true
}

func toInt(v any) (int64, bool) {
	i, u, neg, ok := asInt(v)
	if !ok || (!neg && u > math.MaxInt64) {
		return 0, false
	}
	return i, true
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	}
	i, u, neg, ok := asInt(v)
	if !ok {
		return 0, false
	}
	if neg {
		return float64(i), true
	}
	return float64(u), true
}
