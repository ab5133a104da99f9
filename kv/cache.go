// Package kv holds the attention key/value cache.
//
// Keys and values are stored per layer and per KV head, each entry with the
// original sequence position of its token, so that a compression policy can
// drop entries of one head without disturbing the others and attention can still
// mask causally by true position. Keys are stored after RoPE: an evicted
// neighbour never changes the rotation a kept key received.
package kv

import (
	"fmt"

	"tamp/tensor"
)

// Storage selects the element type cached keys and values are kept in.
type Storage int

const (
	// F16 halves the cache's memory, as llama.cpp's default cache does; values are
	// rounded to half precision on the way in.
	F16 Storage = iota
	// F32 keeps full precision.
	F32
)

// ParseStorage reads "f16" or "f32".
func ParseStorage(s string) (Storage, error) {
	switch s {
	case "f16", "F16":
		return F16, nil
	case "f32", "F32":
		return F32, nil
	}
	return 0, fmt.Errorf("kv: unknown cache type %q (want f16 or f32)", s)
}

func (s Storage) String() string {
	if s == F32 {
		return "f32"
	}
	return "f16"
}

func (s Storage) bytesPerElement() int {
	if s == F32 {
		return 4
	}
	return 2
}

// Cache holds the keys and values of every layer and KV head.
type Cache struct {
	layers, kvHeads, headDim, capacity int
	storage                            Storage
	heads                              []head // [layer*kvHeads + h]
}

// head is one KV head's entries. F32 storage uses k32/v32, F16 uses k16/v16;
// entry i occupies [i*headDim, (i+1)*headDim).
type head struct {
	pos      []int32
	k32, v32 []float32
	k16, v16 []uint16
}

// New makes an empty cache for capacity tokens per head.
func New(layers, kvHeads, headDim, capacity int, storage Storage) *Cache {
	c := &Cache{layers: layers, kvHeads: kvHeads, headDim: headDim, capacity: capacity, storage: storage,
		heads: make([]head, layers*kvHeads)}
	return c
}

// Capacity is the most entries one head can hold.
func (c *Cache) Capacity() int { return c.capacity }

// Storage reports the element type of the cache.
func (c *Cache) Storage() Storage { return c.storage }

// HeadDim is the length of one key or value vector.
func (c *Cache) HeadDim() int { return c.headDim }

// Append stores one token's keys and values for a layer: k and v hold kvHeads
// vectors of headDim each.
func (c *Cache) Append(layer int, pos int32, k, v []float32) error {
	if layer < 0 || layer >= c.layers {
		return fmt.Errorf("kv: layer %d out of range [0,%d)", layer, c.layers)
	}
	hd := c.headDim
	if len(k) != c.kvHeads*hd || len(v) != c.kvHeads*hd {
		return fmt.Errorf("kv: append of %d/%d values, want %d", len(k), len(v), c.kvHeads*hd)
	}
	for h := 0; h < c.kvHeads; h++ {
		e := &c.heads[layer*c.kvHeads+h]
		if len(e.pos) >= c.capacity {
			return fmt.Errorf("kv: cache full: layer %d head %d already holds %d entries (capacity %d)", layer, h, len(e.pos), c.capacity)
		}
		e.pos = append(e.pos, pos)
		kh, vh := k[h*hd:(h+1)*hd], v[h*hd:(h+1)*hd]
		if c.storage == F32 {
			e.k32 = append(e.k32, kh...)
			e.v32 = append(e.v32, vh...)
			continue
		}
		for i := range hd {
			e.k16 = append(e.k16, tensor.F32ToF16(kh[i]))
			e.v16 = append(e.v16, tensor.F32ToF16(vh[i]))
		}
	}
	return nil
}

// View is a read-only window on one head's entries.
type View struct {
	Pos      []int32
	K32, V32 []float32 // set for F32 storage
	K16, V16 []uint16  // set for F16 storage
}

// Len is the number of entries in the view.
func (v View) Len() int { return len(v.Pos) }

// Head returns the entries of one KV head of a layer. The slices alias the
// cache and are valid until the next Append, Reset or eviction.
func (c *Cache) Head(layer, h int) View {
	e := &c.heads[layer*c.kvHeads+h]
	return View{Pos: e.pos, K32: e.k32, V32: e.v32, K16: e.k16, V16: e.v16}
}

// Len is the number of entries held by head h of layer.
func (c *Cache) Len(layer, h int) int { return len(c.heads[layer*c.kvHeads+h].pos) }

// Reset empties the cache, keeping its memory for reuse.
func (c *Cache) Reset() {
	for i := range c.heads {
		e := &c.heads[i]
		e.pos, e.k32, e.v32, e.k16, e.v16 = e.pos[:0], e.k32[:0], e.v32[:0], e.k16[:0], e.v16[:0]
	}
}

// Bytes is the memory the cached keys, values and positions occupy now.
func (c *Cache) Bytes() int64 {
	var n int64
	per := int64(2*c.headDim*c.storage.bytesPerElement() + 4)
	for i := range c.heads {
		n += int64(len(c.heads[i].pos)) * per
	}
	return n
}

// FullBytes is what the cache would occupy holding n tokens in every head.
func (c *Cache) FullBytes(n int) int64 {
	return int64(n) * int64(c.layers*c.kvHeads) * int64(2*c.headDim*c.storage.bytesPerElement()+4)
}
