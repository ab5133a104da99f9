// Package kv holds the attention key/value cache and the policies that
// compress it while a sequence is evaluated.
//
// Keys and values are stored per layer and per KV head, each entry with the
// original sequence position of its token, so that a compression policy can
// drop entries of one head without disturbing the others and attention can
// still mask causally by true position. Keys are stored after RoPE: an evicted
// neighbour never changes the rotation a kept key received, so positions stay
// correct after any eviction. Every policy keeps the positions the model saw,
// except streaming with rerotate=1, which moves its attention sinks to
// cache-relative positions as StreamingLLM does (see streaming.go).
//
// The forward pass drives a [Policy] at named moments (after each prefill
// chunk, after the prefill, after each decode step) and records, only when the
// policy asks for it, how much attention each cached entry receives (see
// [Needs]); with no policy nothing is recorded and attention costs what it did
// before. Policies, one per file: full, streaming (StreamingLLM), h2o, snapkv,
// pyramidkv, graphkv, chunked (Locret-style) and adaptive (tamp's own); each
// file's comment cites its paper and says what is faithful and what is not.
// Budgets are per head, optionally different per layer and head ([Table]).
// Policies shrink the cache with [Cache.Retain]. Independently of eviction the
// cache can quantize what it holds the way KIVI does (see [Quant]);
// [Cache.Bytes] counts the bytes actually stored.
package kv

