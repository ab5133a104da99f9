// Package llama2c imports Andrej Karpathy's llama2.c checkpoints and tokenizers.
//
// Load turns a checkpoint and its tokenizer into an in-memory GGUF file that
// uses llama.cpp's tensor names and metadata keys, the same file llama.cpp's
// convert-llama2c-to-ggml writes, so the rest of tamp runs llama2.c models
// without knowing where they came from.
//
// Three checkpoint layouts exist, all little-endian:
//
//   - version 0 (legacy, export.py's legacy_export and the tinyllamas files):
//     a 7 × int32 header (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
//     vocab_size, seq_len) and float32 weights. A negative vocab_size says an
//     untied classifier follows the two RoPE tables at the end.
//   - version 1 ("ak42" float32): a 256-byte header with magic 0x616b3432, the
//     version, the same 7 params and a shared-classifier byte, then float32
//     weights, norms first.
//   - version 2 ("ak42" int8, runq.c's format): as version 1 plus an int32
//     group size; weights are int8 with one float32 scale per group.
//
// The weights come out as F32 tensors in every case; see ReadCheckpoint for why
// version 2 is dequantized.
package llama2c

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"

	"tamp/tensor"
)

// Magic is the uint32 that opens version 1 and 2 checkpoints ("ak42").
const Magic = 0x616b3432

const (
	legacyHeaderSize = 7 * 4
	ak42HeaderSize   = 256
)

// Config is the hyperparameter header every llama2.c checkpoint carries.
type Config struct {
	Dim       int // width of the residual stream
	HiddenDim int // SwiGLU hidden width
	Layers    int
	Heads     int // query heads
	KVHeads   int // key/value heads; fewer than Heads means grouped-query attention
	VocabSize int // always positive here; the legacy sign flag is in SharedClassifier
	SeqLen    int // the context length the model was trained at
	// SharedClassifier reports that the output projection reuses the token
	// embedding rather than storing its own matrix.
	SharedClassifier bool
}

// HeadSize is the width of one attention head.
func (c Config) HeadSize() int { return c.Dim / c.Heads }

// KVDim is the width of the key and value projections.
func (c Config) KVDim() int { return c.KVHeads * c.HeadSize() }

// Validate rejects headers no llama2.c model can have, so that sizes derived
// from them are meaningful.
func (c Config) Validate() error {
	for _, p := range []struct {
		name string
		v    int
	}{
		{"dim", c.Dim}, {"hidden_dim", c.HiddenDim}, {"n_layers", c.Layers},
		{"n_heads", c.Heads}, {"n_kv_heads", c.KVHeads}, {"vocab_size", c.VocabSize}, {"seq_len", c.SeqLen},
	} {
		if p.v <= 0 {
			return fmt.Errorf("llama2c: header %s = %d, must be positive", p.name, p.v)
		}
	}
	if c.Dim%c.Heads != 0 {
		return fmt.Errorf("llama2c: header dim %d is not a multiple of n_heads %d", c.Dim, c.Heads)
	}
	if c.Heads%c.KVHeads != 0 {
		return fmt.Errorf("llama2c: header n_heads %d is not a multiple of n_kv_heads %d", c.Heads, c.KVHeads)
	}
	// llama2.c rotates (i, i+1) pairs across each head, and the legacy layout
	// stores seq_len × head_size/2 entries per RoPE table.
	if c.HeadSize()%2 != 0 {
		return fmt.Errorf("llama2c: head size %d (dim %d / n_heads %d) is odd; RoPE needs pairs", c.HeadSize(), c.Dim, c.Heads)
	}
	return nil
}

// Checkpoint is a parsed llama2.c checkpoint.
type Checkpoint struct {
	Config Config
	// Version is the file layout: 0 (legacy float32), 1 (ak42 float32) or
	// 2 (ak42 int8).
	Version int
	// GroupSize is the quantization group of a version 2 file, 0 otherwise.
	GroupSize int
	// Tensors holds every weight as F32, named and ordered as llama.cpp's
	// converter writes them: token_embd, output_norm, output, then per block
	// attn_q, attn_k, attn_v, attn_output, attn_norm, ffn_gate, ffn_down,
	// ffn_up, ffn_norm. Matrices keep llama2.c's row-major [out][in] layout,
	// which is GGUF dims [in, out]; nothing is permuted. output.weight shares
	// token_embd's bytes when the classifier is tied. For versions 0 and 1 the
	// data aliases the slice given to ReadCheckpoint.
	Tensors []*tensor.Tensor
}

