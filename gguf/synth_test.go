package gguf

import (
	"encoding/binary"
	"math"
)

// This file hand-encodes small GGUF files byte by byte, independently of the
// package's writer, so tests can build valid files and precisely broken ones.

type rawKV struct {
	key string
	typ uint32
	val []byte // the encoded value
}

type rawTensor struct {
	name string
	dims []uint64
	typ  uint32
	off  uint64
}

// rawFile describes a GGUF file; encode lays it out with padding to align.
type rawFile struct {
	magic       string
	version     uint32
	tensorCount *uint64 // overrides len(tensors)
	kvCount     *uint64 // overrides len(kvs)
	kvs         []rawKV
	tensors     []rawTensor
	align       int
	data        []byte // the data section, written after the header padding
	noDataPad   bool   // stop right after the header when there is no data
}

type enc []byte

func (e enc) u32(v uint32) enc              { return binary.LittleEndian.AppendUint32(e, v) }
func (e enc) u64(v uint64) enc              { return binary.LittleEndian.AppendUint64(e, v) }
func (e enc) str(s string) enc              { return append(e.u64(uint64(len(s))), s...) }
func (e enc) f32(v float32) enc             { return e.u32(math.Float32bits(v)) }
func (e enc) raw(b ...byte) enc             { return append(e, b...) }
func (e enc) arr(elem uint32, n uint64) enc { return e.u32(elem).u64(n) }

func u32v(v uint32) []byte { return enc(nil).u32(v) }
func u64v(v uint64) []byte { return enc(nil).u64(v) }
func strv(s string) []byte { return enc(nil).str(s) }
func ptr(v uint64) *uint64 { return &v }

func (r rawFile) encode() []byte {
	var e enc
	m := r.magic
	if m == "" {
		m = "GGUF"
	}
	e = append(e, m...)
	e = e.u32(r.version)
	nt, nkv := uint64(len(r.tensors)), uint64(len(r.kvs))
	if r.tensorCount != nil {
		nt = *r.tensorCount
	}
	if r.kvCount != nil {
		nkv = *r.kvCount
	}
	e = e.u64(nt).u64(nkv)
	for _, kv := range r.kvs {
		e = e.str(kv.key).u32(kv.typ).raw(kv.val...)
	}
	for _, t := range r.tensors {
		e = e.str(t.name).u32(uint32(len(t.dims)))
		for _, d := range t.dims {
			e = e.u64(d)
		}
		e = e.u32(t.typ).u64(t.off)
	}
	if r.noDataPad && len(r.data) == 0 {
		return e
	}
	align := r.align
	if align == 0 {
		align = 32
	}
	for len(e)%align != 0 {
		e = append(e, 0)
	}
	return append(e, r.data...)
}

// seq returns n bytes counting up from start, so tensors' data differ.
func seq(start byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

// validRaw is a small valid file: three KVs of different kinds, an F32 matrix
// and a Q8_0 row, the last padded to the alignment.
func validRaw() rawFile {
	data := append(seq(1, 32), seq(100, 34)...)
	data = append(data, make([]byte, 30)...)
	return rawFile{
		version: 3,
		kvs: []rawKV{
			{"general.architecture", uint32(TypeString), strv("llama")},
			{"test.ints", uint32(TypeArray), enc(nil).arr(uint32(TypeInt32), 3).u32(1).u32(2).u32(0xffffffff)},
			{"test.words", uint32(TypeArray), enc(nil).arr(uint32(TypeString), 2).str("a").str("bc")},
		},
		tensors: []rawTensor{
			{"a", []uint64{4, 2}, 0, 0}, // F32, 32 bytes
			{"b", []uint64{32}, 8, 32},  // Q8_0, 34 bytes
		},
		data: data,
	}
}