import (
	"fmt"
	"math"

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

// String is the name ParseStorage reads.
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

// Shape is the geometry of a model's attention.
type Shape struct {
	Layers  int
	Heads   int // query heads
	KVHeads int
	HeadDim int
}

func (s Shape) check() error {
	if s.Layers <= 0 || s.KVHeads <= 0 || s.HeadDim <= 0 || s.Heads <= 0 {
		return fmt.Errorf("kv: shape %+v must be positive", s)
	}
	if s.Heads%s.KVHeads != 0 {
		return fmt.Errorf("kv: %d query heads are not a multiple of %d KV heads", s.Heads, s.KVHeads)
	}
	return nil
}

// Options configures a cache beyond its shape.
type Options struct {
	Storage Storage
	// Quant quantizes stored keys and values (KIVI); the zero value stores them
	// in Storage.
	Quant Quant
	// Scores keeps one float per entry into which the forward pass adds the
	// attention the entry receives from recorded query rows.
	Scores bool
	// GQAMax aggregates the attention of the query heads that share a KV head
	// by their maximum instead of their mean.
	GQAMax bool
	// Aux keeps one float per entry that belongs to the policy; it moves with
	// the entry on eviction.
	Aux bool
}

// Cache holds the keys and values of every layer and KV head.
type Cache struct {
	shape    Shape
	capacity int
	opts     Options
	heads    []head // [layer*KVHeads + h]
	work     []work // attention scratch, one per KV head

	q      quantizer // zero when not quantizing
	blocks bool      // attention uses the eight-head block kernels (groups padded to eight heads)
	total  int64     // bytes held now
	peak   int64     // most bytes ever held since the last Reset
}

// head is one KV head's entries, ordered by position. Entries [0, kq) have a
// quantized key and [0, vq) a quantized value; the rest are at full precision
// in the tail slices (F32 storage uses k32/v32, F16 uses k16/v16): the key of
// entry j is tail key j-kq, its value tail value j-vq.
type head struct {
	pos        []int32
	score, aux []float32
	k32, v32   []float32
	k16, v16   []uint16
	kq, vq     int

	kLens   []int32  // lengths of the key blocks that cover entries [0, kq)
	kParams []uint16 // per key block: HeadDim minimums then HeadDim steps, F16
	kCodes  []byte   // one packed row of HeadDim codes per quantized key
	vParams []uint16 // per quantized value: (minimum, step) per channel group, F16
	vCodes  []byte   // one packed row per quantized value
}

// New makes an empty cache for capacity tokens per head, one query head per KV
// head and no quantization. It is kept for callers that only need sizes; the
// forward pass uses [NewCache].
func New(layers, kvHeads, headDim, capacity int, storage Storage) *Cache {
	c, err := NewCache(Shape{Layers: layers, Heads: kvHeads, KVHeads: kvHeads, HeadDim: headDim}, capacity, Options{Storage: storage})
	if err != nil {
		panic(err) // only reachable with non-positive sizes, a caller bug
	}
	return c
}

// NewCache makes an empty cache holding at most capacity entries per head.
func NewCache(shape Shape, capacity int, opts Options) (*Cache, error) {
	if err := shape.check(); err != nil {
		return nil, err
	}
	if capacity <= 0 {
		return nil, fmt.Errorf("kv: capacity %d must be positive", capacity)
	}
	if opts.Storage != F16 && opts.Storage != F32 {
		return nil, fmt.Errorf("kv: unknown storage %d", opts.Storage)
	}
	c := &Cache{shape: shape, capacity: capacity, opts: opts,
		heads: make([]head, shape.Layers*shape.KVHeads),
		work:  make([]work, shape.KVHeads),
	}
	if opts.Quant.Bits != 0 {
		q, err := newQuantizer(opts.Quant, shape.HeadDim)
		if err != nil {
			return nil, err
		}
		c.q = q
	}
	c.blocks = haveBlocks && !disableBlocks && shape.HeadDim%8 == 0
	for i := range c.work {
		c.work[i].init(shape.HeadDim, c.blocks)
	}
	return c, nil
}

// Shape is the cache's geometry.
func (c *Cache) Shape() Shape { return c.shape }

// Capacity is the most entries one head can hold.
func (c *Cache) Capacity() int { return c.capacity }

// Storage reports the element type of the full-precision entries.
func (c *Cache) Storage() Storage { return c.opts.Storage }

// Quant reports the cache's quantization (Bits 0: none).
func (c *Cache) Quant() Quant { return c.q.Quant }

// HeadDim is the length of one key or value vector.
func (c *Cache) HeadDim() int { return c.shape.HeadDim }

// Layers is the number of layers.
func (c *Cache) Layers() int { return c.shape.Layers }

// KVHeads is the number of KV heads per layer.
func (c *Cache) KVHeads() int { return c.shape.KVHeads }

func (c *Cache) head(layer, h int) *head { return &c.heads[layer*c.shape.KVHeads+h] }

// Append stores one token's keys and values for a layer: k and v hold KVHeads
// vectors of HeadDim each.
func (c *Cache) Append(layer int, pos int32, k, v []float32) error {
	if layer < 0 || layer >= c.shape.Layers {
		return fmt.Errorf("kv: layer %d out of range [0,%d)", layer, c.shape.Layers)
	}
	hd := c.shape.HeadDim
	if len(k) != c.shape.KVHeads*hd || len(v) != c.shape.KVHeads*hd {
		return fmt.Errorf("kv: append of %d/%d values, want %d", len(k), len(v), c.shape.KVHeads*hd)
	}
	for h := 0; h < c.shape.KVHeads; h++ {
		e := c.head(layer, h)
		if len(e.pos) >= c.capacity {
			return fmt.Errorf("kv: cache full: layer %d head %d already holds %d entries (capacity %d)", layer, h, len(e.pos), c.capacity)
		}
		if n := len(e.pos); n > 0 && e.pos[n-1] >= pos {
			return fmt.Errorf("kv: layer %d head %d: position %d appended after position %d", layer, h, pos, e.pos[n-1])
		}
		kh, vh := k[h*hd:(h+1)*hd], v[h*hd:(h+1)*hd]
		if c.q.Hadamard {
			w := &c.work[h]
			kh, vh = w.rotK, w.rotV
			copy(kh, k[h*hd:(h+1)*hd])
			copy(vh, v[h*hd:(h+1)*hd])
			hadamard(kh)
			hadamard(vh)
		}
		before := c.headBytes(e)
		e.pos = append(e.pos, pos)
		if c.opts.Scores {
			e.score = append(e.score, 0)
		}
		if c.opts.Aux {
			e.aux = append(e.aux, 0)
		}
		if c.opts.Storage == F32 {
			e.k32 = append(e.k32, kh...)
			e.v32 = append(e.v32, vh...)
		} else {
			for i := range hd {
				e.k16 = append(e.k16, tensor.F32ToF16(kh[i]))
				e.v16 = append(e.v16, tensor.F32ToF16(vh[i]))
			}
		}
		c.grow(c.headBytes(e) - before)
		if c.q.Bits != 0 {
			c.q.flush(c, e)
		}
	}
	return nil
}

// grow adds delta bytes to the running total, noting a new peak.
func (c *Cache) grow(delta int64) {
	c.total += delta
	c.peak = max(c.peak, c.total)
}

// Len is the number of entries held by head h of layer.
func (c *Cache) Len(layer, h int) int { return len(c.head(layer, h).pos) }

// Positions returns the original positions of head h's entries in increasing
// order. The slice aliases the cache: valid until the next change, not to be
// modified.
func (c *Cache) Positions(layer, h int) []int32 { return c.head(layer, h).pos }

// Scores returns the attention each of head h's entries has received from the
// recorded query rows since the scores were last cleared (nil unless the cache
// keeps scores). The slice aliases the cache; a policy may modify it.
func (c *Cache) Scores(layer, h int) []float32 { return c.head(layer, h).score }

// Aux returns the policy-owned value of each of head h's entries (nil unless
// the cache keeps them). The slice aliases the cache; a policy may modify it.
func (c *Cache) Aux(layer, h int) []float32 { return c.head(layer, h).aux }

// ClearScores sets every recorded score to zero.
func (c *Cache) ClearScores() {
	for i := range c.heads {
		clear(c.heads[i].score)
	}
}

// Key writes the key of entry j of head h into dst (HeadDim values),
// dequantizing it if needed. With Hadamard rotation the key is in the rotated
// basis, which preserves norms and cosine similarities.
func (c *Cache) Key(layer, h, j int, dst []float32) {
	e := c.head(layer, h)
	hd := c.shape.HeadDim
	if j < e.kq {
		c.q.key(e, j, dst)
		return
	}
	t := j - e.kq
	if c.opts.Storage == F32 {
		copy(dst, e.k32[t*hd:(t+1)*hd])
		return
	}
	for i, x := range e.k16[t*hd : (t+1)*hd] {
		dst[i] = tensor.F16ToF32(x)
	}
}

// Value writes the value of entry j of head h into dst, like [Cache.Key].
func (c *Cache) Value(layer, h, j int, dst []float32) {
	e := c.head(layer, h)
	hd := c.shape.HeadDim
	if j < e.vq {
		c.q.value(e, j, dst)
		return
	}
	t := j - e.vq
	if c.opts.Storage == F32 {
		copy(dst, e.v32[t*hd:(t+1)*hd])
		return
	}
	for i, x := range e.v16[t*hd : (t+1)*hd] {
		dst[i] = tensor.F16ToF32(x)
	}
}

// SetKey replaces the key of entry j of head h (HeadDim values, in the basis
// the cache stores: rotated when the cache rotates by Hadamard). Only keys
// at full precision can be replaced.
func (c *Cache) SetKey(layer, h, j int, k []float32) error {
	if layer < 0 || layer >= c.shape.Layers || h < 0 || h >= c.shape.KVHeads {
		return fmt.Errorf("kv: set key on layer %d head %d out of range", layer, h)
	}
	e := c.head(layer, h)
	hd := c.shape.HeadDim
	if j < e.kq || j >= len(e.pos) || len(k) != hd {
		return fmt.Errorf("kv: cannot set key %d of %d (%d quantized) with %d values", j, len(e.pos), e.kq, len(k))
	}
	t := j - e.kq
	if c.opts.Storage == F32 {
		copy(e.k32[t*hd:(t+1)*hd], k)
		return nil
	}
	for i, x := range k {
		e.k16[t*hd+i] = tensor.F32ToF16(x)
	}
	return nil
}

// View is a read-only window on one head's full-precision entries.
type View struct {
	Pos      []int32
	K32, V32 []float32 // set for F32 storage
	K16, V16 []uint16  // set for F16 storage
}

// Len is the number of entries in the view.
func (v View) Len() int { return len(v.Pos) }

// Head returns the entries of one KV head of a layer. The slices alias the
// cache and are valid until the next Append, Reset or eviction. It is only
// meaningful for a cache that does not quantize (use [Cache.Key] otherwise).
func (c *Cache) Head(layer, h int) View {
	e := c.head(layer, h)
	return View{Pos: e.pos, K32: e.k32, V32: e.v32, K16: e.k16, V16: e.v16}
}

// Retain keeps only the entries of head h of layer whose indices are listed in
// keep, in strictly increasing order, and drops the others. Scores and aux
// values move with their entries; quantized keys keep their block's
// parameters, so nothing is requantized and no kept value changes.
func (c *Cache) Retain(layer, h int, keep []int) error {
	if layer < 0 || layer >= c.shape.Layers || h < 0 || h >= c.shape.KVHeads {
		return fmt.Errorf("kv: retain on layer %d head %d out of range", layer, h)
	}
	e := c.head(layer, h)
	n := len(e.pos)
	for i, j := range keep {
		if j < 0 || j >= n || (i > 0 && j <= keep[i-1]) {
			return fmt.Errorf("kv: retain list must be strictly increasing indices below %d; got %d at %d", n, j, i)
		}
	}
	if len(keep) == n {
		return nil
	}
	before := c.headBytes(e)
	hd := c.shape.HeadDim
	newKq, newVq := 0, 0
	for _, j := range keep {
		if j < e.kq {
			newKq++
		}
		if j < e.vq {
			newVq++
		}
	}
	if e.kq > 0 {
		c.q.retainKeys(e, keep, newKq)
	}
	if e.vq > 0 {
		c.q.retainValues(e, keep, newVq)
	}
	f32 := c.opts.Storage == F32
	// Move runs of consecutive kept entries at once; a run already in place
	// (the common case of dropping a few old entries) costs nothing.
	for r := 0; r < len(keep); {
		end := r + 1
		for end < len(keep) && keep[end] == keep[end-1]+1 {
			end++
		}
		w0, j0, cnt := r, keep[r], end-r
		r = end
		if w0 == j0 {
			continue
		}
		copy(e.pos[w0:w0+cnt], e.pos[j0:j0+cnt])
		if e.score != nil {
			copy(e.score[w0:w0+cnt], e.score[j0:j0+cnt])
		}
		if e.aux != nil {
			copy(e.aux[w0:w0+cnt], e.aux[j0:j0+cnt])
		}
		// The part of the run stored at full precision, keys then values.
		if j := max(j0, e.kq); j < j0+cnt {
			w, n := w0+j-j0, j0+cnt-j
			dst, src := (w-newKq)*hd, (j-e.kq)*hd
			if f32 {
				copy(e.k32[dst:dst+n*hd], e.k32[src:src+n*hd])
			} else {
				copy(e.k16[dst:dst+n*hd], e.k16[src:src+n*hd])
			}
		}
		if j := max(j0, e.vq); j < j0+cnt {
			w, n := w0+j-j0, j0+cnt-j
			dst, src := (w-newVq)*hd, (j-e.vq)*hd
			if f32 {
				copy(e.v32[dst:dst+n*hd], e.v32[src:src+n*hd])
			} else {
				copy(e.v16[dst:dst+n*hd], e.v16[src:src+n*hd])
			}
		}
	}
	m := len(keep)
	e.pos = e.pos[:m]
	if e.score != nil {
		e.score = e.score[:m]
	}
	if e.aux != nil {
		e.aux = e.aux[:m]
	}
	if f32 {
		e.k32, e.v32 = e.k32[:(m-newKq)*hd], e.v32[:(m-newVq)*hd]
	} else {
		e.k16, e.v16 = e.k16[:(m-newKq)*hd], e.v16[:(m-newVq)*hd]
	}
	e.kq, e.vq = newKq, newVq
	c.grow(c.headBytes(e) - before)
	return nil
}

// Reset empties the cache, keeping its memory for reuse.
func (c *Cache) Reset() {
	for i := range c.heads {
		e := &c.heads[i]
		e.pos, e.k32, e.v32, e.k16, e.v16 = e.pos[:0], e.k32[:0], e.v32[:0], e.k16[:0], e.v16[:0]
		e.score, e.aux = e.score[:0], e.aux[:0]
		e.kq, e.vq = 0, 0
		e.kLens, e.kParams, e.kCodes = e.kLens[:0], e.kParams[:0], e.kCodes[:0]
		e.vParams, e.vCodes = e.vParams[:0], e.vCodes[:0]
	}
	c.total, c.peak = 0, 0
}

// headBytes is what one head stores: positions, per-entry scores and aux
// values, full-precision keys and values, and quantized codes with their
// parameters.
func (c *Cache) headBytes(e *head) int64 {
	n := int64(len(e.pos))
	hd := int64(c.shape.HeadDim)
	elem := int64(c.opts.Storage.bytesPerElement())
	b := 4*n + 4*int64(len(e.score)) + 4*int64(len(e.aux))
	b += (n-int64(e.kq))*hd*elem + (n-int64(e.vq))*hd*elem
	b += int64(len(e.kCodes)) + 2*int64(len(e.kParams))
	b += int64(len(e.vCodes)) + 2*int64(len(e.vParams))
	return b
}

// Bytes is the memory the cached keys, values, positions and per-entry policy
// data occupy now (what is stored, not what the slices have reserved).
func (c *Cache) Bytes() int64 { return c.total }

// PeakBytes is the most [Cache.Bytes] has been since the cache was made or
// last reset.
func (c *Cache) PeakBytes() int64 { return c.peak }

// FullBytes is what an unquantized cache of this storage type would occupy
// holding n tokens in every head (positions included).
func (c *Cache) FullBytes(n int) int64 {
	return int64(n) * int64(c.shape.Layers*c.shape.KVHeads) * int64(2*c.shape.HeadDim*c.opts.Storage.bytesPerElement()+4)
}

// Entries is the total number of entries held over all layers and heads.
func (c *Cache) Entries() int {
	n := 0
	for i := range c.heads {
		n += len(c.heads[i].pos)
	}
	return n
}

// MaxLen is the largest number of entries any head holds.
func (c *Cache) MaxLen() int {
	n := 0
	for i := range c.heads {
		n = max(n, len(c.heads[i].pos))
	}
	return n
}

var negInf = float32(math.Inf(-1))

// disableBlocks forces the scalar attention loops (tests compare the two).
var disableBlocks = false
