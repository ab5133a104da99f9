// Package gguf reads and writes GGUF, the model file format of llama.cpp.
//
// A GGUF file holds a header, typed key/value metadata, a table of tensor
// infos (name, shape, element type, offset) and an aligned data section with
// the tensors' bytes. Open memory-maps a file and never copies tensor data:
// each Tensor.Data slices the mapping. Every field read from a file is checked
// against the file's size before it is used or allocated for, so a truncated
// or hostile file yields a *FormatError naming the field and its byte offset,
// never a panic or a huge allocation.
//
// Versions 2 and 3 are read (they share one layout; version 1 and big-endian
// files are refused). Writing always produces version 3 in llama.cpp's layout:
// metadata and tensor infos in order, then each tensor's data at the next
// aligned offset with zero padding. A file written by llama.cpp or gguf-py and
// read by this package is written back byte for byte.
package gguf

import (
	"fmt"
	"math"

	"tamp/tensor"
)

// Tensor is one tensor of a GGUF file.
type Tensor struct {
	Name string
	// Dims lists the sizes innermost first, as stored: Dims[0] is the row
	// length.
	Dims []uint64
	Type tensor.Type
	// Offset is where the data starts, relative to the data section.
	Offset uint64
	// Data holds the tensor's bytes. For opened files it aliases the
	// read-only mapping: do not modify it, and do not use it after Close.
	Data []byte
}

// Tensor converts t to tamp's tensor.Tensor, sharing Data.
func (t *Tensor) Tensor() *tensor.Tensor {
	dims := make([]int, len(t.Dims))
	for i, d := range t.Dims {
		dims[i] = int(d)
	}
	return &tensor.Tensor{Name: t.Name, Type: t.Type, Dims: dims, Data: t.Data}
}

// File is a GGUF file's contents: metadata and tensors. The zero File is an
// empty in-memory file ready for Set and AddTensor. The methods that change a
// File (Set, Delete, AddTensor, WriteTo, Close) must not run concurrently with
// anything else on it; the read-only methods may run concurrently.
type File struct {
	// Version is the version read from the file (2 or 3). WriteTo always
	// writes version 3, which has the same layout.
	Version uint32
	// KV is the metadata in file order. Keys are unique.
	KV []KV
	// Tensors are in file order. Names are unique.
	Tensors []*Tensor
	// Alignment of the data section and of every tensor in it: the value
	// of general.alignment, or 32 without it. Change it with Set.
	Alignment uint64
	// DataOffset is the absolute offset of the data section: where it was
	// read from, or where WriteTo last put it (0 before that for files
	// built in memory).
	DataOffset uint64

	kvIndex     map[string]int // key → index in KV; verified on use
	tensorIndex map[string]int // name → index in Tensors; verified on use
	trimTail    bool           // the file read did not pad its end to the alignment
	mapping     []byte
	unmap       func([]byte) error
}

// New returns an empty in-memory file, to be filled with Set and AddTensor.
func New() *File {
	return &File{Version: 3, Alignment: defaultAlignment}
}

// Close releases the memory mapping of an opened file. Tensor.Data of its
// tensors is set to nil, as the memory behind it is gone. Close is a no-op for
// parsed or in-memory files and when called again.
func (f *File) Close() error {
	if f.unmap == nil {
		return nil
	}
	for _, t := range f.Tensors {
		t.Data = nil
	}
	err := f.unmap(f.mapping)
	f.mapping, f.unmap = nil, nil
	if err != nil {
		return fmt.Errorf("gguf: unmapping: %w", err)
	}
	return nil
}

// Lookup returns the value of key.
func (f *File) Lookup(key string) (Value, bool) {
	if i := f.kvPos(key); i >= 0 {
		return f.KV[i].Value, true
	}
	return Value{}, false
}

// kvPos finds key through the index, falling back to a scan when callers have
// edited f.KV directly. It never writes to the index, so lookups can run
// concurrently.
func (f *File) kvPos(key string) int {
	if i, ok := f.kvIndex[key]; ok && i < len(f.KV) && f.KV[i].Key == key {
		return i
	}
	for i := range f.KV {
		if f.KV[i].Key == key {
			return i
		}
	}
	return -1
}

// String returns the value of a string key.
func (f *File) String(key string) (string, bool) {
	v, _ := f.Lookup(key)
	s, ok := v.V.(string)
	return s, ok
}

// Uint returns the value of an integer key of any type, if it is not negative.
func (f *File) Uint(key string) (uint64, bool) {
	v, _ := f.Lookup(key)
	return toUint(v.V)
}

// Int returns the value of an integer key of any type, if it fits in int64.
func (f *File) Int(key string) (int64, bool) {
	v, _ := f.Lookup(key)
	return toInt(v.V)
}

// Float returns the value of a float or integer key.
func (f *File) Float(key string) (float64, bool) {
	v, _ := f.Lookup(key)
	return toFloat(v.V)
}

// Bool returns the value of a bool key.
func (f *File) Bool(key string) (bool, bool) {
	v, _ := f.Lookup(key)
	b, ok := v.V.(bool)
	return b, ok
}

// Strings returns the value of a string-array key. The slice is shared with
// the File.
func (f *File) Strings(key string) ([]string, bool) {
	v, _ := f.Lookup(key)
	a, _ := v.V.(Array)
	s, ok := a.Values.([]string)
	if ok || (a.Elem == TypeString && a.Values == nil && v.Type == TypeArray) {
		return s, true
	}
	return nil, false
}

