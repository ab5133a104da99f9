package quant

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"tamp/gguf"
	"tamp/tensor"
)

// Target is what a quantization aims for: a single tensor type applied with
// llama.cpp's per-tensor rules, or one of llama-quantize's mixtures.
type Target struct {
	// Name is how the target was asked for: "Q4_K_M", "Q8_0", "SQ4_8".
	Name string
	// Type is the type most weight matrices get.
	Type tensor.Type
	// FileType is llama.cpp's general.file_type for the target, or -1 when
	// llama.cpp has none (tamp's own types).
	FileType int
	// ftype selects the per-tensor rules of llama_tensor_get_type.
	ftype ftype
}

// ftype mirrors llama.cpp's enum llama_ftype for the mixtures tamp writes.
type ftype int

const (
	ftypeF32     ftype = 0
	ftypeF16     ftype = 1
	ftypeQ4_0    ftype = 2
	ftypeQ4_1    ftype = 3
	ftypeQ8_0    ftype = 7
	ftypeQ5_0    ftype = 8
	ftypeQ5_1    ftype = 9
	ftypeQ2_K    ftype = 10
	ftypeQ3_K_S  ftype = 11
	ftypeQ3_K_M  ftype = 12
	ftypeQ3_K_L  ftype = 13
	ftypeQ4_K_S  ftype = 14
	ftypeQ4_K_M  ftype = 15
	ftypeQ5_K_S  ftype = 16
	ftypeQ5_K_M  ftype = 17
	ftypeQ6_K    ftype = 18
	ftypeQ2_K_S  ftype = 21
	ftypeBF16    ftype = 32
	ftypeUniform ftype = -1 // a single type with only the rules every mixture shares
)

// targets are the names --type accepts besides plain type names.
var targets = []Target{
	{"F32", tensor.F32, 0, ftypeF32},
	{"F16", tensor.F16, 1, ftypeF16},
	{"BF16", tensor.BF16, 32, ftypeBF16},
	{"Q4_0", tensor.Q4_0, 2, ftypeQ4_0},
	{"Q4_1", tensor.Q4_1, 3, ftypeQ4_1},
	{"Q5_0", tensor.Q5_0, 8, ftypeQ5_0},
	{"Q5_1", tensor.Q5_1, 9, ftypeQ5_1},
	{"Q8_0", tensor.Q8_0, 7, ftypeQ8_0},
	{"Q2_K", tensor.Q2_K, 10, ftypeQ2_K},
	{"Q2_K_S", tensor.Q2_K, 21, ftypeQ2_K_S},
	{"Q3_K_S", tensor.Q3_K, 11, ftypeQ3_K_S},
	{"Q3_K_M", tensor.Q3_K, 12, ftypeQ3_K_M},
	{"Q3_K_L", tensor.Q3_K, 13, ftypeQ3_K_L},
	{"Q4_K_S", tensor.Q4_K, 14, ftypeQ4_K_S},
	{"Q4_K_M", tensor.Q4_K, 15, ftypeQ4_K_M},
	{"Q5_K_S", tensor.Q5_K, 16, ftypeQ5_K_S},
	{"Q5_K_M", tensor.Q5_K, 17, ftypeQ5_K_M},
	{"Q6_K", tensor.Q6_K, 18, ftypeQ6_K},
	// The plain K-quant names are a single type: llama.cpp has no mixture
	// of that exact name (llama-quantize maps Q3_K/Q4_K/Q5_K to the _M
	// mixtures; ask for those by name). Their file type is the mixture
	// that is "mostly" that type.
	{"Q3_K", tensor.Q3_K, 11, ftypeUniform},
	{"Q4_K", tensor.Q4_K, 14, ftypeUniform},
	{"Q5_K", tensor.Q5_K, 16, ftypeUniform},
}

// ParseTarget looks up a --type name: one of llama-quantize's file types
// (Q4_K_M, Q8_0, …), a plain K-quant (Q4_K) or one of tamp's SQ types.
// Names are case-insensitive.
func ParseTarget(name string) (Target, error) {
	up := strings.ToUpper(name)
	for _, t := range targets {
		if t.Name == up {
			return t, nil
		}
	}
	for _, t := range SQTypes() {
		if t.String() == up {
			return Target{Name: up, Type: t, FileType: -1, ftype: ftypeUniform}, nil
		}
	}
	return Target{}, fmt.Errorf("quant: unknown type %q (known: %s)", name, TargetNames())
}

// TargetNames lists the names ParseTarget accepts.
func TargetNames() string {
	var names []string
	for _, t := range targets {
		names = append(names, t.Name)
	}
	for _, t := range SQTypes() {
		names = append(names, t.String())
	}
	return strings.Join(names, ", ")
}

