// Package synth writes random-weight models of real shapes: GGUF files that
// tamp and llama.cpp load and run like trained models of that size, for
// benchmarks and tests that need big models without downloading any.
//
// A file holds the shape's tensors under llama.cpp's names, in the types a
// llama-quantize target gives them (F16, Q8_0, Q4_0, the Q4_K_M mixture, …,
// with llama.cpp's per-tensor rules, taken from package quant), llama.cpp's
// metadata keys and a synthetic SentencePiece vocabulary of the shape's size
// (see vocab.go), so tamp run works on it too. Weights are normal with
// standard deviation 0.02 (norm weights 1 ± 0.02), which keeps activations
// in a realistic range; the text such a model writes is noise.
//
// Files are seeded and deterministic: the same options give the same bytes,
// whatever the number of threads, because every row of every tensor draws
// from its own generator seeded by (seed, tensor name, row). They are
// streamed: the header is written first, then each tensor is generated and
// quantized a few rows at a time, so memory use stays a few megabytes per
// thread whatever the model's size.
package synth

import (
	"bufio"
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"tamp/gguf"
	"tamp/quant"
	"tamp/tensor"
)

// Options says what to synthesize.
type Options struct {
	Shape Shape
	// Type is a llama-quantize target as quant.ParseTarget accepts it:
	// F32, F16, BF16, Q8_0, Q4_0, Q4_K_M, Q4_K, Q6_K, … The default is F16.
	Type string
	// Seed selects the weights; the same seed gives the same file.
	Seed uint64
	// Threads generate rows in parallel (default GOMAXPROCS). The output
	// does not depend on it.
	Threads int
	// Progress, if set, is called as the file is written with the bytes
	// written so far and the file's size.
	Progress func(done, total int64)
}

// TensorInfo is one tensor of a synthesized file.
type TensorInfo struct {
	Name   string
	Type   tensor.Type
	Dims   []uint64 // innermost first
	Offset uint64   // from the start of the data section
	Bytes  uint64
}

// Layout describes a synthesized file before it is written.
type Layout struct {
	Shape Shape
	// Target is the quantization target's name, FileType its
	// general.file_type (-1 for none).
	Target   string
	FileType int
	Tensors  []TensorInfo
	// DataOffset is where the data section starts; Size is the file size.
	DataOffset int64
	Size       int64

	header []byte
	inits  []weightInit
}

// Plan lays out the file opts describe without generating any weights.
func Plan(opts Options) (*Layout, error) {
	s := opts.Shape
	if err := s.Validate(); err != nil {
		return nil, err
	}
	name := opts.Type
	if name == "" {
		name = "F16"
	}
	tg, err := quant.ParseTarget(name)
	if err != nil {
		return nil, fmt.Errorf("synth: %w", err)
	}
	specs := s.tensors()
	types, err := tensorTypes(s, tg, specs)
	if err != nil {
		return nil, err
	}
	gf := gguf.New()
	gf.KV = metadata(s, tg, opts.Seed, quantized(types))
	for i, sp := range specs {
		dims := make([]uint64, len(sp.dims))
		for j, d := range sp.dims {
			dims[j] = uint64(d)
		}
		if err := gf.AddTensorInfo(sp.name, types[i], dims); err != nil {
			return nil, fmt.Errorf("synth: %w", err)
		}
	}
	// The tensors are generated later, one at a time, so only the header is
	// encoded now; package gguf lays it out as its own writer would.
	hdr, dataSize, err := gf.Header()
	if err != nil {
		return nil, fmt.Errorf("synth: %w", err)
	}
	l := &Layout{Shape: s, Target: tg.Name, FileType: tg.FileType, DataOffset: int64(len(hdr)),
		Size: int64(len(hdr)) + int64(dataSize), header: hdr}
	for i, t := range gf.Tensors {
		size, err := tensor.RowBytes(t.Type, int(t.Dims[0]))
		if err != nil {
			return nil, fmt.Errorf("synth: tensor %s: %w", t.Name, err)
		}
		bytes := uint64(size)
		for _, d := range t.Dims[1:] {
			bytes *= d
		}
		l.Tensors = append(l.Tensors, TensorInfo{Name: t.Name, Type: t.Type, Dims: t.Dims, Offset: t.Offset, Bytes: bytes})
		l.inits = append(l.inits, specs[i].init)
	}
	return l, nil
}

// quantized reports whether any tensor has a quantized type, which is when
// llama.cpp's files carry general.quantization_version.
func quantized(types []tensor.Type) bool {
	for _, t := range types {
		switch t {
		case tensor.F32, tensor.F16, tensor.BF16:
		default:
			return true
		}
	}
	return false
}

