package kv

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Event describes the tokens the forward pass has just processed.
type Event struct {
	// Start and End are the positions of the tokens processed: [Start, End).
	Start, End int
	// CallStart and CallEnd are the positions of the whole Forward call the
	// tokens belong to; a call of more than one token is a prefill, processed
	// in chunks.
	CallStart, CallEnd int
	// Surprisal holds −ln p(token) for each token of [Start, End) under the
	// model's prediction from the preceding position (NaN for the first token
	// of a sequence); set only when the policy's Needs ask for it.
	Surprisal []float32
}

// Prefill reports whether the event belongs to a multi-token call.
func (e Event) Prefill() bool { return e.CallEnd-e.CallStart > 1 }

// Needs says what a policy wants the forward pass and the cache to provide.
// Everything it leaves off costs nothing.
type Needs struct {
	// Scores keeps a per-entry sum of the attention received from the query
	// rows [Policy.Observe] selects.
	Scores bool
	// GQAMax aggregates over the query heads of a KV group by maximum rather
	// than mean.
	GQAMax bool
	// Aux keeps a per-entry value the policy owns.
	Aux bool
	// Surprisal asks for each token's surprisal in the events (the forward pass
	// then computes logits for every prompt row).
	Surprisal bool
}

// Policy decides which cached entries to keep while a sequence is evaluated.
// The forward pass calls it at fixed moments and never depends on which policy
// it is. A Policy belongs to one sequence; it is not safe for concurrent use.
type Policy interface {
	// Name is the policy's name as [Parse] reads it.
	Name() string
	// Needs is consulted once, when the sequence's cache is made.
	Needs() Needs
	// Observe is called before each chunk of a call is processed: query rows
	// at positions >= the returned one add their attention to the cache's
	// scores. Returning math.MaxInt32 records nothing.
	Observe(ev Event) int
	// AfterChunk is called after each chunk of a multi-token call (a prefill)
	// has gone through every layer.
	AfterChunk(c *Cache, ev Event) error
	// AfterPrefill is called after the last chunk of a multi-token call, once
	// AfterChunk has returned.
	AfterPrefill(c *Cache, ev Event) error
	// AfterStep is called after each single-token call (a decoding step).
	AfterStep(c *Cache, ev Event) error
	// Reset forgets the sequence, ready for a new one.
	Reset()
}

// Spec is what a user chooses: a policy, its budget and table, and the
// cache's quantization.
type Spec struct {
	// Policy is a policy name, optionally followed by ":key=value,..."
	// parameters (see each policy's documentation); "" means full.
	Policy string
	// Budget is the mean number of entries per head a compressing policy keeps
	// (including the windows it protects).
	Budget int
	// Table gives per-layer budgets; nil means the policy's default (uniform,
	// or the pyramid for pyramidkv). A table whose Budget differs from Budget
	// (when Budget is set) is scaled to it.
	Table *Table
	// Quant quantizes the cache (KIVI); independent of the policy.
	Quant Quant
}

// String renders the spec as the command line would.
func (s Spec) String() string {
	name := s.Policy
	if name == "" {
		name = "full"
	}
	var b strings.Builder
	b.WriteString(name)
	if s.Budget > 0 {
		fmt.Fprintf(&b, "@%d", s.Budget)
	}
	if s.Table != nil && s.Table.Kind != "" && s.Table.Kind != "uniform" {
		fmt.Fprintf(&b, " table=%s", s.Table.Kind)
	}
	if s.Quant.Bits != 0 {
		b.WriteString(" " + s.Quant.String())
	}
	return b.String()
}

// IsFull reports whether the spec changes nothing: full cache, no quantization.
func (s Spec) IsFull() bool {
	name, _, _ := strings.Cut(s.Policy, ":")
	return (name == "" || name == "full") && s.Quant.Bits == 0
}

// Params are a policy's key=value parameters. Reading one marks it used, so
// that misspelt keys are reported.
type Params struct {
	m    map[string]string
	used map[string]bool
}

// ParseParams reads "k=v,k2=v2".
func ParseParams(s string) (Params, error) {
	p := Params{m: map[string]string{}, used: map[string]bool{}}
	if s == "" {
		return p, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return p, fmt.Errorf("kv: parameter %q is not key=value", kv)
		}
		if _, dup := p.m[k]; dup {
			return p, fmt.Errorf("kv: parameter %q given twice", k)
		}
		p.m[k] = strings.TrimSpace(v)
	}
	return p, nil
}

// Int returns parameter k or def.
func (p Params) Int(k string, def int) (int, error) {
	v, ok := p.m[k]
	p.used[k] = true
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("kv: parameter %s=%q is not a non-negative integer", k, v)
	}
	return n, nil
}

// Float returns parameter k or def.
func (p Params) Float(k string, def float64) (float64, error) {
	v, ok := p.m[k]
	p.used[k] = true
	if !ok {
		return def, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("kv: parameter %s=%q is not a number", k, v)
	}
	return f, nil
}

// String returns parameter k, which must be one of allowed, or def.
func (p Params) String(k, def string, allowed ...string) (string, error) {
	v, ok := p.m[k]
	p.used[k] = true
	if !ok {
		return def, nil
	}
	if !slices.Contains(allowed, v) {
		return "", fmt.Errorf("kv: parameter %s=%q: want one of %s", k, v, strings.Join(allowed, ", "))
	}
	return v, nil
}