// Tensor returns the named tensor, or nil.
func (c *Checkpoint) Tensor(name string) *tensor.Tensor {
	for _, t := range c.Tensors {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// counter accumulates a byte count, failing instead of overflowing; hostile
// headers can name dimensions whose products do not fit in an int64.
type counter struct {
	n   int64
	bad bool
}

const sizeLimit = 1 << 60

func mul(xs ...int) (int64, bool) {
	p := int64(1)
	for _, x := range xs {
		if x < 0 || (x != 0 && p > sizeLimit/int64(x)) {
			return 0, false
		}
		p *= int64(x)
	}
	return p, true
}

func (c *counter) add(n int64, ok bool) {
	if !ok || c.n > sizeLimit-n {
		c.bad = true
		return
	}
	c.n += n
}

// shape is a llama2.c matrix: rows of cols values.
type shape struct{ rows, cols int }

// layerShapes gives the per-layer matrices in the order every layout stores them.

func layerShapes(c Config) (wq, wk, wv, wo, w1, w2, w3 shape) {
	d, kv, h := c.Dim, c.KVDim(), c.HiddenDim
	return shape{d, d}, shape{kv, d}, shape{kv, d}, shape{d, d}, shape{h, d}, shape{d, h}, shape{h, d}
}

// expectedSize is the exact file size a header implies, or an error when the
// layout cannot exist (overflow, groups that do not divide a tensor).
func expectedSize(c Config, version, group int) (int64, error) {
	var n counter
	wq, wk, wv, wo, w1, w2, w3 := layerShapes(c)
	mats := []shape{wq, wk, wv, wo, w1, w2, w3}
	switch version {
	case 0, 1:
		if version == 0 {
			n.add(legacyHeaderSize, true)
		} else {
			n.add(ak42HeaderSize, true)
		}
		n.add(mul(4, c.VocabSize, c.Dim))  // token embedding
		n.add(mul(4, 2*c.Layers+1, c.Dim)) // rms_att, rms_ffn, rms_final
		for _, m := range mats {
			n.add(mul(4, c.Layers, m.rows, m.cols))
		}
		if version == 0 {
			n.add(mul(4, c.SeqLen, c.HeadSize())) // freq_cis_real and _imag, head_size/2 each
		}
		if !c.SharedClassifier {
			n.add(mul(4, c.VocabSize, c.Dim))
		}
	case 2:
		if group <= 0 {
			return 0, fmt.Errorf("llama2c: group_size %d must be positive", group)
		}
		n.add(ak42HeaderSize, true)
		n.add(mul(4, 2*c.Layers+1, c.Dim))
		quant := func(what string, count int, m shape) error {
			e, ok := mul(m.rows, m.cols)
			if !ok {
				n.bad = true
				return nil
			}
			if e%int64(group) != 0 {
				return fmt.Errorf("llama2c: %s has %d values, not a multiple of group_size %d", what, e, group)
			}
			per, ok := mul(int(e/int64(group)), 4+group)
			if !ok {
				n.bad = true
				return nil
			}
			n.add(mul(int(per), count))
			return nil
		}
		if err := quant("token_embedding", 1, shape{c.VocabSize, c.Dim}); err != nil {
			return 0, err
		}
		for i, m := range mats {
			if err := quant(llamaNames[i], c.Layers, m); err != nil {
				return 0, err
			}
		}
		if !c.SharedClassifier {
			if err := quant("wcls", 1, shape{c.VocabSize, c.Dim}); err != nil {
				return 0, err
			}
		}
	default:
		return 0, fmt.Errorf("llama2c: unsupported checkpoint version %d (known: 0, 1, 2)", version)
	}
	if n.bad {
		return 0, fmt.Errorf("llama2c: header dims %+v imply a file larger than any real checkpoint", c)
	}
	return n.n, nil
}

var llamaNames = []string{"wq", "wk", "wv", "wo", "w1", "w2", "w3"}

// header is what the first bytes of a checkpoint say.
type header struct {
	cfg     Config
	version int
	group   int
	size    int64 // bytes before the weights
}

// parseHeader decodes the header in b (which may be longer than the header).
func parseHeader(b []byte) (header, error) {
	var h header
	if len(b) < 4 {
		return h, fmt.Errorf("llama2c: file is %d bytes, too short for a checkpoint header", len(b))
	}
	le := binary.LittleEndian
	i32 := func(off int) int { return int(int32(le.Uint32(b[off:]))) }
	if le.Uint32(b) == Magic {
		if len(b) < ak42HeaderSize {
			return h, fmt.Errorf("llama2c: ak42 header needs %d bytes, file has %d", ak42HeaderSize, len(b))
		}
		h.version = i32(4)
		if h.version != 1 && h.version != 2 {
			return h, fmt.Errorf("llama2c: unsupported ak42 checkpoint version %d (known: 1, 2)", h.version)
		}
		h.cfg = Config{Dim: i32(8), HiddenDim: i32(12), Layers: i32(16), Heads: i32(20), KVHeads: i32(24), VocabSize: i32(28), SeqLen: i32(32)}
		switch b[36] {
		case 0:
		case 1:
			h.cfg.SharedClassifier = true
		default:
			return h, fmt.Errorf("llama2c: shared_classifier flag is %d, must be 0 or 1", b[36])
		}
		if h.version == 2 {
			h.group = i32(37)
		}
		h.size = ak42HeaderSize
	} else {
		if len(b) < legacyHeaderSize {
			return h, fmt.Errorf("llama2c: legacy header needs %d bytes, file has %d", legacyHeaderSize, len(b))
		}
		h.cfg = Config{Dim: i32(0), HiddenDim: i32(4), Layers: i32(8), Heads: i32(12), KVHeads: i32(16), VocabSize: i32(20), SeqLen: i32(24)}
		// The legacy format flags an untied classifier with a negative vocab size.
		h.cfg.SharedClassifier = h.cfg.VocabSize > 0
		if h.cfg.VocabSize < 0 {
			h.cfg.VocabSize = -h.cfg.VocabSize // int is wider than int32: no overflow
		}
		h.size = legacyHeaderSize
	}
	if err := h.cfg.Validate(); err != nil {
		return h, err
	}
	return h, nil
}

// checkSize validates a header against the actual file size.
func (h header) checkSize(actual int64) error {
	want, err := expectedSize(h.cfg, h.version, h.group)
	if err != nil {
		return err
	}
	if want != actual {
		return fmt.Errorf("llama2c: version %d checkpoint with dim %d, hidden_dim %d, %d layers, %d heads, %d kv heads, vocab %d (shared classifier %v), seq_len %d should be %d bytes, file is %d",
			h.version, h.cfg.Dim, h.cfg.HiddenDim, h.cfg.Layers, h.cfg.Heads, h.cfg.KVHeads, h.cfg.VocabSize, h.cfg.SharedClassifier, h.cfg.SeqLen, want, actual)
	}
	return nil
}

// ReadCheckpoint parses a whole checkpoint file held in data.
//
// Float32 versions alias data: the tensors are slices of it, copied nowhere.
// Version 2 is dequantized to F32 (value = q × scale, in float32 as runq.c
// computes it) because no ggml type can hold it exactly: its groups run across
// the flattened tensor, so a group straddles row boundaries whenever the row
// length is not a multiple of the group size (ffn_down rows of stories260K are
// 172 long), and its scales are float32 where Q8_0 stores float16.
func ReadCheckpoint(data []byte) (*Checkpoint, error) {
	h, err := parseHeader(data)
	if err != nil {
		return nil, err
	}
	if err := h.checkSize(int64(len(data))); err != nil {
		return nil, err
	}
	r := &reader{data: data, off: int(h.size)}
	ck := &Checkpoint{Config: h.cfg, Version: h.version, GroupSize: h.group}
	switch h.version {
	case 0:
		readLegacy(ck, r)
	case 1:
		readV1(ck, r)
	case 2:
		if err := readV2(ck, r, h.group); err != nil {
			return nil, err
		}
	}
	if r.off != len(data) {
		// expectedSize and the readers disagree: a bug, not bad input.
		return nil, fmt.Errorf("llama2c: internal error: read %d of %d bytes", r.off, len(data))
	}
	return ck, nil
}

// reader hands out consecutive slices of a buffer whose total size has
// already been checked against the header.
type reader struct {
	data []byte
	off  int
}

func (r *reader) take(n int) []byte {
	b := r.data[r.off : r.off+n : r.off+n]
	r.off += n
	return b
}

// f32s takes count tensors of n float32 values each.
func (r *reader) f32s(count, n int) [][]byte {
	out := make([][]byte, count)
	for i := range out {
		out[i] = r.take(4 * n)
	}
	return out
}

// weights are a checkpoint's arrays as F32 bytes, per-layer ones one slice
// per layer.
type weights struct {
	embed, final, cls []byte
	att, ffn          [][]byte
	wq, wk, wv, wo    [][]byte
	w1, w2, w3        [][]byte
}

func readLegacy(ck *Checkpoint, r *reader) {
	c := ck.Config
	var w weights
	w.embed = r.take(4 * c.VocabSize * c.Dim)
	w.att = r.f32s(c.Layers, c.Dim)
	w.wq = r.f32s(c.Layers, c.Dim*c.Dim)
	w.wk = r.f32s(c.Layers, c.KVDim()*c.Dim)
	w.wv = r.f32s(c.Layers, c.KVDim()*c.Dim)
	w.wo = r.f32s(c.Layers, c.Dim*c.Dim)
	w.ffn = r.f32s(c.Layers, c.Dim)
	w.w1 = r.f32s(c.Layers, c.HiddenDim*c.Dim)
	w.w2 = r.f32s(c.Layers, c.HiddenDim*c.Dim)
	w.w3 = r.f32s(c.Layers, c.HiddenDim*c.Dim)
	w.final = r.take(4 * c.Dim)
	r.take(4 * c.SeqLen * c.HeadSize()) // legacy freq_cis tables; RoPE is recomputed
	if !c.SharedClassifier {
		w.cls = r.take(4 * c.VocabSize * c.Dim)
	}
	ck.Tensors = w.tensors(c)
}

func readV1(ck *Checkpoint, r *reader) {
	c := ck.Config
	var w weights
	w.att = r.f32s(c.Layers, c.Dim)
	w.ffn = r.f32s(c.Layers, c.Dim)
	w.final = r.take(4 * c.Dim)
	w.embed = r.take(4 * c.VocabSize * c.Dim)
	w.wq = r.f32s(c.Layers, c.Dim*c.Dim)
	w.wk = r.f32s(c.Layers, c.KVDim()*c.Dim)
	w.wv = r.f32s(c.Layers, c.KVDim()*c.Dim)
	w.wo = r.f32s(c.Layers, c.Dim*c.Dim)
	w.w1 = r.f32s(c.Layers, c.HiddenDim*c.Dim)
	w.w2 = r.f32s(c.Layers, c.HiddenDim*c.Dim)
	w.w3 = r.f32s(c.Layers, c.HiddenDim*c.Dim)
	if !c.SharedClassifier {
		w.cls = r.take(4 * c.VocabSize * c.Dim)
	}
	ck.Tensors = w.tensors(c)
}

func readV2(ck *Checkpoint, r *reader, group int) error {
	c := ck.Config
	var w weights
	w.att = r.f32s(c.Layers, c.Dim)
	w.ffn = r.f32s(c.Layers, c.Dim)
	w.final = r.take(4 * c.Dim)
	var err error
	// runq.c's init_quantized_tensors: per tensor (and per layer), the int8
	// values, then that tensor's scales.
	q := func(what string, count, n int) [][]byte {
		out := make([][]byte, count)
		for i := range out {
			vals := r.take(n)
			scales := r.take(4 * (n / group))
			out[i], err = dequantize(vals, scales, group, fmt.Sprintf("%s[%d]", what, i), err)
		}
		return out
	}
	w.embed = q("token_embedding", 1, c.VocabSize*c.Dim)[0]
	w.wq = q("wq", c.Layers, c.Dim*c.Dim)
	w.wk = q("wk", c.Layers, c.KVDim()*c.Dim)
	w.wv = q("wv", c.Layers, c.KVDim()*c.Dim)
	w.wo = q("wo", c.Layers, c.Dim*c.Dim)
	w.w1 = q("w1", c.Layers, c.HiddenDim*c.Dim)
	w.w2 = q("w2", c.Layers, c.HiddenDim*c.Dim)
	w.w3 = q("w3", c.Layers, c.HiddenDim*c.Dim)
	if !c.SharedClassifier {
		w.cls = q("wcls", 1, c.VocabSize*c.Dim)[0]
	}
	if err != nil {
		return err
	}
	ck.Tensors = w.tensors(c)
	return nil
}

// dequantize expands int8 values with one float32 scale per group into
// little-endian float32. A scale that is not finite would poison every
// activation it touches, so it is an error rather than a silent NaN.
func dequantize(vals, scales []byte, group int, what string, prev error) ([]byte, error) {
	if prev != nil {
		return nil, prev
	}
	out := make([]byte, 4*len(vals))
	le := binary.LittleEndian
	for g := 0; g < len(scales)/4; g++ {
		s := math.Float32frombits(le.Uint32(scales[4*g:]))
		if math.IsNaN(float64(s)) || math.IsInf(float64(s), 0) {
			return nil, fmt.Errorf("llama2c: %s group %d has scale %v", what, g, s)
		}
		for i := g * group; i < (g+1)*group; i++ {
			le.PutUint32(out[4*i:], math.Float32bits(float32(int8(vals[i]))*s))
		}
	}
	return out, nil
}

// tensors names and shapes the weights in the order llama.cpp's converter
// writes them.
func (w *weights) tensors(c Config) []*tensor.Tensor {
	f32 := func(name string, data []byte, dims ...int) *tensor.Tensor {
		return &tensor.Tensor{Name: name, Type: tensor.F32, Dims: dims, Data: data}
	}
	cls := w.cls
	if cls == nil {
		cls = w.embed
	}
	ts := []*tensor.Tensor{
		f32("token_embd.weight", w.embed, c.Dim, c.VocabSize),
		f32("output_norm.weight", w.final, c.Dim),
		f32("output.weight", cls, c.Dim, c.VocabSize),
	}
	for l := range c.Layers {
		p := fmt.Sprintf("blk.%d.", l)
		ts = append(ts,
			f32(p+"attn_q.weight", w.wq[l], c.Dim, c.Dim),
			f32(p+"attn_k.weight", w.wk[l], c.Dim, c.KVDim()),
			f32(p+"attn_v.weight", w.wv[l], c.Dim, c.KVDim()),
			f32(p+"attn_output.weight", w.wo[l], c.Dim, c.Dim),
			f32(p+"attn_norm.weight", w.att[l], c.Dim),
			f32(p+"ffn_gate.weight", w.w1[l], c.Dim, c.HiddenDim),
			f32(p+"ffn_down.weight", w.w2[l], c.HiddenDim, c.Dim),
			f32(p+"ffn_up.weight", w.w3[l], c.Dim, c.HiddenDim),
			f32(p+"ffn_norm.weight", w.ffn[l], c.Dim),
		)
	}
	return ts
}

// ReadConfig reads only the header of the checkpoint at path, checks it
// against the file's size without loading the weights, and returns the
// hyperparameters and the layout version (0, 1 or 2).
func ReadConfig(path string) (Config, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Config{}, 0, err
	}
	buf := make([]byte, ak42HeaderSize)
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return Config{}, 0, fmt.Errorf("llama2c: %s: %w", path, err)
	}
	h, err := parseHeader(buf[:n])
	if err != nil {
		return Config{}, 0, fmt.Errorf("%w (%s)", err, path)
	}
	if err := h.checkSize(st.Size()); err != nil {
		return Config{}, 0, fmt.Errorf("%w (%s)", err, path)
	}
	return h.cfg, h.version, nil
}

// IsCheckpoint reports whether path holds a llama2.c checkpoint. Legacy files
// have no magic number, so the test is that the header is plausible and
// implies exactly the file's size; a GGUF or any other file fails it.
func IsCheckpoint(path string) bool {
	_, _, err := ReadConfig(path)
	return err == nil
}
