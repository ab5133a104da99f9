package gguf

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
)

// WriteTo writes f as a GGUF version 3 file (a file read as version 2 comes
// out as version 3; the layout is the same). Metadata and tensor infos are
// written in order; tensors follow in order, each at the next multiple of the
// alignment after the previous one, with zero padding, as llama.cpp lays them
// out (llama.cpp also refuses files laid out any other way). A file written so
// and read back therefore keeps every tensor's Offset, and the bytes come out
// identical. The end of the file is padded to the alignment unless the file
// read did not do so.
//
// Everything is checked before the first byte is written: unique keys and
// tensor names, values matching their types, a valid general.alignment that
// agrees with Alignment, and tensor data of the size its type and shape need.
// On success WriteTo updates DataOffset and each Tensor.Offset to the layout
// written.
func (f *File) WriteTo(w io.Writer) (int64, error) {
	hdr, _, align, err := f.layout(false)
	if err != nil {
		return 0, err
	}
	cw := &countWriter{w: w}
	cw.write(hdr)
	for _, t := range f.Tensors {
		cw.zeros(f.DataOffset + t.Offset - uint64(cw.n))
		cw.write(t.Data)
	}
	if !f.trimTail {
		cw.zeros(alignUp(uint64(cw.n), align) - uint64(cw.n))
	}
	if cw.err != nil {
		return cw.n, fmt.Errorf("gguf: writing: %w", cw.err)
	}
	return cw.n, nil
}

// Header lays f out as WriteTo would and returns everything before the first
// tensor's data (the header and its padding) and the size of the data
// section, its end padding included. It is for writers that produce tensor
// data one tensor at a time and cannot hold it all, such as a synthesized or
// converted model streamed to disk: write the header, then each tensor's
// bytes at len(header)+Offset with zero padding between, then zeros up to
// len(header)+dataSize. The result is byte for byte what WriteTo writes.
//
// Tensors may have nil Data (added with AddTensorInfo); they are laid out
// by the size their type and shape need. Header checks everything WriteTo
// checks and, on success, sets DataOffset and each Tensor.Offset.
func (f *File) Header() (header []byte, dataSize uint64, err error) {
	header, dataSize, _, err = f.layout(true)
	if err != nil {
		return nil, 0, err
	}
	return append(header, make([]byte, f.DataOffset-uint64(len(header)))...), dataSize, nil
}

// layout validates f, assigns each tensor its offset and DataOffset, and
// encodes the header (without the padding up to DataOffset). With infoOnly, tensors without Data are laid
// out by their computed size. It returns the header, the size of the data
// section and the alignment.
func (f *File) layout(infoOnly bool) ([]byte, uint64, uint64, error) {
	align, err := f.writeAlignment()
	if err != nil {
		return nil, 0, 0, err
	}
	sizes, err := f.validate(infoOnly)
	if err != nil {
		return nil, 0, 0, err
	}
	offsets := make([]uint64, len(f.Tensors))
	var next uint64
	for i := range f.Tensors {
		offsets[i] = next
		next = alignUp(next+sizes[i], align)
	}
	hdr := f.appendHeader(nil, offsets)
	f.DataOffset = alignUp(uint64(len(hdr)), align)
	for i, t := range f.Tensors {
		t.Offset = offsets[i]
	}
	return hdr, next, align, nil
}