// Unused reports parameters no policy read.
func (p Params) Unused() error {
	var bad []string
	for k := range p.m {
		if !p.used[k] {
			bad = append(bad, k)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	return fmt.Errorf("kv: unknown parameter(s) %s", strings.Join(bad, ", "))
}

// Setup is what a policy constructor receives.
type Setup struct {
	Shape  Shape
	Budget int
	Table  *Table
	Params Params
	// Rotate, when the model provides it, applies RoPE's rotation for delta
	// positions to a head vector (nil otherwise).
	Rotate Rotator
}

// Rotator rotates one head vector in place as RoPE rotates a vector delta
// positions further on: applied to a key stored at position p it gives the
// key as stored at p+delta.
type Rotator func(v []float32, delta int)

// Constructor builds a policy.
type Constructor func(s Setup) (Policy, error)

var policies = map[string]Constructor{}

// Register makes a policy available under name.
func Register(name string, c Constructor) {
	if _, dup := policies[name]; dup {
		panic("kv: policy registered twice: " + name)
	}
	policies[name] = c
}

// Policies lists the registered policy names.
func Policies() []string {
	names := make([]string, 0, len(policies))
	for n := range policies {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Build makes a cache and its policy for a model of the given shape. The
// policy is nil for a full cache.
func Build(spec Spec, shape Shape, capacity int, storage Storage) (*Cache, Policy, error) {
	return BuildWith(spec, shape, capacity, storage, nil)
}

// BuildWith is Build for a model that can rotate keys (see [Rotator]), which
// policies that move keys to new positions need.
func BuildWith(spec Spec, shape Shape, capacity int, storage Storage, rot Rotator) (*Cache, Policy, error) {
	pol, err := newPolicy(spec, shape, rot)
	if err != nil {
		return nil, nil, err
	}
	needs := pol.Needs()
	c, err := NewCache(shape, capacity, Options{Storage: storage, Quant: spec.Quant,
		Scores: needs.Scores, GQAMax: needs.GQAMax, Aux: needs.Aux})
	if err != nil {
		return nil, nil, err
	}
	if _, full := pol.(full); full {
		pol = nil
	}
	return c, pol, nil
}

// NewPolicy builds the policy a spec names.
func NewPolicy(spec Spec, shape Shape) (Policy, error) { return newPolicy(spec, shape, nil) }

func newPolicy(spec Spec, shape Shape, rot Rotator) (Policy, error) {
	if err := shape.check(); err != nil {
		return nil, err
	}
	name, params, _ := strings.Cut(spec.Policy, ":")
	if name == "" {
		name = "full"
	}
	ctor, ok := policies[name]
	if !ok {
		return nil, fmt.Errorf("kv: unknown policy %q; known: %s", name, strings.Join(Policies(), ", "))
	}
	p, err := ParseParams(params)
	if err != nil {
		return nil, err
	}
	if spec.Budget < 0 {
		return nil, fmt.Errorf("kv: budget %d must not be negative", spec.Budget)
	}
	if spec.Table != nil {
		if err := spec.Table.Check(shape); err != nil {
			return nil, err
		}
	}
	pol, err := ctor(Setup{Shape: shape, Budget: spec.Budget, Table: spec.Table, Params: p, Rotate: rot})
	if err != nil {
		return nil, fmt.Errorf("kv: %s: %w", name, err)
	}
	if err := p.Unused(); err != nil {
		return nil, fmt.Errorf("%w for policy %s", err, name)
	}
	return pol, nil
}

// base gives policies no-op hooks to override.
type base struct{}

func (base) Needs() Needs                          { return Needs{} }
func (base) Observe(Event) int                     { return math.MaxInt32 }
func (base) AfterChunk(*Cache, Event) error        { return nil }
func (base) AfterPrefill(c *Cache, ev Event) error { return nil }
func (base) AfterStep(*Cache, Event) error         { return nil }
func (base) Reset()                                {}

// needBudget checks that a compressing policy was given a budget.
func needBudget(s Setup) error {
	if s.Budget <= 0 && (s.Table == nil || s.Table.Budget <= 0) {
		return fmt.Errorf("needs a budget (--kv-budget N, the mean entries kept per head)")
	}
	return nil
}

// ParseSpec reads a compact spec, as tamp eval kv's --spec takes it:
// POLICY[:key=value,...][@BUDGET][+qBITS][+h], for example "h2o@64",
// "snapkv:window=16@128+q4" or "full+q2+h" (KIVI 2-bit with Hadamard
// rotation). Quantization uses the default group and a residual of 32.
func ParseSpec(s string) (Spec, error) {
	spec := Spec{}
	head, rest, _ := strings.Cut(s, "+")
	var mods []string
	if rest != "" {
		mods = strings.Split(rest, "+")
	}
	pol, budget, hasBudget := strings.Cut(head, "@")
	spec.Policy = strings.TrimSpace(pol)
	if hasBudget {
		n, err := strconv.Atoi(budget)
		if err != nil || n < 1 {
			return spec, fmt.Errorf("kv: spec %q: budget %q is not a positive integer", s, budget)
		}
		spec.Budget = n
	}
	for _, m := range mods {
		switch {
		case m == "h":
			spec.Quant.Hadamard = true
		case strings.HasPrefix(m, "q"):
			n, err := strconv.Atoi(m[1:])
			if err != nil {
				return spec, fmt.Errorf("kv: spec %q: %q is not qBITS", s, m)
			}
			spec.Quant.Bits = n
			spec.Quant.Residual = 32
		default:
			return spec, fmt.Errorf("kv: spec %q: unknown modifier %q (want qBITS or h)", s, m)
		}
	}
	if spec.Quant.Hadamard && spec.Quant.Bits == 0 {
		return spec, fmt.Errorf("kv: spec %q: +h rotates before quantizing and needs +qBITS", s)
	}
	return spec, nil
}
