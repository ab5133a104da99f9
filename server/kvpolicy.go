package server

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"tamp/kv"
	"tamp/model"
)

// KVSpec is the KV-cache choice for one request: the fields of the request's
// "tamp" extension, or the server's defaults where it has none.
type KVSpec struct {
	// Storage is the element type of cached keys and values ("kv_type").
	Storage kv.Storage
	// Policy names a KV-cache compression policy ("kv"); "" and "full" keep
	// every entry.
	Policy string
	// Budget is the number of cache entries per head a compressing policy
	// keeps ("kv_budget"); 0 when not given.
	Budget int
	// Bits is the precision a quantizing policy stores entries at
	// ("kv_bits"); 0 when not given.
	Bits int
	// Table, if set, gives per-layer budgets to every compressing policy
	// (tamp serve --kv-table); requests cannot set it.
	Table *kv.Table
}

// Name is the policy's registered name: "full" for the empty policy.
func (s KVSpec) Name() string {
	if s.Policy == "" {
		return "full"
	}
	return s.Policy
}

// Requirement says whether a policy takes a parameter.
type Requirement int

const (
	// Forbidden: the policy has no use for the parameter; giving it is an error.
	Forbidden Requirement = iota
	// Optional: the policy has a default.
	Optional
	// Required: the request must give it.
	Required
)

// KVPolicy describes a KV-cache compression policy that requests may name in
// "tamp": {"kv": NAME}. Validation of a request's kv fields is driven by
// these descriptions: adding a policy is one RegisterKVPolicy call.
type KVPolicy struct {
	// Name is what requests write in "kv".
	Name string
	// Budget says whether "kv_budget" is needed.
	Budget Requirement
	// Bits lists the accepted "kv_bits" values; empty means the policy takes
	// none.
	Bits []int
	// Configure sets up the session of a request that uses the policy; the
	// spec has been validated against this description. Nil means the policy
	// needs nothing beyond the slot's ordinary session.
	Configure func(spec KVSpec, o *model.SessionOptions) error
	// Check, if set, validates a spec against the served model before any
	// request runs with it (a budget the policy cannot work with, say); its
	// error is the request's 400.
	Check func(spec KVSpec, m *model.Model) error
}

var (
	kvPoliciesMu sync.RWMutex
	kvPolicies   = map[string]KVPolicy{
		// The full cache takes no budget but may be quantized (KIVI).
		"full": {Name: "full", Bits: kiviBits, Configure: configureKV, Check: checkKV},
	}
)

// RegisterKVPolicy makes a policy available to requests. It panics if the
// name is taken or malformed, as registering twice is a programming error.
func RegisterKVPolicy(p KVPolicy) {
	if !validPolicyName(p.Name) {
		panic(fmt.Sprintf("server: malformed KV policy name %q", p.Name))
	}
	kvPoliciesMu.Lock()
	defer kvPoliciesMu.Unlock()
	if _, dup := kvPolicies[p.Name]; dup {
		panic(fmt.Sprintf("server: KV policy %q registered twice", p.Name))
	}
	kvPolicies[p.Name] = p
}

// KVPolicies lists the names of the available policies, sorted.
func KVPolicies() []string {
	kvPoliciesMu.RLock()
	defer kvPoliciesMu.RUnlock()
	return slices.Sorted(maps.Keys(kvPolicies))
}

func lookupKVPolicy(name string) (KVPolicy, bool) {
	kvPoliciesMu.RLock()
	defer kvPoliciesMu.RUnlock()
	p, ok := kvPolicies[name]
	return p, ok
}

// validPolicyName accepts short lower-case identifiers such as "snapkv" or
// "streaming-llm": anything else cannot name a policy, in any build.
func validPolicyName(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9' && i > 0, (c == '-' || c == '_') && i > 0:
		default:
			return false
		}
	}
	return true
}

// maxKVBits bounds "kv_bits": no cache stores entries wider than float32.
const maxKVBits = 32

// checkKVShape validates the kv fields that make sense independently of which
// policies this build has: a policy name's form and the parameters' ranges.
func checkKVShape(s KVSpec, budgetSet, bitsSet bool) *APIError {
	if s.Policy != "" && !validPolicyName(s.Policy) {
		return badRequest("tamp.kv", "invalid_kv_policy", "tamp.kv %q is not a KV policy name (lower-case letters, digits, '-' and '_', at most 32)", s.Policy)
	}
	if budgetSet && s.Budget < 1 {
		return badRequest("tamp.kv_budget", "invalid_kv_budget", "tamp.kv_budget must be a positive number of cache entries per head, got %d", s.Budget)
	}
	if bitsSet && (s.Bits < 1 || s.Bits > maxKVBits) {
		return badRequest("tamp.kv_bits", "invalid_kv_bits", "tamp.kv_bits must be between 1 and %d, got %d", maxKVBits, s.Bits)
	}
	return nil
}