// tensorTypes asks package quant which type each tensor gets under the
// target, so synthesized files follow llama-quantize's rules (Q6_K output,
// Q6_K attn_v and ffn_down in some layers of Q4_K_M, fallbacks where
// blocks do not fit) exactly as tamp quantize applies them. The rules depend
// on names, layer counts, head counts and row lengths only, so a stand-in
// file of one row per tensor gets the types the full model would.
func tensorTypes(s Shape, tg quant.Target, specs []tensorSpec) ([]tensor.Type, error) {
	probe := gguf.New()
	probe.Set("general.architecture", gguf.String(s.Arch))
	probe.Set(s.Arch+".block_count", gguf.Uint32(uint32(s.Layers)))
	probe.Set(s.Arch+".attention.head_count", gguf.Uint32(uint32(s.Heads)))
	probe.Set(s.Arch+".attention.head_count_kv", gguf.Uint32(uint32(s.KVHeads)))
	for _, sp := range specs {
		cols := sp.dims[0]
		dims := []uint64{uint64(cols)}
		if len(sp.dims) > 1 {
			dims = append(dims, 1)
		}
		row := make([]float32, cols)
		for i := range row {
			row[i] = float32(i%7) - 3
		}
		data := make([]byte, 4*cols)
		if err := tensor.Quantize(tensor.F32, row, data); err != nil {
			return nil, err
		}
		if err := probe.AddTensor(sp.name, tensor.F32, dims, data); err != nil {
			return nil, fmt.Errorf("synth: %w", err)
		}
	}
	out, _, err := quant.Quantize(probe, quant.Options{Target: &tg})
	if err != nil {
		return nil, fmt.Errorf("synth: choosing tensor types: %w", err)
	}
	types := make([]tensor.Type, len(specs))
	for i, sp := range specs {
		t, ok := out.Tensor(sp.name)
		if !ok {
			return nil, fmt.Errorf("synth: the %s rules dropped tensor %s", tg.Name, sp.name)
		}
		types[i] = t.Type
	}
	return types, nil
}

// metadata is the file's key/value section, with llama.cpp's keys.
func metadata(s Shape, tg quant.Target, seed uint64, quantized bool) []gguf.KV {
	a := s.Arch + "."
	tokens, scores, types := vocab(s.Vocab)
	kvs := []gguf.KV{
		{Key: "general.architecture", Value: gguf.String(s.Arch)},
		{Key: "general.name", Value: gguf.String("synth-" + s.Name)},
		{Key: "general.description", Value: gguf.String(fmt.Sprintf("random weights of %s's shape written by tamp synth (seed %d); not a trained model", s.Name, seed))},
	}
	if tg.FileType >= 0 {
		kvs = append(kvs, gguf.KV{Key: "general.file_type", Value: gguf.Uint32(uint32(tg.FileType))})
	}
	if quantized {
		kvs = append(kvs, gguf.KV{Key: "general.quantization_version", Value: gguf.Uint32(2)})
	}
	kvs = append(kvs,
		gguf.KV{Key: a + "vocab_size", Value: gguf.Uint32(uint32(s.Vocab))},
		gguf.KV{Key: a + "context_length", Value: gguf.Uint32(uint32(s.Context))},
		gguf.KV{Key: a + "embedding_length", Value: gguf.Uint32(uint32(s.Dim))},
		gguf.KV{Key: a + "block_count", Value: gguf.Uint32(uint32(s.Layers))},
		gguf.KV{Key: a + "feed_forward_length", Value: gguf.Uint32(uint32(s.FFN))},
		gguf.KV{Key: a + "rope.dimension_count", Value: gguf.Uint32(uint32(s.HeadDim()))},
		gguf.KV{Key: a + "rope.freq_base", Value: gguf.Float32(s.RopeBase)},
		gguf.KV{Key: a + "attention.head_count", Value: gguf.Uint32(uint32(s.Heads))},
		gguf.KV{Key: a + "attention.head_count_kv", Value: gguf.Uint32(uint32(s.KVHeads))},
		gguf.KV{Key: a + "attention.layer_norm_rms_epsilon", Value: gguf.Float32(s.RMSEps)},
		gguf.KV{Key: "tokenizer.ggml.model", Value: gguf.String("llama")},
		gguf.KV{Key: "tokenizer.ggml.tokens", Value: gguf.StringArray(tokens)},
		gguf.KV{Key: "tokenizer.ggml.scores", Value: gguf.Float32Array(scores)},
		gguf.KV{Key: "tokenizer.ggml.token_type", Value: gguf.Int32Array(types)},
		gguf.KV{Key: "tokenizer.ggml.bos_token_id", Value: gguf.Uint32(1)},
		gguf.KV{Key: "tokenizer.ggml.eos_token_id", Value: gguf.Uint32(2)},
		gguf.KV{Key: "tokenizer.ggml.unknown_token_id", Value: gguf.Uint32(0)},
		gguf.KV{Key: "tokenizer.ggml.add_bos_token", Value: gguf.Bool(true)},
		gguf.KV{Key: "tokenizer.ggml.add_eos_token", Value: gguf.Bool(false)},
		gguf.KV{Key: quant.KeyTarget, Value: gguf.String(tg.Name)},
		gguf.KV{Key: KeyShape, Value: gguf.String(s.Name)},
		gguf.KV{Key: KeySeed, Value: gguf.Uint64(seed)},
	)
	return kvs
}

