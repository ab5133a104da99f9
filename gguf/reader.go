package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"os"
	"sort"
	"strconv"

	"tamp/tensor"
)

const (
	magic            = 0x46554747 // "GGUF" read as a little-endian uint32
	maxDims          = 4          // GGML_MAX_DIMS
	defaultAlignment = 32
	alignmentKey     = "general.alignment"
	// maxArrayDepth bounds nested arrays so a hostile file cannot recurse
	// deeply; real files do not nest at all.
	maxArrayDepth = 16

	minKVBytes     = 8 + 4 + 1     // key length, value type, smallest value
	minTensorBytes = 8 + 4 + 4 + 8 // name length, n_dims, type, offset
)

// Open memory-maps the GGUF file at path read-only and parses it. Tensor.Data
// slices alias the mapping, so they stay valid only until Close; on systems
// without mmap support the file is read into memory instead. The file must not
// be truncated while it is open (on unix that faults the process, as it would
// llama.cpp); replacing it with WriteFile is safe.
func Open(path string) (*File, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("gguf: %s is not a regular file", path)
	}
	data, unmap, err := mapFile(fd, st.Size())
	if err != nil {
		return nil, fmt.Errorf("gguf: %s: %w", path, err)
	}
	f, err := Parse(data)
	if err != nil {
		if unmap != nil {
			unmap(data)
		}
		var fe *FormatError
		if errors.As(err, &fe) {
			fe.Path = path
		}
		return nil, err
	}
	f.mapping, f.unmap = data, unmap
	return f, nil
}

// Parse reads a GGUF v2 or v3 file held in data. Tensor.Data slices alias
// data, which must not change while the File is in use; metadata is copied.
// Every problem is reported as a *FormatError.
func Parse(data []byte) (*File, error) {
	d := &decoder{data: data}
	f := &File{}
	if err := d.header(f); err != nil {
		return nil, err
	}
	return f, nil
}

// decoder reads little-endian GGUF fields from data, tracking its position so
// errors can say where they happened.
type decoder struct {
	data []byte
	off  int
}

func (d *decoder) remaining() int { return len(d.data) - d.off }

// take returns the next n bytes.
func (d *decoder) take(n int, field string) ([]byte, error) {
	if n > d.remaining() {
		return nil, formatErr(field, d.off, "truncated: need %d bytes, file has %d left", n, d.remaining())
	}
	b := d.data[d.off : d.off+n : d.off+n]
	d.off += n
	return b, nil
}

