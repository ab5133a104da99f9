package sweep

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"tamp/kv"
	"tamp/quant"
)

// WeightKind says how a weights spec produces its model.
type WeightKind int

const (
	// Original uses the input model as it is.
	Original WeightKind = iota
	// Target quantizes to one of quant's named targets (Q8_0, Q4_K_M, SQ4_8, …).
	Target
	// BitsPerWeight lets quant.Allocate choose a type per tensor within a
	// budget of bits per weight, measured on a calibration text.
	BitsPerWeight
)

// Weights is one static weight format of a sweep.
type Weights struct {
	// Name is the spec as written ("Q4_K_M", "bpw:3.5", "orig").
	Name string
	Kind WeightKind
	// Target is set for Kind Target.
	Target quant.Target
	// BPW is set for Kind BitsPerWeight.
	BPW float64
	// Err, when set, says why this spec cannot run; a sweep skips it and
	// runs the rest.
	Err error
}

// KV is one dynamic KV-cache setting of a sweep.
type KV struct {
	// Name is the spec as written ("full", "snapkv:64", "kivi:4").
	Name string
	// Spec is what the kv package builds.
	Spec kv.Spec
	// Err, when set, says why this spec cannot run.
	Err error
}

// Policy names the setting's family for colouring plots: the eviction policy
// ("snapkv"), "kivi" for quantization alone, or both joined by "+".
func (k KV) Policy() string {
	name, _, _ := strings.Cut(k.Spec.Policy, ":")
	if name == "" {
		name = "full"
	}
	if k.Spec.Quant.Bits != 0 {
		if name == "full" {
			return "kivi"
		}
		return name + "+kivi"
	}
	return name
}

// originalNames are the weights specs meaning "the input model unchanged".
var originalNames = map[string]bool{"orig": true, "original": true, "base": true, "none": true}

// ParseWeights reads a comma-separated list of weight formats: quant target
// names (anything quant.ParseTarget accepts, so new formats appear here as
// quant learns them), "bpw:X" for a measured per-tensor allocation at X bits
// per weight, and "orig" for the input model unchanged. A spec that cannot be
// understood is returned with Err set so that the caller can report it and run
// the others; only an empty list or a duplicate is an error.
func ParseWeights(list string) ([]Weights, error) {
	var out []Weights
	seen := map[string]bool{}
	for _, item := range strings.Split(list, ",") {
		name := strings.TrimSpace(item)
		if name == "" {
			continue
		}
		key := strings.ToUpper(name)
		if seen[key] {
			return nil, fmt.Errorf("sweep: weights %q listed twice", name)
		}
		seen[key] = true
		out = append(out, parseWeight(name))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("sweep: no weight formats given")
	}
	return out, nil
}

func parseWeight(name string) Weights {
	w := Weights{Name: name}
	lower := strings.ToLower(name)
	switch {
	case originalNames[lower]:
		w.Kind = Original
	case strings.HasPrefix(lower, "bpw:"):
		w.Kind = BitsPerWeight
		v, err := strconv.ParseFloat(name[4:], 64)
		if err != nil || !(v > 0 && v <= 32) {
			w.Err = fmt.Errorf("sweep: weights %q: want bpw:X with 0 < X ≤ 32", name)
		}
		w.BPW = v
	default:
		w.Kind = Target
		t, err := quant.ParseTarget(name)
		if err != nil {
			w.Err = fmt.Errorf("sweep: weights %q: %w", name, err)
		}
		w.Target = t
	}
	return w
}

var (
	kiviRe   = regexp.MustCompile(`^kivi:(\d+)$`)
	budgetRe = regexp.MustCompile(`^([a-z0-9_]+):(\d+)$`)
)

// ParseKV reads a comma-separated list of KV-cache settings. Each is "full",
// "kivi:BITS" (KIVI quantization of the full cache, residual 32),
// "POLICY:BUDGET" (an eviction policy keeping BUDGET entries per head on
// average, e.g. "snapkv:64"), or the kv package's general form
// POLICY[:key=value,...][@BUDGET][+qBITS][+h] (see kv.ParseSpec), whose
// parameter lists may contain commas. Policies are looked up by name in the
// kv package when the sweep runs, so newly registered ones work here. As with
// ParseWeights, a bad spec comes back with Err set.
func ParseKV(list string) ([]KV, error) {
	var items []string
	for _, piece := range strings.Split(list, ",") {
		p := strings.TrimSpace(piece)
		if p == "" {
			continue
		}
		// "pool=max@128" continues the previous item's parameter list.
		head := p
		if i := strings.IndexAny(head, ":@+"); i >= 0 {
			head = head[:i]
		}
		if strings.Contains(head, "=") && len(items) > 0 {
			items[len(items)-1] += "," + p
			continue
		}
		items = append(items, p)
	}
	var out []KV
	seen := map[string]bool{}
	for _, name := range items {
		if seen[name] {
			return nil, fmt.Errorf("sweep: KV setting %q listed twice", name)
		}
		seen[name] = true
		out = append(out, parseKV(name))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("sweep: no KV settings given")
	}
	return out, nil
}

func parseKV(name string) KV {
	k := KV{Name: name}
	lower := strings.ToLower(name)
	if m := kiviRe.FindStringSubmatch(lower); m != nil {
		bits, _ := strconv.Atoi(m[1])
		k.Spec = kv.Spec{Quant: kv.Quant{Bits: bits, Residual: 32}}
		if bits != 2 && bits != 4 && bits != 8 {
			k.Err = fmt.Errorf("sweep: KV setting %q: KIVI takes 2, 4 or 8 bits", name)
		}
		return k
	}
	if m := budgetRe.FindStringSubmatch(lower); m != nil {
		n, err := strconv.Atoi(m[2])
		if err != nil || n < 1 {
			k.Err = fmt.Errorf("sweep: KV setting %q: budget must be a positive integer", name)
		}
		k.Spec = kv.Spec{Policy: m[1], Budget: n}
		return k
	}
	spec, err := kv.ParseSpec(name)
	if err != nil {
		k.Err = fmt.Errorf("sweep: KV setting %q: %w", name, err)
	}
	k.Spec = spec
	return k
}

// check builds the setting's policy for a model shape, so that unknown
// policies and parameters are reported before any work is done.
func (k *KV) check(shape kv.Shape) {
	if k.Err != nil {
		return
	}
	if _, err := kv.NewPolicy(k.Spec, shape); err != nil {
		k.Err = fmt.Errorf("sweep: KV setting %q: %w", k.Name, err)
	}
}