// WriteFile writes f to path atomically: into a temporary file in the same
// directory, synced to disk, then renamed over path. A failure leaves path as
// it was, never half written. Replacing the file f was opened from is safe on
// unix, where the mapping keeps the old contents.
func WriteFile(path string, f *File) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	mode := os.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := f.WriteTo(tmp); err != nil {
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	// Make the rename itself durable; not every system can sync a directory.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// writeAlignment is the alignment general.alignment sets (32 without it),
// which must agree with f.Alignment unless that is unset.
func (f *File) writeAlignment() (uint64, error) {
	align := uint64(defaultAlignment)
	if v, ok := f.Lookup(alignmentKey); ok {
		a, err := checkAlignment(v)
		if err != nil {
			return 0, fmt.Errorf("gguf: %w", err)
		}
		align = a
	}
	if f.Alignment != 0 && f.Alignment != align {
		return 0, fmt.Errorf("gguf: Alignment is %d but general.alignment says %d; change the alignment with Set(%q, Uint32(n))", f.Alignment, align, alignmentKey)
	}
	return align, nil
}

// validate checks f before anything is written and returns each tensor's
// data size. With infoOnly, a tensor may have nil Data.
func (f *File) validate(infoOnly bool) ([]uint64, error) {
	keys := make(map[string]bool, len(f.KV))
	for _, kv := range f.KV {
		if keys[kv.Key] {
			return nil, fmt.Errorf("gguf: duplicate key %q", kv.Key)
		}
		keys[kv.Key] = true
		if err := checkValue(kv.Value.Type, kv.Value.V, 0); err != nil {
			return nil, fmt.Errorf("gguf: key %q: %w", kv.Key, err)
		}
	}
	names := make(map[string]bool, len(f.Tensors))
	sizes := make([]uint64, len(f.Tensors))
	for i, t := range f.Tensors {
		if t == nil {
			return nil, fmt.Errorf("gguf: Tensors[%d] is nil", i)
		}
		if names[t.Name] {
			return nil, fmt.Errorf("gguf: duplicate tensor name %q", t.Name)
		}
		names[t.Name] = true
		size, serr := tensorSize(t.Type, t.Dims)
		if serr != nil {
			return nil, fmt.Errorf("gguf: tensor %q: %s", t.Name, serr.msg)
		}
		sizes[i] = size
		if infoOnly && t.Data == nil {
			continue
		}
		if uint64(len(t.Data)) != size {
			return nil, fmt.Errorf("gguf: tensor %q: %s %v needs %d bytes, Data has %d", t.Name, t.Type, t.Dims, size, len(t.Data))
		}
	}
	return sizes, nil
}

// checkValue verifies that v's Go type is the one t calls for.
func checkValue(t ValueType, v any, depth int) error {
	ok := false
	switch t {
	case TypeUint8:
		_, ok = v.(uint8)
	case TypeInt8:
		_, ok = v.(int8)
	case TypeUint16:
		_, ok = v.(uint16)
	case TypeInt16:
		_, ok = v.(int16)
	case TypeUint32:
		_, ok = v.(uint32)
	case TypeInt32:
		_, ok = v.(int32)
	case TypeFloat32:
		_, ok = v.(float32)
	case TypeBool:
		_, ok = v.(bool)
	case TypeString:
		_, ok = v.(string)
	case TypeUint64:
		_, ok = v.(uint64)
	case TypeInt64:
		_, ok = v.(int64)
	case TypeFloat64:
		_, ok = v.(float64)
	case TypeArray:
		a, isArray := v.(Array)
		if !isArray {
			break
		}
		return checkArray(a, depth+1)
	default:
		return fmt.Errorf("unknown value type %d", uint32(t))
	}
	if !ok {
		return fmt.Errorf("type %s holds a Go %T", t, v)
	}
	return nil
}

func checkArray(a Array, depth int) error {
	if depth > maxArrayDepth {
		return fmt.Errorf("arrays nested more than %d deep", maxArrayDepth)
	}
	if !a.Elem.valid() {
		return fmt.Errorf("unknown array element type %d", uint32(a.Elem))
	}
	if a.Values == nil {
		return nil
	}
	ok := false
	switch a.Elem {
	case TypeUint8:
		_, ok = a.Values.([]uint8)
	case TypeInt8:
		_, ok = a.Values.([]int8)
	case TypeUint16:
		_, ok = a.Values.([]uint16)
	case TypeInt16:
		_, ok = a.Values.([]int16)
	case TypeUint32:
		_, ok = a.Values.([]uint32)
	case TypeInt32:
		_, ok = a.Values.([]int32)
	case TypeFloat32:
		_, ok = a.Values.([]float32)
	case TypeBool:
		_, ok = a.Values.([]bool)
	case TypeString:
		_, ok = a.Values.([]string)
	case TypeUint64:
		_, ok = a.Values.([]uint64)
	case TypeInt64:
		_, ok = a.Values.([]int64)
	case TypeFloat64:
		_, ok = a.Values.([]float64)
	case TypeArray:
		var inner []Array
		if inner, ok = a.Values.([]Array); ok {
			for i, x := range inner {
				if err := checkArray(x, depth+1); err != nil {
					return fmt.Errorf("element %d: %w", i, err)
				}
			}
		}
	}
	if !ok {
		return fmt.Errorf("array of %s holds a Go %T", a.Elem, a.Values)
	}
	return nil
}

// appendHeader encodes everything before the data section's padding, with
// the given tensor offsets. The values have been checked by validate.
func (f *File) appendHeader(b []byte, offsets []uint64) []byte {
	le := binary.LittleEndian
	b = le.AppendUint32(b, magic)
	b = le.AppendUint32(b, 3)
	b = le.AppendUint64(b, uint64(len(f.Tensors)))
	b = le.AppendUint64(b, uint64(len(f.KV)))
	for _, kv := range f.KV {
		b = appendString(b, kv.Key)
		b = le.AppendUint32(b, uint32(kv.Value.Type))
		b = appendValue(b, kv.Value.V)
	}
	for i, t := range f.Tensors {
		b = appendString(b, t.Name)
		b = le.AppendUint32(b, uint32(len(t.Dims)))
		for _, d := range t.Dims {
			b = le.AppendUint64(b, d)
		}
		b = le.AppendUint32(b, uint32(t.Type))
		b = le.AppendUint64(b, offsets[i])
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

func appendValue(b []byte, v any) []byte {
	le := binary.LittleEndian
	switch x := v.(type) {
	case uint8:
		return append(b, x)
	case int8:
		return append(b, byte(x))
	case bool:
		if x {
			return append(b, 1)
		}
		return append(b, 0)
	case uint16:
		return le.AppendUint16(b, x)
	case int16:
		return le.AppendUint16(b, uint16(x))
	case uint32:
		return le.AppendUint32(b, x)
	case int32:
		return le.AppendUint32(b, uint32(x))
	case float32:
		return le.AppendUint32(b, math.Float32bits(x))
	case uint64:
		return le.AppendUint64(b, x)
	case int64:
		return le.AppendUint64(b, uint64(x))
	case float64:
		return le.AppendUint64(b, math.Float64bits(x))
	case string:
		return appendString(b, x)
	case Array:
		b = le.AppendUint32(b, uint32(x.Elem))
		b = le.AppendUint64(b, uint64(x.Len()))
		switch vs := x.Values.(type) {
		case []uint8:
			return append(b, vs...)
		case []int8:
			return appendEach(b, vs, func(b []byte, e int8) []byte { return append(b, byte(e)) })
		case []bool:
			return appendEach(b, vs, func(b []byte, e bool) []byte { return appendValue(b, e) })
		case []uint16:
			return appendEach(b, vs, le.AppendUint16)
		case []int16:
			return appendEach(b, vs, func(b []byte, e int16) []byte { return le.AppendUint16(b, uint16(e)) })
		case []uint32:
			return appendEach(b, vs, le.AppendUint32)
		case []int32:
			return appendEach(b, vs, func(b []byte, e int32) []byte { return le.AppendUint32(b, uint32(e)) })
		case []float32:
			return appendEach(b, vs, func(b []byte, e float32) []byte { return le.AppendUint32(b, math.Float32bits(e)) })
		case []uint64:
			return appendEach(b, vs, le.AppendUint64)
		case []int64:
			return appendEach(b, vs, func(b []byte, e int64) []byte { return le.AppendUint64(b, uint64(e)) })
		case []float64:
			return appendEach(b, vs, func(b []byte, e float64) []byte { return le.AppendUint64(b, math.Float64bits(e)) })
		case []string:
			return appendEach(b, vs, appendString)
		case []Array:
			return appendEach(b, vs, func(b []byte, e Array) []byte { return appendValue(b, e) })
		}
		return b // nil Values: an empty array
	}
	panic(fmt.Sprintf("gguf: unchecked value of Go type %T", v)) // validate rules this out
}

func appendEach[T any](b []byte, s []T, enc func([]byte, T) []byte) []byte {
	for _, e := range s {
		b = enc(b, e)
	}
	return b
}

// countWriter counts bytes and keeps the first error, so the write sequence
// reads straight through.
type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

var zeroBlock [4096]byte

func (c *countWriter) write(p []byte) {
	if c.err != nil || len(p) == 0 {
		return
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
}

func (c *countWriter) zeros(n uint64) {
	for n > 0 && c.err == nil {
		k := min(n, uint64(len(zeroBlock)))
		c.write(zeroBlock[:k])
		n -= k
	}
}