func (d *decoder) u32(field string) (uint32, error) {
	b, err := d.take(4, field)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (d *decoder) u64(field string) (uint64, error) {
	b, err := d.take(8, field)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// str reads a GGUF string (uint64 length, then bytes) and copies it, so it
// survives the mapping.
func (d *decoder) str(field string) (string, error) {
	start := d.off
	n, err := d.u64(field)
	if err != nil {
		return "", err
	}
	if n > uint64(d.remaining()) {
		return "", formatErr(field, start, "string length %d exceeds the %d bytes left in the file", n, d.remaining())
	}
	s := string(d.data[d.off : d.off+int(n)])
	d.off += int(n)
	return s, nil
}

// count reads a uint64 element count and checks that count elements of at
// least minSize bytes each fit in what is left, before anyone allocates them.
func (d *decoder) count(field, what string, minSize int) (int, error) {
	start := d.off
	n, err := d.u64(field)
	if err != nil {
		return 0, err
	}
	if left := d.remaining(); n > uint64(left/minSize) {
		return 0, formatErr(field, start, "%d %s cannot fit in the %d bytes left in the file (each takes at least %d)", n, what, left, minSize)
	}
	return int(n), nil
}

func (d *decoder) header(f *File) error {
	b, err := d.take(4, "header.magic")
	if err != nil {
		return err
	}
	if m := binary.LittleEndian.Uint32(b); m != magic {
		return formatErr("header.magic", 0, "not a GGUF file: magic is %q (0x%08x), want \"GGUF\"", b, m)
	}
	v, err := d.u32("header.version")
	if err != nil {
		return err
	}
	switch {
	case v == 2 || v == 3:
	case v == 1:
		return formatErr("header.version", 4, "GGUF version 1 is not supported (only 2 and 3); convert the model again with a current llama.cpp")
	case v != 0 && bits.ReverseBytes32(v) <= 3:
		return formatErr("header.version", 4, "version 0x%08x looks byte-swapped (%d): this is a big-endian GGUF file, and only little-endian files are supported", v, bits.ReverseBytes32(v))
	default:
		return formatErr("header.version", 4, "unsupported GGUF version %d (only 2 and 3)", v)
	}
	f.Version = v

	// Both counts are checked against the file size before anything is
	// allocated for them; the tensor count again once the KVs are read.
	tensorOff := d.off
	nt, err := d.count("header.tensor_count", "tensor infos", minTensorBytes)
	if err != nil {
		return err
	}
	nkv, err := d.count("header.kv_count", "key/value pairs", minKVBytes)
	if err != nil {
		return err
	}

	f.KV = make([]KV, 0, nkv)
	f.kvIndex = make(map[string]int, nkv)
	for i := range nkv {
		if err := d.kv(f, i); err != nil {
			return err
		}
	}
	if f.Alignment == 0 {
		f.Alignment = defaultAlignment
	}
	if left := d.remaining(); nt > left/minTensorBytes {
		return formatErr("header.tensor_count", tensorOff, "%d tensor infos cannot fit in the %d bytes left after the metadata", nt, left)
	}

	f.Tensors = make([]*Tensor, 0, nt)
	f.tensorIndex = make(map[string]int, nt)
	infos := make([]tensorInfo, nt)
	for i := range nt {
		if err := d.tensorInfo(f, i, &infos[i]); err != nil {
			return err
		}
	}
	headerEnd := uint64(d.off)
	f.DataOffset = alignUp(headerEnd, f.Alignment)
	return f.placeTensors(d.data, infos, headerEnd)
}

func (d *decoder) kv(f *File, i int) error {
	p := "kv[" + strconv.Itoa(i) + "]"
	keyOff := d.off
	key, err := d.str(p + ".key")
	if err != nil {
		return err
	}
	if j, dup := f.kvIndex[key]; dup {
		return formatErr(p+".key", keyOff, "duplicate key %q (first at kv[%d])", key, j)
	}
	typeOff := d.off
	t, err := d.u32(p + ".type")
	if err != nil {
		return err
	}
	if !ValueType(t).valid() {
		return formatErr(p+".type", typeOff, "unknown value type %d for key %q", t, key)
	}
	valOff := d.off
	v, err := d.value(ValueType(t), p+".value", 0)
	if err != nil {
		return annotate(err, " (key %q)", key)
	}
	if key == alignmentKey {
		a, err := checkAlignment(Value{ValueType(t), v})
		if err != nil {
			return formatErr(p+".value", valOff, "%v", err)
		}
		f.Alignment = a
	}
	f.kvIndex[key] = len(f.KV)
	f.KV = append(f.KV, KV{Key: key, Value: Value{ValueType(t), v}})
	return nil
}

// value reads one value of type t (already checked valid).
func (d *decoder) value(t ValueType, field string, depth int) (any, error) {
	switch t {
	case TypeString:
		return d.str(field)
	case TypeArray:
		return d.array(field, depth+1)
	}
	b, err := d.take(t.fixedSize(), field)
	if err != nil {
		return nil, err
	}
	switch t {
	case TypeUint8:
		return b[0], nil
	case TypeInt8:
		return int8(b[0]), nil
	case TypeBool:
		return b[0] != 0, nil
	case TypeUint16:
		return binary.LittleEndian.Uint16(b), nil
	case TypeInt16:
		return int16(binary.LittleEndian.Uint16(b)), nil
	case TypeUint32:
		return binary.LittleEndian.Uint32(b), nil
	case TypeInt32:
		return int32(binary.LittleEndian.Uint32(b)), nil
	case TypeFloat32:
		return math.Float32frombits(binary.LittleEndian.Uint32(b)), nil
	case TypeUint64:
		return binary.LittleEndian.Uint64(b), nil
	case TypeInt64:
		return int64(binary.LittleEndian.Uint64(b)), nil
	default: // TypeFloat64
		return math.Float64frombits(binary.LittleEndian.Uint64(b)), nil
	}
}

func (d *decoder) array(field string, depth int) (Array, error) {
	if depth > maxArrayDepth {
		return Array{}, formatErr(field, d.off, "arrays nested more than %d deep", maxArrayDepth)
	}
	elemOff := d.off
	et, err := d.u32(field + ".elem_type")
	if err != nil {
		return Array{}, err
	}
	elem := ValueType(et)
	if !elem.valid() {
		return Array{}, formatErr(field+".elem_type", elemOff, "unknown array element type %d", et)
	}
	n, err := d.count(field+".count", elem.String()+" elements", elem.minSize())
	if err != nil {
		return Array{}, err
	}
	a := Array{Elem: elem}
	switch elem {
	case TypeString:
		v := make([]string, n)
		for i := range v {
			if v[i], err = d.str(""); err != nil {
				return Array{}, refield(err, field+"["+strconv.Itoa(i)+"]")
			}
		}
		a.Values = v
		return a, nil
	case TypeArray:
		v := make([]Array, n)
		for i := range v {
			if v[i], err = d.array(field+"["+strconv.Itoa(i)+"]", depth+1); err != nil {
				return Array{}, err
			}
		}
		a.Values = v
		return a, nil
	}
	// Fixed-size elements: count already guaranteed they are all there.
	b, _ := d.take(n*elem.fixedSize(), field)
	le := binary.LittleEndian
	switch elem {
	case TypeUint8:
		a.Values = append([]uint8{}, b...)
	case TypeInt8:
		v := make([]int8, n)
		for i := range v {
			v[i] = int8(b[i])
		}
		a.Values = v
	case TypeBool:
		v := make([]bool, n)
		for i := range v {
			v[i] = b[i] != 0
		}
		a.Values = v
	case TypeUint16:
		v := make([]uint16, n)
		for i := range v {
			v[i] = le.Uint16(b[2*i:])
		}
		a.Values = v
	case TypeInt16:
		v := make([]int16, n)
		for i := range v {
			v[i] = int16(le.Uint16(b[2*i:]))
		}
		a.Values = v
	case TypeUint32:
		v := make([]uint32, n)
		for i := range v {
			v[i] = le.Uint32(b[4*i:])
		}
		a.Values = v
	case TypeInt32:
		v := make([]int32, n)
		for i := range v {
			v[i] = int32(le.Uint32(b[4*i:]))
		}
		a.Values = v
	case TypeFloat32:
		v := make([]float32, n)
		for i := range v {
			v[i] = math.Float32frombits(le.Uint32(b[4*i:]))
		}
		a.Values = v
	case TypeUint64:
		v := make([]uint64, n)
		for i := range v {
			v[i] = le.Uint64(b[8*i:])
		}
		a.Values = v
	case TypeInt64:
		v := make([]int64, n)
		for i := range v {
			v[i] = int64(le.Uint64(b[8*i:]))
		}
		a.Values = v
	case TypeFloat64:
		v := make([]float64, n)
		for i := range v {
			v[i] = math.Float64frombits(le.Uint64(b[8*i:]))
		}
		a.Values = v
	}
	return a, nil
}

// checkAlignment validates general.alignment, which llama.cpp requires to be
// a uint32 power of two.
func checkAlignment(v Value) (uint64, error) {
	a, ok := v.V.(uint32)
	if v.Type != TypeUint32 || !ok {
		return 0, fmt.Errorf("%s must be a uint32, got %s", alignmentKey, v.Type)
	}
	if a == 0 || a&(a-1) != 0 {
		return 0, fmt.Errorf("%s is %d, not a power of two", alignmentKey, a)
	}
	return uint64(a), nil
}

// tensorInfo keeps where a tensor's fields sit, for errors found later.
type tensorInfo struct {
	field     string
	offsetPos int
	size      uint64
}

func (d *decoder) tensorInfo(f *File, i int, ti *tensorInfo) error {
	p := "tensor_info[" + strconv.Itoa(i) + "]"
	ti.field = p
	nameOff := d.off
	name, err := d.str(p + ".name")
	if err != nil {
		return err
	}
	if j, dup := f.tensorIndex[name]; dup {
		return formatErr(p+".name", nameOff, "duplicate tensor name %q (first at tensor_info[%d])", name, j)
	}
	ndOff := d.off
	nd, err := d.u32(p + ".n_dims")
	if err != nil {
		return err
	}
	if nd > maxDims {
		return formatErr(p+".n_dims", ndOff, "tensor %q has %d dimensions, at most %d are allowed", name, nd, maxDims)
	}
	dimsOff := d.off
	dims := make([]uint64, nd)
	for j := range dims {
		if dims[j], err = d.u64(""); err != nil {
			return refield(err, p+".dims["+strconv.Itoa(j)+"]")
		}
	}
	typeOff := d.off
	typ, err := d.u32(p + ".type")
	if err != nil {
		return err
	}
	ti.offsetPos = d.off
	off, err := d.u64(p + ".offset")
	if err != nil {
		return err
	}
	size, serr := tensorSize(tensor.Type(typ), dims)
	if serr != nil {
		field, pos := p+".type", typeOff
		if serr.dim >= 0 {
			field, pos = p+".dims["+strconv.Itoa(serr.dim)+"]", dimsOff+8*serr.dim
		}
		return formatErr(field, pos, "tensor %q: %s", name, serr.msg)
	}
	ti.size = size
	f.tensorIndex[name] = len(f.Tensors)
	f.Tensors = append(f.Tensors, &Tensor{Name: name, Dims: dims, Type: tensor.Type(typ), Offset: off})
	return nil
}

// placeTensors checks every tensor's offset against the alignment, the file
// and the other tensors, then points Data into the file.
func (f *File) placeTensors(data []byte, infos []tensorInfo, headerEnd uint64) error {
	fileLen := uint64(len(data))
	end := headerEnd // end of the last byte anything uses
	for i, t := range f.Tensors {
		ti := &infos[i]
		field := ti.field + ".offset"
		if t.Offset%f.Alignment != 0 {
			return formatErr(field, ti.offsetPos, "tensor %q: offset %d is not a multiple of the alignment %d", t.Name, t.Offset, f.Alignment)
		}
		var avail uint64
		if f.DataOffset <= fileLen {
			avail = fileLen - f.DataOffset
		}
		if t.Offset > avail || ti.size > avail-t.Offset {
			return formatErr(field, ti.offsetPos, "tensor %q: data at bytes [%d, %d) of the data section (starting at byte %d) runs past the end of the file (%d bytes); is the file truncated?",
				t.Name, t.Offset, satAdd(t.Offset, ti.size), f.DataOffset, fileLen)
		}
		start := f.DataOffset + t.Offset
		t.Data = data[start : start+ti.size : start+ti.size]
		end = max(end, start+ti.size)
	}

	// Overlaps: sorted by offset, each tensor must end before the next starts.
	order := make([]int, len(f.Tensors))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return f.Tensors[order[a]].Offset < f.Tensors[order[b]].Offset })
	for k := 1; k < len(order); k++ {
		a, b := f.Tensors[order[k-1]], f.Tensors[order[k]]
		if a.Offset+infos[order[k-1]].size > b.Offset {
			bi := &infos[order[k]]
			return formatErr(bi.field+".offset", bi.offsetPos, "tensor %q at data offset %d overlaps tensor %q at [%d, %d)",
				b.Name, b.Offset, a.Name, a.Offset, a.Offset+infos[order[k-1]].size)
		}
	}

	// Writers pad the end of the file to the alignment (llama.cpp) or stop
	// right after the last byte (some vocabulary-only files); remember which,
	// so that writing the file back reproduces it.
	f.trimTail = fileLen < alignUp(end, f.Alignment)
	return nil
}

