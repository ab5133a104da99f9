package model

import (
	"fmt"
	"math"
	"reflect"
	"strings"

	"tamp/gguf"
	"tamp/tensor"
)

// bindTensors fills every *tensor.Tensor field of the struct dst points to with
// the GGUF tensor named prefix + the field's `gguf:"name[,optional]"` tag.
func bindTensors(f *gguf.File, prefix string, dst any) error {
	v := reflect.ValueOf(dst).Elem()
	typ := v.Type()
	tensorPtr := reflect.TypeFor[*tensor.Tensor]()
	for i := range typ.NumField() {
		field := typ.Field(i)
		tag, ok := field.Tag.Lookup("gguf")
		if !ok || field.Type != tensorPtr {
			continue
		}
		name, opt, _ := strings.Cut(tag, ",")
		t, err := lookupTensor(f, prefix+name)
		if err != nil {
			return err
		}
		if t == nil {
			if opt != "optional" {
				return fmt.Errorf("tensor %s%s is missing", prefix, name)
			}
			continue
		}
		v.Field(i).Set(reflect.ValueOf(t))
	}
	return nil
}

// lookupTensor returns the named tensor ready for compute, nil if absent.
func lookupTensor(f *gguf.File, name string) (*tensor.Tensor, error) {
	gt, ok := f.Tensor(name)
	if !ok {
		return nil, nil
	}
	t := gt.Tensor()
	if err := t.Check(); err != nil {
		return nil, err
	}
	if !tensor.Supported(t.Type) {
		return nil, fmt.Errorf("tensor %s has type %s, which tamp cannot compute with", name, t.Type)
	}
	return t, nil
}

// hparams reads an architecture's hyperparameters, keyed "ARCH.name".
type hparams struct {
	f    *gguf.File
	arch string
	err  error
}

func (h *hparams) uint(name string, def int, required bool) int {
	key := h.arch + "." + name
	v, ok := h.f.Uint(key)
	if !ok {
		if _, present := h.f.Lookup(key); present {
			h.fail("metadata %s is not a non-negative integer", key)
		} else if required {
			h.fail("metadata %s is missing", key)
		}
		return def
	}
	if v > math.MaxInt32 {
		h.fail("metadata %s = %d is out of range", key, v)
		return def
	}
	return int(v)
}

func (h *hparams) float(name string, def float32) float32 {
	key := h.arch + "." + name
	v, ok := h.f.Float(key)
	if !ok {
		if _, present := h.f.Lookup(key); present {
			h.fail("metadata %s is not a number", key)
		}
		return def
	}
	return float32(v)
}

func (h *hparams) fail(format string, args ...any) {
	if h.err == nil {
		h.err = fmt.Errorf(format, args...)
	}
}

// readConfig reads the hyperparameters llama-family architectures share.
func readConfig(f *gguf.File, arch string) (Config, error) {
	h := &hparams{f: f, arch: arch}
	c := Config{Arch: arch}
	c.Dim = h.uint("embedding_length", 0, true)
	c.Layers = h.uint("block_count", 0, true)
	c.FFN = h.uint("feed_forward_length", 0, true)
	c.Heads = h.uint("attention.head_count", 0, true)
	c.KVHeads = h.uint("attention.head_count_kv", c.Heads, false)
	c.ContextLen = h.uint("context_length", 0, false)
	c.RMSEps = h.float("attention.layer_norm_rms_epsilon", 1e-5)
	c.RopeBase = h.float("rope.freq_base", 10000)
	c.Experts = h.uint("expert_count", 0, false)
	c.ExpertsUsed = h.uint("expert_used_count", 0, false)
	if h.err != nil {
		return c, h.err
	}
	if c.Dim <= 0 || c.Layers <= 0 || c.Heads <= 0 || c.KVHeads <= 0 || c.FFN <= 0 {
		return c, fmt.Errorf("hyperparameters must be positive: embedding %d, blocks %d, heads %d, kv heads %d, ffn %d",
			c.Dim, c.Layers, c.Heads, c.KVHeads, c.FFN)
	}
	if c.Dim%c.Heads != 0 {
		return c, fmt.Errorf("embedding width %d is not a multiple of the head count %d", c.Dim, c.Heads)
	}
	if c.Heads%c.KVHeads != 0 {
		return c, fmt.Errorf("head count %d is not a multiple of the KV head count %d", c.Heads, c.KVHeads)
	}
	c.HeadDim = h.uint("attention.key_length", c.Dim/c.Heads, false)
	if v := h.uint("attention.value_length", c.HeadDim, false); v != c.HeadDim {
		return c, fmt.Errorf("key length %d differs from value length %d; unsupported", c.HeadDim, v)
	}
	c.RopeDim = h.uint("rope.dimension_count", c.HeadDim, false)
	if h.err != nil {
		return c, h.err
	}
	if c.RopeDim > c.HeadDim || c.RopeDim%2 != 0 {
		return c, fmt.Errorf("rope dimension %d must be even and at most the head size %d", c.RopeDim, c.HeadDim)
	}
	if !(c.RMSEps > 0) || !(c.RopeBase > 0) {
		return c, fmt.Errorf("rms epsilon %g and rope base %g must be positive", c.RMSEps, c.RopeBase)
	}
	c.RopeScale = 1
	if typ, _ := f.String(arch + ".rope.scaling.type"); typ == "linear" {
		factor := h.float("rope.scaling.factor", 1)
		if !(factor > 0) {
			return c, fmt.Errorf("rope scaling factor %g must be positive", factor)
		}
		c.RopeScale = 1 / factor
	} else if typ != "" && typ != "none" && typ != "llama3" {
		return c, fmt.Errorf("rope scaling type %q is not supported (linear, llama3)", typ)
	}
	if c.Experts > 0 && (c.ExpertsUsed <= 0 || c.ExpertsUsed > c.Experts) {
		return c, fmt.Errorf("expert_used_count %d must be in [1, expert_count %d]", c.ExpertsUsed, c.Experts)
	}
	return c, h.err
}