// Float32s returns the value of a float32 or float64 array key as float32s.
// A float32 array's slice is shared with the File.
func (f *File) Float32s(key string) ([]float32, bool) {
	v, _ := f.Lookup(key)
	a, _ := v.V.(Array)
	switch x := a.Values.(type) {
	case []float32:
		return x, true
	case []float64:
		out := make([]float32, len(x))
		for i, e := range x {
			out[i] = float32(e)
		}
		return out, true
	}
	if v.Type == TypeArray && a.Values == nil && (a.Elem == TypeFloat32 || a.Elem == TypeFloat64) {
		return nil, true
	}
	return nil, false
}

// Int32s returns the value of an integer array key as int32s, if every
// element fits. An int32 array's slice is shared with the File.
func (f *File) Int32s(key string) ([]int32, bool) {
	v, _ := f.Lookup(key)
	a, _ := v.V.(Array)
	if x, ok := a.Values.([]int32); ok {
		return x, true
	}
	if v.Type != TypeArray || a.Elem == TypeArray || a.Elem.fixedSize() == 0 || a.Elem == TypeBool ||
		a.Elem == TypeFloat32 || a.Elem == TypeFloat64 {
		return nil, false
	}
	n := a.Len()
	out := make([]int32, n)
	for i := range n {
		x, ok := toInt(index(a.Values, i))
		if !ok || x < math.MinInt32 || x > math.MaxInt32 {
			return nil, false
		}
		out[i] = int32(x)
	}
	return out, true
}

// Architecture returns general.architecture, such as "llama", or "".
func (f *File) Architecture() string {
	s, _ := f.String("general.architecture")
	return s
}

// Set replaces the value of key where it stands, or appends it. Setting
// general.alignment to a valid value (a uint32 power of two) also sets
// Alignment; an invalid one makes WriteTo fail.
func (f *File) Set(key string, v Value) {
	if i := f.kvPos(key); i >= 0 {
		f.KV[i].Value = v
	} else {
		f.KV = append(f.KV, KV{Key: key, Value: v})
	}
	f.reindexKV()
	if key == alignmentKey {
		if a, err := checkAlignment(v); err == nil {
			f.Alignment = a
		}
	}
}

// Delete removes key, keeping the order of the others. Deleting
// general.alignment restores the default alignment of 32.
func (f *File) Delete(key string) {
	i := f.kvPos(key)
	if i < 0 {
		return
	}
	f.KV = append(f.KV[:i], f.KV[i+1:]...)
	f.reindexKV()
	if key == alignmentKey {
		f.Alignment = defaultAlignment
	}
}

func (f *File) reindexKV() {
	f.kvIndex = make(map[string]int, len(f.KV))
	for i, kv := range f.KV {
		if _, dup := f.kvIndex[kv.Key]; !dup {
			f.kvIndex[kv.Key] = i
		}
	}
}

// Tensor returns the tensor called name.
func (f *File) Tensor(name string) (*Tensor, bool) {
	if i, ok := f.tensorIndex[name]; ok && i < len(f.Tensors) && f.Tensors[i] != nil && f.Tensors[i].Name == name {
		return f.Tensors[i], true
	}
	for _, t := range f.Tensors {
		if t != nil && t.Name == name {
			return t, true
		}
	}
	return nil, false
}

// AddTensor appends a tensor after the existing ones, at the next aligned
// offset. data must hold exactly the bytes that typ and dims call for; it is
// not copied.
func (f *File) AddTensor(name string, typ tensor.Type, dims []uint64, data []byte) error {
	return f.addTensor(name, typ, dims, data, false)
}

// AddTensorInfo adds a tensor without its data, for files streamed to disk
// with Header: the data is written by the caller. WriteTo refuses a file
// holding such a tensor.
func (f *File) AddTensorInfo(name string, typ tensor.Type, dims []uint64) error {
	return f.addTensor(name, typ, dims, nil, true)
}

func (f *File) addTensor(name string, typ tensor.Type, dims []uint64, data []byte, info bool) error {
	if _, dup := f.Tensor(name); dup {
		return fmt.Errorf("gguf: AddTensor: duplicate tensor name %q", name)
	}
	if len(dims) > maxDims {
		return fmt.Errorf("gguf: AddTensor %q: %d dimensions, at most %d are allowed", name, len(dims), maxDims)
	}
	size, serr := tensorSize(typ, dims)
	if serr != nil {
		return fmt.Errorf("gguf: AddTensor %q: %s", name, serr.msg)
	}
	if data != nil && uint64(len(data)) != size {
		return fmt.Errorf("gguf: AddTensor %q: %s %v needs %d bytes, got %d", name, typ, dims, size, len(data))
	}
	if data == nil && size != 0 && !info {
		return fmt.Errorf("gguf: AddTensor %q: %s %v needs %d bytes, got none", name, typ, dims, size)
	}
	align := f.Alignment
	if align == 0 {
		align = defaultAlignment
	}
	var off uint64
	if n := len(f.Tensors); n > 0 {
		last := f.Tensors[n-1]
		lastSize, _ := tensorSize(last.Type, last.Dims)
		off = alignUp(last.Offset+lastSize, align)
	}
	if f.tensorIndex == nil {
		f.tensorIndex = make(map[string]int)
	}
	f.tensorIndex[name] = len(f.Tensors)
	f.Tensors = append(f.Tensors, &Tensor{Name: name, Dims: append([]uint64(nil), dims...), Type: typ, Offset: off, Data: data})
	return nil
}
