package llama2c

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
)

// synth is a random llama2.c model held as llama2.c's flat arrays (layers
// concatenated), with writers for each checkpoint layout. The tests encode it
// here, independently of the package's reader, and compare what comes back.
type synth struct {
	cfg                         Config
	embed, att, ffn, final, cls []float32
	wq, wk, wv, wo, w1, w2, w3  []float32
}

func newSynth(cfg Config, seed uint64) *synth {
	r := rand.New(rand.NewPCG(seed, 99))
	gen := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64() * 0.1)
		}
		return v
	}
	d, kv, h, l := cfg.Dim, cfg.KVDim(), cfg.HiddenDim, cfg.Layers
	m := &synth{cfg: cfg,
		embed: gen(cfg.VocabSize * d), att: gen(l * d), ffn: gen(l * d), final: gen(d),
		wq: gen(l * d * d), wk: gen(l * kv * d), wv: gen(l * kv * d), wo: gen(l * d * d),
		w1: gen(l * h * d), w2: gen(l * d * h), w3: gen(l * h * d),
	}
	if !cfg.SharedClassifier {
		m.cls = gen(cfg.VocabSize * d)
	}
	return m
}

func putF32(b *bytes.Buffer, vs ...[]float32) {
	for _, v := range vs {
		for _, x := range v {
			binary.Write(b, binary.LittleEndian, x)
		}
	}
}

func putI32(b *bytes.Buffer, vs ...int) {
	for _, v := range vs {
		binary.Write(b, binary.LittleEndian, int32(v))
	}
}

func (m *synth) params(b *bytes.Buffer, vocab int) {
	c := m.cfg
	putI32(b, c.Dim, c.HiddenDim, c.Layers, c.Heads, c.KVHeads, vocab, c.SeqLen)
}

// legacy writes export.py's legacy_export layout.
func (m *synth) legacy() []byte {
	var b bytes.Buffer
	vocab := m.cfg.VocabSize
	if !m.cfg.SharedClassifier {
		vocab = -vocab
	}
	m.params(&b, vocab)
	putF32(&b, m.embed, m.att, m.wq, m.wk, m.wv, m.wo, m.ffn, m.w1, m.w2, m.w3, m.final)
	rope := make([]float32, m.cfg.SeqLen*m.cfg.HeadSize()/2)
	for i := range rope {
		rope[i] = float32(i) // distinctive, so a reader that keeps it is caught
	}
	putF32(&b, rope, rope)
	putF32(&b, m.cls)
	return b.Bytes()
}

func (m *synth) ak42(version int, group int) *bytes.Buffer {
	var b bytes.Buffer
	putI32(&b, Magic, version)
	m.params(&b, m.cfg.VocabSize)
	shared := byte(0)
	if m.cfg.SharedClassifier {
		shared = 1
	}
	b.WriteByte(shared)
	if version == 2 {
		putI32(&b, group)
	}
	b.Write(make([]byte, 256-b.Len()))
	return &b
}

// v1 writes export.py's version1_export layout.
func (m *synth) v1() []byte {
	b := m.ak42(1, 0)
	putF32(b, m.att, m.ffn, m.final, m.embed, m.wq, m.wk, m.wv, m.wo, m.w1, m.w2, m.w3, m.cls)
	return b.Bytes()
}

// quantize is export.py's quantize_q80: symmetric absmax/127 per group,
// round half to even, all in float32.
func quantize(w []float32, group int) (q []int8, s []float32) {
	q = make([]int8, len(w))
	s = make([]float32, len(w)/group)
	for g := range s {
		var mx float32
		for _, x := range w[g*group : (g+1)*group] {
			mx = max(mx, float32(math.Abs(float64(x))))
		}
		s[g] = mx / 127
		for i := g * group; i < (g+1)*group; i++ {
			q[i] = int8(math.RoundToEven(float64(w[i] / s[g])))
		}
	}
	return q, s
}

func dequant(q []int8, s []float32, group int) []float32 {
	out := make([]float32, len(q))
	for i := range q {
		out[i] = float32(q[i]) * s[i/group]
	}
	return out
}