// Quantizable reports whether llama-quantize would quantize tensor t: a
// weight of two or more dimensions that is not the MoE router.
func Quantizable(t *gguf.Tensor) bool {
	if !strings.HasSuffix(t.Name, ".weight") || len(t.Dims) < 2 {
		return false
	}
	// llama.cpp keeps the router (ffn_gate_inp) in full precision, and
	// position/type embeddings are looked up, never multiplied.
	for _, skip := range []string{"ffn_gate_inp.weight", "position_embd", "token_types"} {
		if strings.Contains(t.Name, skip) {
			return false
		}
	}
	return true
}

// ruleState is llama.cpp's quantize_state_impl: counters that let the rules
// tell early layers from late ones.
type ruleState struct {
	nAttnV, iAttnV   int
	nFFNDown, iFFN   int
	nFFNGate, iGate  int
	nFFNUp, iUp      int
	hasOutput        bool
	hasImatrix       bool
	nGQA, nExpert    int
	nLayer           int
	layerOf          func(name string) int
	fallbacks        int
	fallbackMessages []string
}

var blkRe = regexp.MustCompile(`^blk\.(\d+)\.`)

func layerOf(name string) int {
	m := blkRe.FindStringSubmatch(name)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func newRuleState(f *gguf.File, hasImatrix bool) *ruleState {
	s := &ruleState{hasImatrix: hasImatrix, nGQA: 1, nExpert: 0}
	arch := f.Architecture()
	if h, ok := f.Uint(arch + ".attention.head_count"); ok {
		if kv, ok := f.Uint(arch + ".attention.head_count_kv"); ok && kv > 0 {
			s.nGQA = int(h / kv)
		}
	}
	if e, ok := f.Uint(arch + ".expert_count"); ok {
		s.nExpert = int(e)
	}
	if n, ok := f.Uint(arch + ".block_count"); ok {
		s.nLayer = int(n)
	}
	for _, t := range f.Tensors {
		switch {
		case t.Name == "output.weight":
			s.hasOutput = true
		case strings.Contains(t.Name, "attn_v.weight"):
			s.nAttnV++
		case strings.Contains(t.Name, "ffn_down"):
			s.nFFNDown++
		case strings.Contains(t.Name, "ffn_gate") && !strings.Contains(t.Name, "ffn_gate_inp"):
			s.nFFNGate++
		case strings.Contains(t.Name, "ffn_up"):
			s.nFFNUp++
		}
	}
	return s
}

// useMoreBits is llama.cpp's use_more_bits: the first and last eighth of the
// layers and every third one between get more bits.
func useMoreBits(i, n int) bool {
	return i < n/8 || i >= 7*n/8 || (i-n/8)%3 == 2
}

// tensorType is llama.cpp's llama_tensor_get_type for the file types tamp
// writes: the type tensor t gets under target tg. The counters in s advance
// as in llama.cpp, so tensors must be visited in file order.
func (s *ruleState) tensorType(tg Target, name string, cols int) (tensor.Type, string) {
	nt := tg.Type
	ft := tg.ftype
	// layer returns the layer index for MoE files from the name, as llama.cpp
	// does, and the running counter otherwise.
	layer := func(counter, n int) (int, int) {
		if s.nExpert > 1 {
			if l := layerOf(name); l >= 0 {
				return l, s.nLayer
			}
		}
		return counter, n
	}
	note := ""
	switch {
	case name == "output.weight" || (!s.hasOutput && name == "token_embd.weight"):
		bs := blockSize(nt)
		switch {
		case cols%bs != 0:
			nt = tensor.Q8_0
		case nt != tensor.Q8_0:
			nt = tensor.Q6_K
		}
		if nt != tg.Type {
			note = "output matrix kept wider (llama.cpp's rule)"
		}
	case name == "token_embd.weight":
		// No rule for the file types tamp writes.
	case strings.Contains(name, "attn_v.weight"):
		switch {
		case ft == ftypeQ2_K:
			nt = tensor.Q3_K
			if s.nGQA >= 4 {
				nt = tensor.Q4_K
			}
		case ft == ftypeQ2_K_S && s.nGQA >= 4:
			nt = tensor.Q4_K
		case ft == ftypeQ3_K_M:
			nt = tensor.Q4_K
			if s.iAttnV < 2 {
				nt = tensor.Q5_K
			}
		case ft == ftypeQ3_K_L:
			nt = tensor.Q5_K
		case (ft == ftypeQ4_K_M || ft == ftypeQ5_K_M) && useMoreBits(s.iAttnV, s.nAttnV):
			nt = tensor.Q6_K
		case ft == ftypeQ4_K_S && s.iAttnV < 4:
			nt = tensor.Q5_K
		}
		if s.nExpert == 8 {
			nt = tensor.Q8_0
		}
		s.iAttnV++
	case strings.Contains(name, "attn_k.weight"):
		if s.nExpert == 8 {
			nt = tensor.Q8_0
		}
	case strings.Contains(name, "ffn_down"):
		iLayer, nLayer := layer(s.iFFN, s.nFFNDown)
		switch {
		case ft == ftypeQ2_K:
			nt = tensor.Q3_K
		case ft == ftypeQ2_K_S:
			if iLayer < nLayer/8 {
				nt = tensor.Q4_K
			}
		case ft == ftypeQ3_K_M:
			switch {
			case iLayer < nLayer/16:
				nt = tensor.Q5_K
			default:
				nt = tensor.Q4_K // llama.cpp: Q4_K unless Falcon
			}
		case ft == ftypeQ3_K_L:
			nt = tensor.Q5_K
		case ft == ftypeQ4_K_M:
			if useMoreBits(iLayer, nLayer) {
				nt = tensor.Q6_K
			}
		case ft == ftypeQ5_K_M && useMoreBits(iLayer, nLayer):
			nt = tensor.Q6_K
		case ft == ftypeQ4_K_S && iLayer < nLayer/8:
			nt = tensor.Q5_K
		case (ft == ftypeQ4_0 || ft == ftypeQ5_0) && s.hasImatrix && iLayer < nLayer/8:
			nt = tensor.Q4_1
			if ft == ftypeQ5_0 {
				nt = tensor.Q5_1
			}
		}
		s.iFFN++
	case strings.Contains(name, "attn_output.weight"):
		if s.nExpert == 8 {
			switch ft {
			case ftypeQ2_K, ftypeQ3_K_S, ftypeQ3_K_M, ftypeQ4_K_S, ftypeQ4_K_M:
				nt = tensor.Q5_K
			}
		} else {
			switch ft {
			case ftypeQ2_K:
				nt = tensor.Q3_K
			case ftypeQ3_K_M:
				nt = tensor.Q4_K
			case ftypeQ3_K_L:
				nt = tensor.Q5_K
			}
		}
	case strings.Contains(name, "attn_qkv.weight"):
		switch ft {
		case ftypeQ3_K_M, ftypeQ3_K_L:
			nt = tensor.Q4_K
		case ftypeQ4_K_M:
			nt = tensor.Q5_K
		case ftypeQ5_K_M:
			nt = tensor.Q6_K
		}
	case strings.Contains(name, "ffn_gate"):
		s.iGate++
	case strings.Contains(name, "ffn_up"):
		s.iUp++
	}
	if note == "" && nt != tg.Type {
		note = fmt.Sprintf("%s by llama.cpp's %s rule", nt, tg.Name)
	}
	return s.fallback(nt, cols, name, note)
}

// fallback replaces a type whose blocks do not divide the rows with the
// nearest one that does, as llama.cpp does (where llama.cpp throws, for the
// legacy types and tamp's, tamp carries on with the next wider type that
// fits, and F16 last).
func (s *ruleState) fallback(t tensor.Type, cols int, name, note string) (tensor.Type, string) {
	if cols%blockSize(t) == 0 {
		return t, note
	}
	want := t
	var nt tensor.Type
	switch t {
	case tensor.Q2_K, tensor.Q3_K:
		// llama.cpp falls back to IQ4_NL, which tamp cannot compute with;
		// Q4_0 has the same size (4.5 bits per weight) and block (32).
		nt = tensor.Q4_0
	case tensor.Q4_K:
		nt = tensor.Q5_0
	case tensor.Q5_K:
		nt = tensor.Q5_1
	case tensor.Q6_K:
		nt = tensor.Q8_0
	default:
		nt = nextWiderFitting(t, cols)
	}
	if cols%blockSize(nt) != 0 {
		nt = tensor.F16
	}
	s.fallbacks++
	msg := fmt.Sprintf("fallback: rows of %d do not divide into %s blocks of %d; using %s", cols, want, blockSize(want), nt)
	s.fallbackMessages = append(s.fallbackMessages, name+": "+msg)
	return nt, msg
}

// fallbackLadder is the order tamp widens a type whose blocks do not fit.
var fallbackLadder = []tensor.Type{tensor.Q4_0, tensor.Q4_1, tensor.Q5_0, tensor.Q5_1, tensor.Q8_0, tensor.F16}

// nextWiderFitting returns the smallest standard type at least as wide as t
// (in bits per weight) whose blocks divide rows of cols, or F16.
func nextWiderFitting(t tensor.Type, cols int) tensor.Type {
	bpw := bitsPerWeight(t)
	cands := append([]tensor.Type(nil), fallbackLadder...)
	sort.SliceStable(cands, func(i, j int) bool { return bitsPerWeight(cands[i]) < bitsPerWeight(cands[j]) })
	for _, c := range cands {
		if bitsPerWeight(c) >= bpw && cols%blockSize(c) == 0 {
			return c
		}
	}
	return tensor.F16
}

func blockSize(t tensor.Type) int {
	ti, ok := t.Info()
	if !ok {
		return 1
	}
	return ti.BlockSize
}

func bitsPerWeight(t tensor.Type) float64 {
	ti, ok := t.Info()
	if !ok {
		return 0
	}
	return ti.BitsPerWeight()
}
