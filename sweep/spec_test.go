package sweep

import (
	"fmt"
	"strings"
	"testing"

	"tamp/kv"
	"tamp/quant"
)

func TestParseWeights(t *testing.T) {
	tests := []struct {
		in      string
		names   []string
		kinds   []WeightKind
		bad     []bool // Err set
		wantErr string
	}{
		{in: "Q8_0,q4_k_m, SQ4_8 ,bpw:3.5,orig", names: []string{"Q8_0", "q4_k_m", "SQ4_8", "bpw:3.5", "orig"},
			kinds: []WeightKind{Target, Target, Target, BitsPerWeight, Original}, bad: []bool{false, false, false, false, false}},
		{in: "Q8_0,NOPE_9,bpw:x,bpw:0", names: []string{"Q8_0", "NOPE_9", "bpw:x", "bpw:0"},
			kinds: []WeightKind{Target, Target, BitsPerWeight, BitsPerWeight}, bad: []bool{false, true, true, true}},
		{in: "Q8_0,q8_0", wantErr: "twice"},
		{in: " , ", wantErr: "no weight formats"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			ws, err := ParseWeights(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(ws) != len(tt.names) {
				t.Fatalf("got %d specs, want %d", len(ws), len(tt.names))
			}
			for i, w := range ws {
				if w.Name != tt.names[i] || w.Kind != tt.kinds[i] || (w.Err != nil) != tt.bad[i] {
					t.Errorf("spec %d = {%q kind %d err %v}, want {%q kind %d bad %v}", i, w.Name, w.Kind, w.Err, tt.names[i], tt.kinds[i], tt.bad[i])
				}
			}
		})
	}
	// Names resolve through quant, so the type is quant's.
	ws, _ := ParseWeights("Q4_K_M,bpw:3.5")
	want, _ := quant.ParseTarget("Q4_K_M")
	if ws[0].Target.Type != want.Type || ws[1].BPW != 3.5 {
		t.Errorf("Q4_K_M resolved to %v, bpw to %v", ws[0].Target.Type, ws[1].BPW)
	}
}

func TestParseKV(t *testing.T) {
	shape := kv.Shape{Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 8}
	tests := []struct {
		in     string
		names  []string
		specs  []kv.Spec
		policy []string
		bad    []bool
	}{
		{in: "full,snapkv:64,pyramidkv:128,kivi:4,h2o@32+q2",
			names:  []string{"full", "snapkv:64", "pyramidkv:128", "kivi:4", "h2o@32+q2"},
			specs:  []kv.Spec{{Policy: "full"}, {Policy: "snapkv", Budget: 64}, {Policy: "pyramidkv", Budget: 128}, {Quant: kv.Quant{Bits: 4, Residual: 32}}, {Policy: "h2o", Budget: 32, Quant: kv.Quant{Bits: 2, Residual: 32}}},
			policy: []string{"full", "snapkv", "pyramidkv", "kivi", "h2o+kivi"},
			bad:    []bool{false, false, false, false, false}},
		// A parameter list's commas stay with their item.
		{in: "snapkv:window=8,pool=max@64,full",
			names:  []string{"snapkv:window=8,pool=max@64", "full"},
			specs:  []kv.Spec{{Policy: "snapkv:window=8,pool=max", Budget: 64}, {Policy: "full"}},
			policy: []string{"snapkv", "full"},
			bad:    []bool{false, false}},
		{in: "nosuchpolicy:64,kivi:3,snapkv,snapkv:window=x@64",
			names:  []string{"nosuchpolicy:64", "kivi:3", "snapkv", "snapkv:window=x@64"},
			specs:  []kv.Spec{{Policy: "nosuchpolicy", Budget: 64}, {Quant: kv.Quant{Bits: 3, Residual: 32}}, {Policy: "snapkv"}, {Policy: "snapkv:window=x", Budget: 64}},
			policy: []string{"nosuchpolicy", "kivi", "snapkv", "snapkv"},
			bad:    []bool{true, true, true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			ks, err := ParseKV(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if len(ks) != len(tt.names) {
				t.Fatalf("got %d settings %v, want %d", len(ks), ks, len(tt.names))
			}
			for i := range ks {
				ks[i].check(shape)
				k := ks[i]
				if k.Name != tt.names[i] || k.Spec.Policy != tt.specs[i].Policy || k.Spec.Budget != tt.specs[i].Budget ||
					k.Spec.Quant != tt.specs[i].Quant || k.Policy() != tt.policy[i] || (k.Err != nil) != tt.bad[i] {
					t.Errorf("setting %d = %q %+v policy %q err %v; want %q %+v policy %q bad %v",
						i, k.Name, k.Spec, k.Policy(), k.Err, tt.names[i], tt.specs[i], tt.policy[i], tt.bad[i])
				}
			}
		})
	}
	for _, in := range []string{"full,full", ""} {
		if _, err := ParseKV(in); err == nil {
			t.Errorf("ParseKV(%q) accepted", in)
		}
	}
}

func ExampleParseKV() {
	ks, err := ParseKV("full,snapkv:64,kivi:4,streaming:window=4@32")
	if err != nil {
		panic(err)
	}
	for _, k := range ks {
		fmt.Printf("%s: policy %q, budget %d, %d-bit cache (%s)\n", k.Name, k.Spec.Policy, k.Spec.Budget, k.Spec.Quant.Bits, k.Policy())
	}
	// Output:
	// full: policy "full", budget 0, 0-bit cache (full)
	// snapkv:64: policy "snapkv", budget 64, 0-bit cache (snapkv)
	// kivi:4: policy "", budget 0, 4-bit cache (kivi)
	// streaming:window=4@32: policy "streaming:window=4", budget 32, 0-bit cache (streaming)
}