// Metadata keys that mark a synthesized file.
const (
	KeyShape = "tamp.synth.shape"
	KeySeed  = "tamp.synth.seed"
)

// chunkElems is how many weights one thread generates and quantizes at a
// time (a megabyte of float32): large enough to amortise the hand-off,
// small enough that memory stays flat.
const chunkElems = 1 << 18

// Write streams the model opts describes to w and returns its layout.
func Write(ctx context.Context, w io.Writer, opts Options) (*Layout, error) {
	l, err := Plan(opts)
	if err != nil {
		return nil, err
	}
	if err := l.write(ctx, w, opts); err != nil {
		return nil, err
	}
	return l, nil
}

// WriteFile writes the model to path atomically: into a temporary file in
// the same directory, synced, then renamed over path, so an interrupted run
// never leaves a partial model under that name.
func WriteFile(ctx context.Context, path string, opts Options) (l *Layout, err error) {
	if l, err = Plan(opts); err != nil {
		return nil, err
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("synth: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err := l.write(ctx, bw, opts); err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("synth: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return nil, fmt.Errorf("synth: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return nil, fmt.Errorf("synth: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("synth: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, fmt.Errorf("synth: %w", err)
	}
	return l, nil
}

// worker is one thread's generator and buffers, reused for every chunk.
type worker struct {
	src *rand.PCG
	rng *rand.Rand
	x   []float32
	out []byte
	err error
}

func (l *Layout) write(ctx context.Context, w io.Writer, opts Options) error {
	threads := opts.Threads
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	cw := &countWriter{w: w}
	progress := func() {
		if opts.Progress != nil {
			opts.Progress(cw.n, l.Size)
		}
	}
	cw.write(l.header)
	progress()
	workers := make([]*worker, threads)
	for i := range workers {
		src := rand.NewPCG(0, 0)
		workers[i] = &worker{src: src, rng: rand.New(src)}
	}
	for ti, t := range l.Tensors {
		cw.zeros(l.DataOffset + int64(t.Offset) - cw.n)
		cols := int(t.Dims[0])
		rows := 1
		for _, d := range t.Dims[1:] {
			rows *= int(d)
		}
		rowBytes := int(t.Bytes) / rows
		chunkRows := max(1, chunkElems/cols)
		nameKey := hashName(t.Name)
		init := l.inits[ti]
		for r0 := 0; r0 < rows; r0 += chunkRows * threads {
			if err := ctx.Err(); err != nil {
				return err
			}
			var wg sync.WaitGroup
			used := 0
			for k, wk := range workers {
				lo := r0 + k*chunkRows
				if lo >= rows {
					break
				}
				hi := min(lo+chunkRows, rows)
				used++
				wg.Add(1)
				go func() {
					defer wg.Done()
					wk.fill(t.Type, init, opts.Seed, nameKey, cols, rowBytes, lo, hi)
				}()
			}
			wg.Wait()
			for _, wk := range workers[:used] {
				if wk.err != nil {
					return fmt.Errorf("synth: tensor %s: %w", t.Name, wk.err)
				}
				cw.write(wk.out)
			}
			if cw.err != nil {
				return fmt.Errorf("synth: writing: %w", cw.err)
			}
			progress()
		}
	}
	cw.zeros(l.Size - cw.n)
	if cw.err != nil {
		return fmt.Errorf("synth: writing: %w", cw.err)
	}
	if cw.n != l.Size {
		return fmt.Errorf("synth: wrote %d bytes, planned %d", cw.n, l.Size)
	}
	progress()
	return nil
}

// fill generates rows [lo, hi) of a tensor and stores them as typ in wk.out.
func (wk *worker) fill(typ tensor.Type, init weightInit, seed, nameKey uint64, cols, rowBytes, lo, hi int) {
	n := hi - lo
	if cap(wk.x) < cols {
		wk.x = make([]float32, cols)
	}
	if cap(wk.out) < n*rowBytes {
		wk.out = make([]byte, n*rowBytes)
	}
	wk.out = wk.out[:n*rowBytes]
	x := wk.x[:cols]
	mean, std := 0.0, matrixStd
	switch init {
	case initNorm:
		mean, std = 1, normStd
	case initBias:
		std = biasStd
	}
	for r := lo; r < hi; r++ {
		wk.src.Seed(seed, mix(nameKey^uint64(r)))
		for j := range x {
			x[j] = float32(mean + std*wk.rng.NormFloat64())
		}
		dst := wk.out[(r-lo)*rowBytes : (r-lo+1)*rowBytes]
		if err := quant.QuantizeRow(typ, x, dst, nil); err != nil {
			wk.err = err
			return
		}
	}
	wk.err = nil
}

func hashName(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return mix(h.Sum64())
}

// mix is splitmix64's finaliser: it spreads neighbouring row numbers over
// the whole seed space so that the rows' generators are unrelated.
func mix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// countWriter counts bytes and keeps the first error.
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

func (c *countWriter) zeros(n int64) {
	for n > 0 && c.err == nil {
		k := min(n, int64(len(zeroBlock)))
		c.write(zeroBlock[:k])
		n -= k
	}
}