// bindWeights binds the tensors of a llama-family model and checks their shapes.
func bindWeights(f *gguf.File, c Config) (*Model, error) {
	m := &Model{Config: c}
	var err error
	if m.TokenEmbd, err = lookupTensor(f, "token_embd.weight"); err != nil {
		return nil, err
	}
	if m.TokenEmbd == nil {
		return nil, fmt.Errorf("tensor token_embd.weight is missing")
	}
	m.Vocab = m.TokenEmbd.Rows()
	if m.OutputNorm, err = lookupTensor(f, "output_norm.weight"); err != nil {
		return nil, err
	}
	if m.OutputNorm == nil {
		return nil, fmt.Errorf("tensor output_norm.weight is missing")
	}
	if m.Output, err = lookupTensor(f, "output.weight"); err != nil {
		return nil, err
	}
	if m.Output == nil { // tied embeddings
		m.Output = m.TokenEmbd
	}
	if err := m.bindRopeFreqs(f); err != nil {
		return nil, err
	}
	check := func(t *tensor.Tensor, name string, dims ...int) error {
		if t == nil {
			return nil
		}
		if len(t.Dims) > len(dims) {
			return fmt.Errorf("tensor %s has shape %v, want %v", name, t.Dims, dims)
		}
		for i, d := range dims {
			got := 1
			if i < len(t.Dims) {
				got = t.Dims[i]
			}
			if got != d {
				return fmt.Errorf("tensor %s has shape %v, want %v", name, t.Dims, dims)
			}
		}
		return nil
	}
	qDim, kvDim := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	if err := firstErr(
		check(m.TokenEmbd, "token_embd.weight", c.Dim, m.Vocab),
		check(m.OutputNorm, "output_norm.weight", c.Dim),
		check(m.Output, "output.weight", c.Dim, m.Vocab),
	); err != nil {
		return nil, err
	}
	for _, t := range f.Tensors {
		li, _, _, ok := ParseExpertTensorName(t.Name)
		switch {
		case !ok:
		case c.Experts == 0:
			return nil, fmt.Errorf("tensor %s is one expert's matrix, but the model declares no experts (expert_count is 0)", t.Name)
		case li >= c.Layers:
			return nil, fmt.Errorf("tensor %s is in layer %d, but the model has %d layers", t.Name, li, c.Layers)
		}
	}
	single := perExpertTensors(f)
	m.Blocks = make([]Layer, c.Layers)
	for i := range m.Blocks {
		l := &m.Blocks[i]
		p := fmt.Sprintf("blk.%d.", i)
		if err := bindTensors(f, p, l); err != nil {
			return nil, err
		}
		if err := firstErr(
			check(l.AttnNorm, p+"attn_norm.weight", c.Dim),
			check(l.Wq, p+"attn_q.weight", c.Dim, qDim),
			check(l.Wk, p+"attn_k.weight", c.Dim, kvDim),
			check(l.Wv, p+"attn_v.weight", c.Dim, kvDim),
			check(l.Wo, p+"attn_output.weight", qDim, c.Dim),
			check(l.Bq, p+"attn_q.bias", qDim),
			check(l.Bk, p+"attn_k.bias", kvDim),
			check(l.Bv, p+"attn_v.bias", kvDim),
			check(l.Bo, p+"attn_output.bias", c.Dim),
			check(l.FFNNorm, p+"ffn_norm.weight", c.Dim),
		); err != nil {
			return nil, err
		}
		for _, b := range []*tensor.Tensor{l.AttnNorm, l.FFNNorm, l.Bq, l.Bk, l.Bv, l.Bo} {
			if b != nil && b.Type != tensor.F32 {
				return nil, fmt.Errorf("tensor %s is %s; norms and biases must be F32", b.Name, b.Type)
			}
		}
		if c.Experts == 0 {
			if l.FFNGate == nil || l.FFNUp == nil || l.FFNDown == nil {
				return nil, fmt.Errorf("layer %d lacks a feed-forward (ffn_gate, ffn_up, ffn_down) and the model declares no experts", i)
			}
			if err := firstErr(
				check(l.FFNGate, p+"ffn_gate.weight", c.Dim, c.FFN),
				check(l.FFNUp, p+"ffn_up.weight", c.Dim, c.FFN),
				check(l.FFNDown, p+"ffn_down.weight", c.FFN, c.Dim),
			); err != nil {
				return nil, err
			}
			continue
		}
		if l.FFNRouter == nil {
			return nil, fmt.Errorf("layer %d lacks expert tensors: no router %sffn_gate_inp.weight though expert_count is %d", i, p, c.Experts)
		}
		if err := check(l.FFNRouter, p+"ffn_gate_inp.weight", c.Dim, c.Experts); err != nil {
			return nil, err
		}
		if err := bindExperts(c, l, i, single[i], check); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// expertSlice views expert e of a stacked [in, out, experts] tensor as a matrix.
func expertSlice(t *tensor.Tensor, e int) *tensor.Tensor {
	size := t.RowBytes() * t.Dims[1]
	return &tensor.Tensor{
		Name:   fmt.Sprintf("%s[%d]", t.Name, e),
		Parent: t,
		Type:   t.Type,
		Dims:   []int{t.Dims[0], t.Dims[1]},
		Data:   t.Data[e*size : (e+1)*size],
	}
}

// bindRopeFreqs reads llama3-style frequency factors: the rope_freqs tensor when
// the converter stored one, else computed from the rope.scaling metadata.
func (m *Model) bindRopeFreqs(f *gguf.File) error {
	t, err := lookupTensor(f, "rope_freqs.weight")
	if err != nil {
		return err
	}
	if t != nil {
		if t.Elements() != m.RopeDim/2 {
			return fmt.Errorf("tensor rope_freqs.weight has %d elements, want %d", t.Elements(), m.RopeDim/2)
		}
		m.ropeFreqs, err = tensor.DequantizeTensor(t)
		return err
	}
	if typ, _ := f.String(m.Arch + ".rope.scaling.type"); typ != "llama3" {
		return nil
	}
	h := &hparams{f: f, arch: m.Arch}
	factor := float64(h.float("rope.scaling.factor", 8))
	low := float64(h.float("rope.scaling.low_freq_factor", 1))
	high := float64(h.float("rope.scaling.high_freq_factor", 4))
	orig := float64(h.uint("rope.scaling.original_context_length", 8192, false))
	if h.err != nil {
		return h.err
	}
	if !(factor > 0) || !(high > low) || !(orig > 0) {
		return fmt.Errorf("llama3 rope scaling needs factor > 0 and high_freq_factor > low_freq_factor")
	}
	lowWave, highWave := orig/low, orig/high
	m.ropeFreqs = make([]float32, m.RopeDim/2)
	for i := range m.ropeFreqs {
		freq := math.Pow(float64(m.RopeBase), -2*float64(i)/float64(m.RopeDim))
		wave := 2 * math.Pi / freq
		switch {
		case wave < highWave:
			m.ropeFreqs[i] = 1
		case wave > lowWave:
			m.ropeFreqs[i] = float32(factor)
		default:
			smooth := (orig/wave - low) / (high - low)
			m.ropeFreqs[i] = float32(1 / ((1-smooth)/factor + smooth))
		}
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
