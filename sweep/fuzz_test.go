package sweep

import (
	"strings"
	"testing"

	"tamp/kv"
)

// FuzzParseKV feeds arbitrary lists to ParseKV (tamp sweep --kv). Nothing may
// panic; names are unique and non-empty; a setting without Err has a budget
// that is positive when it names an evicting policy and KIVI bits of 2, 4 or
// 8 when any; checking it against a model never panics.
func FuzzParseKV(f *testing.F) {
	for _, seed := range []string{
		"full,snapkv:64,kivi:4,streaming:window=4@32",
		"full,kivi:8,kivi:4,kivi:2",
		"snapkv:window=16,kernel=5,pool=max@128+q4",
		"h2o:64,h2o:128,pyramidkv:32",
		"graphkv:anchors=2,neighbours=3@64+q2+h",
		"kivi:3", "snapkv:0", "snapkv:-1", "full,full", "", ",,,", "pool=max@128", "KIVI:4",
		"snapkv:99999999999999999999", "nosuch:4", "full+q4+h",
	} {
		f.Add(seed)
	}
	shape := kv.Shape{Layers: 5, Heads: 8, KVHeads: 4, HeadDim: 8}
	f.Fuzz(func(t *testing.T, list string) {
		ks, err := ParseKV(list)
		if err != nil {
			if ks != nil {
				t.Fatalf("error %v with settings", err)
			}
			return
		}
		if len(ks) == 0 {
			t.Fatal("no settings and no error")
		}
		seen := map[string]bool{}
		for _, k := range ks {
			if k.Name == "" || seen[k.Name] {
				t.Fatalf("setting name %q empty or repeated in %q", k.Name, list)
			}
			seen[k.Name] = true
			if k.Err != nil {
				if !strings.Contains(k.Err.Error(), k.Name) && !strings.HasPrefix(k.Err.Error(), "sweep: ") {
					t.Fatalf("error %q names neither the setting nor the package", k.Err)
				}
				continue
			}
			if b := k.Spec.Quant.Bits; b != 0 && b != 2 && b != 4 && b != 8 && !strings.Contains(k.Name, "+q") {
				t.Fatalf("%q: %d-bit KIVI accepted", k.Name, b)
			}
			if k.Spec.Budget < 0 {
				t.Fatalf("%q: budget %d", k.Name, k.Spec.Budget)
			}
			if k.Spec.Budget > 1<<16 {
				continue
			}
			k.check(shape)
			_ = k.Policy()
		}
	})
}

// FuzzParseWeights feeds arbitrary lists to ParseWeights (tamp sweep
// --weights): nothing may panic, and whatever comes back without an error has
// unique non-empty names.
func FuzzParseWeights(f *testing.F) {
	for _, seed := range []string{
		"f16,q8_0,q4_0", "Q4_K_M,q6_k", "bpw:4.5", "model.gguf", "q4_0,q4_0", "", ",", "bpw:x", "bpw:-1", "sq4_16",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, list string) {
		ws, err := ParseWeights(list)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, w := range ws {
			if w.Name == "" || seen[w.Name] {
				t.Fatalf("weights name %q empty or repeated in %q", w.Name, list)
			}
			seen[w.Name] = true
		}
	})
}