type sizeError struct {
	dim int // the offending dimension, -1 for the type
	msg string
}

// tensorSize is the stored size of a tensor of type typ and shape dims, with
// every multiplication checked for overflow.
func tensorSize(typ tensor.Type, dims []uint64) (uint64, *sizeError) {
	info, ok := typ.Info()
	if !ok {
		if typ >= tensor.TampTypeBase && typ < tensor.TampTypeBase+1024 {
			return 0, &sizeError{-1, fmt.Sprintf("unknown tensor type id %d: in tamp's own id range (≥%d) but not registered in this build", uint32(typ), uint32(tensor.TampTypeBase))}
		}
		return 0, &sizeError{-1, fmt.Sprintf("unknown tensor type id %d: not a ggml type this build knows (tamp's own type ids are ≥%d)", uint32(typ), uint32(tensor.TampTypeBase))}
	}
	if len(dims) > maxDims {
		return 0, &sizeError{-1, fmt.Sprintf("%d dimensions, at most %d are allowed", len(dims), maxDims)}
	}
	elems := uint64(1)
	for j, n := range dims {
		if n == 0 {
			return 0, &sizeError{j, fmt.Sprintf("dimension %d is zero", j)}
		}
		hi, lo := bits.Mul64(elems, n)
		if hi != 0 || lo > math.MaxInt64 {
			return 0, &sizeError{j, fmt.Sprintf("shape %v: element count overflows", dims)}
		}
		elems = lo
	}
	bs := uint64(info.BlockSize)
	if len(dims) == 0 {
		if bs != 1 {
			return 0, &sizeError{-1, fmt.Sprintf("a tensor without dimensions holds one element, not a block of %d %s elements", bs, info.Name)}
		}
	} else if dims[0]%bs != 0 {
		return 0, &sizeError{0, fmt.Sprintf("row length %d is not a multiple of %s's block size %d", dims[0], info.Name, bs)}
	}
	hi, size := bits.Mul64(elems/bs, uint64(info.BlockBytes))
	if hi != 0 || size > math.MaxInt64 {
		return 0, &sizeError{len(dims) - 1, fmt.Sprintf("shape %v of %s: byte size overflows", dims, info.Name)}
	}
	return size, nil
}

func alignUp(x, a uint64) uint64 { return (x + a - 1) &^ (a - 1) }

// satAdd adds without wrapping, for messages about absurd offsets.
func satAdd(a, b uint64) uint64 {
	if s, carry := bits.Add64(a, b, 0); carry == 0 {
		return s
	}
	return math.MaxUint64
}