// v2 writes runq.c's version 2 layout: for each tensor and layer, its int8
// values, then its scales. It also returns what the reader must produce:
// the weights after quantization.
func (m *synth) v2(group int) ([]byte, *synth) {
	b := m.ak42(2, group)
	putF32(b, m.att, m.ffn, m.final)
	out := *m
	c := m.cfg
	qt := func(w []float32, layers int) []float32 {
		n := len(w) / layers
		var deq []float32
		for l := range layers {
			q, s := quantize(w[l*n:(l+1)*n], group)
			binary.Write(b, binary.LittleEndian, q)
			putF32(b, s)
			deq = append(deq, dequant(q, s, group)...)
		}
		return deq
	}
	out.embed = qt(m.embed, 1)
	out.wq = qt(m.wq, c.Layers)
	out.wk = qt(m.wk, c.Layers)
	out.wv = qt(m.wv, c.Layers)
	out.wo = qt(m.wo, c.Layers)
	out.w1 = qt(m.w1, c.Layers)
	out.w2 = qt(m.w2, c.Layers)
	out.w3 = qt(m.w3, c.Layers)
	if m.cls != nil {
		out.cls = qt(m.cls, 1)
	}
	return b.Bytes(), &out
}

// want lists the tensors (name → float32 values) the reader must produce.
func (m *synth) want() map[string][]float32 {
	c := m.cfg
	d, kv, h := c.Dim, c.KVDim(), c.HiddenDim
	cls := m.cls
	if cls == nil {
		cls = m.embed
	}
	w := map[string][]float32{
		"token_embd.weight":  m.embed,
		"output_norm.weight": m.final,
		"output.weight":      cls,
	}
	for l := range c.Layers {
		p := fmt.Sprintf("blk.%d.", l)
		w[p+"attn_norm.weight"] = m.att[l*d : (l+1)*d]
		w[p+"ffn_norm.weight"] = m.ffn[l*d : (l+1)*d]
		w[p+"attn_q.weight"] = m.wq[l*d*d : (l+1)*d*d]
		w[p+"attn_k.weight"] = m.wk[l*kv*d : (l+1)*kv*d]
		w[p+"attn_v.weight"] = m.wv[l*kv*d : (l+1)*kv*d]
		w[p+"attn_output.weight"] = m.wo[l*d*d : (l+1)*d*d]
		w[p+"ffn_gate.weight"] = m.w1[l*h*d : (l+1)*h*d]
		w[p+"ffn_down.weight"] = m.w2[l*h*d : (l+1)*h*d]
		w[p+"ffn_up.weight"] = m.w3[l*h*d : (l+1)*h*d]
	}
	return w
}

func floats(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// tokFile encodes a llama2.c tokenizer.
func tokFile(maxLen int, pieces []string, scores []float32) []byte {
	var b bytes.Buffer
	putI32(&b, maxLen)
	for i, p := range pieces {
		putF32(&b, scores[i:i+1])
		putI32(&b, len(p))
		b.WriteString(p)
	}
	return b.Bytes()
}

// synthVocab is a small vocabulary shaped like tok512.bin: unk, BOS, EOS as
// llama2.c writes them, byte tokens, then merges with spaces.
func synthVocab(n int) ([]string, []float32) {
	pieces := []string{"<unk>", "\n<s>\n", "\n</s>\n", "<0x00>", "<0x0A>", "<0xFF>", ""}
	for i := len(pieces); i < n; i++ {
		pieces = append(pieces, fmt.Sprintf(" w%d", i))
	}
	pieces = pieces[:n]
	scores := make([]float32, n)
	for i := range scores {
		scores[i] = -float32(i)
	}
	return pieces, scores
}

// smallConfig is a GQA model whose FFN rows (20) are not a multiple of the
// version 2 group size used with it (8), so groups straddle rows.
var smallConfig = Config{Dim: 16, HiddenDim: 20, Layers: 2, Heads: 4, KVHeads: 2, VocabSize: 24, SeqLen: 6, SharedClassifier: true}
