package model

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"tamp/gguf"
	"tamp/tensor"
)

// Expert tensors come in two layouts, chosen per layer and per kind (gate,
// up, down) independently:
//
//   - stacked: blk.N.ffn_gate_exps.weight of shape [in, out, experts], one
//     type for all experts (llama.cpp's current layout);
//   - per expert: blk.N.ffn_gate.E.weight of shape [in, out] for each expert
//     E (llama.cpp's older layout, and what tamp quantize writes when a bit
//     allocation gives a layer's experts different types).
//
// Both bind to one *tensor.Tensor per expert; a stacked tensor's experts are
// views of it whose Parent is the stacked tensor.

// expertKinds are the expert matrices: the stacked tensor's kind and the
// per-expert name's kind, in gate, up, down order.
var expertKinds = [3]struct{ stacked, single string }{
	{"ffn_gate_exps", "ffn_gate"},
	{"ffn_up_exps", "ffn_up"},
	{"ffn_down_exps", "ffn_down"},
}

// ExpertTensorName is the per-expert tensor name of expert e in layer l for
// kind "ffn_gate", "ffn_up" or "ffn_down": blk.L.KIND.E.weight.
func ExpertTensorName(layer int, kind string, e int) string {
	return fmt.Sprintf("blk.%d.%s.%d.weight", layer, kind, e)
}

// ParseExpertTensorName splits a per-expert tensor name blk.L.KIND.E.weight
// (KIND one of ffn_gate, ffn_up, ffn_down); ok is false for any other name.
func ParseExpertTensorName(name string) (layer int, kind string, e int, ok bool) {
	rest, found := strings.CutPrefix(name, "blk.")
	if !found {
		return 0, "", 0, false
	}
	rest, found = strings.CutSuffix(rest, ".weight")
	if !found {
		return 0, "", 0, false
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return 0, "", 0, false
	}
	l, err1 := strconv.Atoi(parts[0])
	x, err2 := strconv.Atoi(parts[2])
	if err1 != nil || err2 != nil || l < 0 || x < 0 || parts[0] != strconv.Itoa(l) || parts[2] != strconv.Itoa(x) {
		return 0, "", 0, false
	}
	for _, k := range expertKinds {
		if parts[1] == k.single {
			return l, k.single, x, true
		}
	}
	return 0, "", 0, false
}

// NumExperts is the number of experts bound in the layer (0 if dense).
func (l *Layer) NumExperts() int { return len(l.experts) }

// Expert returns expert e's gate, up and down matrices: views of the stacked
// tensors, or the expert's own tensors when the file stores them apart.
func (l *Layer) Expert(e int) (gate, up, down *tensor.Tensor) {
	x := l.experts[e]
	return x.gate, x.up, x.down
}

// perExpertTensors indexes a file's per-expert tensors by layer and kind.
func perExpertTensors(f *gguf.File) map[int]map[string]map[int]*gguf.Tensor {
	idx := map[int]map[string]map[int]*gguf.Tensor{}
	for _, t := range f.Tensors {
		l, kind, e, ok := ParseExpertTensorName(t.Name)
		if !ok {
			continue
		}
		if idx[l] == nil {
			idx[l] = map[string]map[int]*gguf.Tensor{}
		}
		if idx[l][kind] == nil {
			idx[l][kind] = map[int]*gguf.Tensor{}
		}
		idx[l][kind][e] = t
	}
	return idx
}

// bindExperts binds layer li's experts, each kind from its stacked tensor or
// from per-expert tensors, and checks that every expert is there exactly
// once with the shape the configuration calls for.
func bindExperts(c Config, l *Layer, li int, single map[string]map[int]*gguf.Tensor, check func(*tensor.Tensor, string, ...int) error) error {
	p := fmt.Sprintf("blk.%d.", li)
	stacked := [3]*tensor.Tensor{l.FFNGateExps, l.FFNUpExps, l.FFNDownExps}
	l.experts = make([]expert, c.Experts)
	for k, kind := range expertKinds {
		in, out := c.Dim, c.FFN
		if k == 2 {
			in, out = c.FFN, c.Dim
		}
		per := single[kind.single]
		var views []*tensor.Tensor
		switch {
		case stacked[k] != nil && len(per) > 0:
			return fmt.Errorf("layer %d has both %s%s.weight and per-expert %s%s.E.weight tensors; a file must use one layout per tensor kind",
				li, p, kind.stacked, p, kind.single)
		case stacked[k] != nil:
			if err := check(stacked[k], p+kind.stacked+".weight", in, out, c.Experts); err != nil {
				return err
			}
			views = make([]*tensor.Tensor, c.Experts)
			for e := range views {
				views[e] = expertSlice(stacked[k], e)
			}
		case len(per) > 0:
			var err error
			if views, err = bindPerExpert(c, li, kind.single, per, in, out, check); err != nil {
				return err
			}
		default:
			return fmt.Errorf("layer %d lacks expert tensors for %s: neither %s%s.weight nor %s%s.E.weight (expert_count is %d)",
				li, kind.single, p, kind.stacked, p, kind.single, c.Experts)
		}
		for e, v := range views {
			switch k {
			case 0:
				l.experts[e].gate = v
			case 1:
				l.experts[e].up = v
			case 2:
				l.experts[e].down = v
			}
		}
	}
	return nil
}

// bindPerExpert binds the per-expert tensors of one kind in one layer: all
// of experts 0 … Experts−1, no others, each an [in, out] matrix.
func bindPerExpert(c Config, li int, kind string, per map[int]*gguf.Tensor, in, out int, check func(*tensor.Tensor, string, ...int) error) ([]*tensor.Tensor, error) {
	var found, extra []int
	for e := range per {
		if e < c.Experts {
			found = append(found, e)
		} else {
			extra = append(extra, e)
		}
	}
	sort.Ints(found)
	sort.Ints(extra)
	if len(extra) > 0 {
		return nil, fmt.Errorf("tensor %s names expert %d, but expert_count is %d",
			ExpertTensorName(li, kind, extra[0]), extra[0], c.Experts)
	}
	views := make([]*tensor.Tensor, c.Experts)
	for e := range views {
		name := ExpertTensorName(li, kind, e)
		gt, ok := per[e]
		if !ok {
			return nil, fmt.Errorf("tensor %s is missing: layer %d stores its %s per expert and has experts %v of the %d that expert_count declares",
				name, li, kind, found, c.Experts)
		}
		t := gt.Tensor()
		if err := t.Check(); err != nil {
			return nil, err
		}
		if !tensor.Supported(t.Type) {
			return nil, fmt.Errorf("tensor %s has type %s, which tamp cannot compute with", name, t.Type)
		}
		if err := check(t, name, in, out); err != nil {
			return nil, err
		}
		views[e] = t
	}
	return views, nil
}