// resolveKVFor is resolveKV followed by the policy's own check against the
// served model.
func resolveKVFor(s KVSpec, ctxLen int, m *model.Model) (KVPolicy, *APIError) {
	p, apiErr := resolveKV(s, ctxLen)
	if apiErr != nil || p.Check == nil {
		return p, apiErr
	}
	if err := p.Check(s, m); err != nil {
		return p, badRequest("tamp.kv", "invalid_kv_policy", "KV policy %q with kv_budget %d and kv_bits %d: %v", p.Name, s.Budget, s.Bits, err)
	}
	return p, nil
}

// resolveKV checks a spec against the registered policies and a context of
// ctxLen tokens, and returns the policy it names.
func resolveKV(s KVSpec, ctxLen int) (KVPolicy, *APIError) {
	if err := checkKVShape(s, s.Budget != 0, s.Bits != 0); err != nil {
		return KVPolicy{}, err
	}
	p, ok := lookupKVPolicy(s.Name())
	if !ok {
		return KVPolicy{}, badRequest("tamp.kv", "kv_policy_unavailable", "KV policy %q is not available in this build (available: %s)", s.Policy, strings.Join(KVPolicies(), ", "))
	}
	switch {
	case p.Budget == Forbidden && s.Budget != 0:
		return p, badRequest("tamp.kv_budget", "invalid_kv_budget", "KV policy %q takes no kv_budget", p.Name)
	case p.Budget == Required && s.Budget == 0:
		return p, badRequest("tamp.kv_budget", "invalid_kv_budget", "KV policy %q needs a kv_budget (cache entries kept per head)", p.Name)
	case s.Budget > ctxLen:
		return p, badRequest("tamp.kv_budget", "invalid_kv_budget", "tamp.kv_budget %d exceeds the context of %d tokens", s.Budget, ctxLen)
	}
	if s.Bits != 0 && !slices.Contains(p.Bits, s.Bits) {
		if len(p.Bits) == 0 {
			return p, badRequest("tamp.kv_bits", "invalid_kv_bits", "KV policy %q takes no kv_bits", p.Name)
		}
		return p, badRequest("tamp.kv_bits", "invalid_kv_bits", "KV policy %q accepts kv_bits %v, got %d", p.Name, p.Bits, s.Bits)
	}
	return p, nil
}

// kiviBits are the KV quantization widths tamp's cache stores (KIVI).
var kiviBits = []int{2, 4, 8}

// kiviGroup and kiviResidual are the quantization's group size and its window
// of recent tokens kept at full precision, as tamp run's defaults.
const kiviGroup, kiviResidual = 32, 32

func init() {
	// Every policy of the kv package, each needing a budget, each combinable
	// with KIVI quantization.
	for _, name := range kv.Policies() {
		if name == "full" {
			continue
		}
		RegisterKVPolicy(KVPolicy{Name: name, Budget: Required, Bits: kiviBits, Configure: configureKV, Check: checkKV})
	}
}

// kvSpecOf is the kv package's spec for a request's choice.
func kvSpecOf(s KVSpec) kv.Spec {
	spec := kv.Spec{Policy: s.Policy, Budget: s.Budget}
	if spec.Policy == "full" {
		spec.Policy = ""
	}
	if !spec.IsFull() {
		// A table shapes compressing policies' budgets; the full cache has none.
		spec.Table = s.Table
	}
	if s.Bits != 0 {
		spec.Quant = kv.Quant{Bits: s.Bits, Group: kiviGroup, Residual: kiviResidual}
	}
	return spec
}

func configureKV(s KVSpec, o *model.SessionOptions) error {
	o.KV = kvSpecOf(s)
	return nil
}

// checkKV builds the policy for the model's shape, so that what the kv
// package refuses (a budget below a policy's protected windows, a head size
// that does not pack at the bit width, a table for another model) is refused
// before the request runs.
func checkKV(s KVSpec, m *model.Model) error {
	shape := kv.Shape{Layers: m.Layers, Heads: m.Heads, KVHeads: m.KVHeads, HeadDim: m.HeadDim}
	_, _, err := kv.Build(kvSpecOf(s), shape, 1, s.Storage)
	return err
}
