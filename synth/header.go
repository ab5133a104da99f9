package synth

import (
	"encoding/binary"
	"fmt"
	"math"

	"tamp/gguf"
	"tamp/tensor"
)

// A streaming GGUF writer. gguf.File.WriteTo needs every tensor's bytes in
// memory; a synthesized model is generated one tensor at a time, so this
// file lays the header out itself, with the rules gguf/writer.go follows
// (version 3, metadata then tensor infos in order, data section and every
// tensor at the next multiple of the alignment, zero padding, the end of the
// file padded too). TestHeaderMatchesGGUFWriter checks that a file written
// here is byte for byte what gguf.WriteTo writes for the same contents.
//
// A helper in package gguf that encodes the header for given tensor infos
// (and returns their offsets) would make this file unnecessary.

// alignment is GGUF's default data alignment (general.alignment unset).
const alignment = 32

// tensorInfo is one tensor's entry in the header.
type tensorInfo struct {
	name   string
	dims   []uint64
	typ    tensor.Type
	size   uint64 // stored bytes
	offset uint64 // from the start of the data section
}

// layoutTensors assigns each tensor its aligned offset and returns the size
// of the data section, padding at the end included.
func layoutTensors(ts []tensorInfo) uint64 {
	var next uint64
	for i := range ts {
		ts[i].offset = next
		next = alignUp(next+ts[i].size, alignment)
	}
	return next
}

func alignUp(n, a uint64) uint64 { return (n + a - 1) / a * a }

// encodeHeader encodes everything up to the data section, its padding
// included.
func encodeHeader(kvs []gguf.KV, ts []tensorInfo) ([]byte, error) {
	le := binary.LittleEndian
	b := []byte("GGUF")
	b = le.AppendUint32(b, 3)
	b = le.AppendUint64(b, uint64(len(ts)))
	b = le.AppendUint64(b, uint64(len(kvs)))
	for _, kv := range kvs {
		b = appendString(b, kv.Key)
		b = le.AppendUint32(b, uint32(kv.Value.Type))
		var err error
		if b, err = appendValue(b, kv.Value); err != nil {
			return nil, fmt.Errorf("synth: metadata %s: %w", kv.Key, err)
		}
	}
	for _, t := range ts {
		b = appendString(b, t.name)
		b = le.AppendUint32(b, uint32(len(t.dims)))
		for _, d := range t.dims {
			b = le.AppendUint64(b, d)
		}
		b = le.AppendUint32(b, uint32(t.typ))
		b = le.AppendUint64(b, t.offset)
	}
	return append(b, make([]byte, alignUp(uint64(len(b)), alignment)-uint64(len(b)))...), nil
}

func appendString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

// appendValue encodes the value types synthesized files use.
func appendValue(b []byte, v gguf.Value) ([]byte, error) {
	le := binary.LittleEndian
	switch x := v.V.(type) {
	case string:
		if v.Type == gguf.TypeString {
			return appendString(b, x), nil
		}
	case uint32:
		if v.Type == gguf.TypeUint32 {
			return le.AppendUint32(b, x), nil
		}
	case uint64:
		if v.Type == gguf.TypeUint64 {
			return le.AppendUint64(b, x), nil
		}
	case float32:
		if v.Type == gguf.TypeFloat32 {
			return le.AppendUint32(b, math.Float32bits(x)), nil
		}
	case bool:
		if v.Type == gguf.TypeBool {
			if x {
				return append(b, 1), nil
			}
			return append(b, 0), nil
		}
	case gguf.Array:
		if v.Type != gguf.TypeArray {
			break
		}
		b = le.AppendUint32(b, uint32(x.Elem))
		b = le.AppendUint64(b, uint64(x.Len()))
		switch vs := x.Values.(type) {
		case []string:
			if x.Elem == gguf.TypeString {
				for _, s := range vs {
					b = appendString(b, s)
				}
				return b, nil
			}
		case []float32:
			if x.Elem == gguf.TypeFloat32 {
				for _, f := range vs {
					b = le.AppendUint32(b, math.Float32bits(f))
				}
				return b, nil
			}
		case []int32:
			if x.Elem == gguf.TypeInt32 {
				for _, n := range vs {
					b = le.AppendUint32(b, uint32(n))
				}
				return b, nil
			}
		}
		return nil, fmt.Errorf("unsupported array of %s holding %T", x.Elem, x.Values)
	}
	return nil, fmt.Errorf("unsupported value of type %s holding %T", v.Type, v.V)
}
