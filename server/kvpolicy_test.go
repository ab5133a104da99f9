package server

import (
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"tamp/kv"
	"tamp/model"
)

// configured counts the sessions the test policy set up.
var configured atomic.Int64

func init() {
	// A stand-in for the policies issue 5 registers: needs a budget and
	// takes some bit widths.
	RegisterKVPolicy(KVPolicy{Name: "test-evict", Budget: Required, Bits: []int{2, 4, 8},
		Configure: func(spec KVSpec, o *model.SessionOptions) error {
			configured.Add(1)
			return nil
		}})
	RegisterKVPolicy(KVPolicy{Name: "test-optional", Budget: Optional})
}

func TestResolveKV(t *testing.T) {
	tests := []struct {
		spec KVSpec
		code string // "" for valid
		says string
	}{
		{KVSpec{}, "", ""},
		{KVSpec{Policy: "full"}, "", ""},
		{KVSpec{Policy: "full", Storage: kv.F32}, "", ""},
		{KVSpec{Policy: "test-evict", Budget: 64}, "", ""},
		{KVSpec{Policy: "test-evict", Budget: 64, Bits: 4}, "", ""},
		{KVSpec{Policy: "test-optional"}, "", ""},
		{KVSpec{Policy: "test-optional", Budget: 10}, "", ""},
		{KVSpec{Policy: "nosuch", Budget: 64}, "kv_policy_unavailable", `KV policy "nosuch" is not available in this build`},
		{KVSpec{Policy: "SnapKV"}, "invalid_kv_policy", "not a KV policy name"},
		{KVSpec{Policy: "-x"}, "invalid_kv_policy", ""},
		{KVSpec{Policy: strings.Repeat("a", 33)}, "invalid_kv_policy", ""},
		{KVSpec{Policy: "test-evict"}, "invalid_kv_budget", "needs a kv_budget"},
		{KVSpec{Policy: "test-evict", Budget: 64, Bits: 3}, "invalid_kv_bits", "accepts kv_bits [2 4 8]"},
		{KVSpec{Policy: "test-evict", Budget: 1000}, "invalid_kv_budget", "exceeds the context of 256"},
		{KVSpec{Policy: "test-evict", Budget: -1}, "invalid_kv_budget", "positive"},
		{KVSpec{Policy: "full", Budget: 5}, "invalid_kv_budget", "takes no kv_budget"},
		{KVSpec{Bits: 4}, "", ""},
		{KVSpec{Bits: 3}, "invalid_kv_bits", "accepts kv_bits [2 4 8]"},
		{KVSpec{Policy: "test-optional", Bits: 4}, "invalid_kv_bits", "takes no kv_bits"},
		{KVSpec{Bits: 64}, "invalid_kv_bits", "between 1 and 32"},
	}
	for _, tc := range tests {
		t.Run(tc.spec.Name(), func(t *testing.T) {
			_, err := resolveKV(tc.spec, 256)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("%+v refused: %v", tc.spec, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("%+v accepted, want %s", tc.spec, tc.code)
			}
			if err.Code != tc.code || err.Status != http.StatusBadRequest || !strings.Contains(err.Message, tc.says) {
				t.Errorf("%+v: %d %s %q, want %s saying %q", tc.spec, err.Status, err.Code, err.Message, tc.code, tc.says)
			}
		})
	}
}

func TestRegisterKVPolicy(t *testing.T) {
	if !slices.Contains(KVPolicies(), "full") || !slices.Contains(KVPolicies(), "test-evict") {
		t.Errorf("KVPolicies() = %v", KVPolicies())
	}
	for _, p := range []KVPolicy{{Name: "full"}, {Name: "Bad"}, {Name: ""}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("RegisterKVPolicy(%q) did not panic", p.Name)
				}
			}()
			RegisterKVPolicy(p)
		}()
	}
}

// TestKVPolicyRequest runs requests through a registered policy and checks
// that the policy's Configure runs for each, that the metrics count it, and
// that the server's default policy applies to requests that name none.
func TestKVPolicyRequest(t *testing.T) {
	ts := start(t, Config{Parallel: 1, KV: KVSpec{Policy: "test-evict", Budget: 32}})
	before := configured.Load()
	for _, body := range []string{
		`{"prompt": "Once", "max_tokens": 4}`, // the server's default
		`{"prompt": "Once", "max_tokens": 4, "tamp": {"kv": "test-evict", "kv_budget": 16, "kv_bits": 4}}`,
		`{"prompt": "Once", "max_tokens": 4, "tamp": {"kv_budget": 8}}`, // default policy, own budget
	} {
		resp, b := post(t, ts.url+"/v1/completions", body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", body, resp.StatusCode, b)
		}
	}
	if got := configured.Load() - before; got != 3 {
		t.Errorf("Configure ran %d times for 3 requests", got)
	}
	// Naming "full" leaves the default policy behind, and its budget.
	resp, b := post(t, ts.url+"/v1/completions", `{"prompt": "Once", "max_tokens": 4, "tamp": {"kv": "full", "kv_type": "f32"}}`)
	if resp.StatusCode != 200 {
		t.Fatalf("full: %d %s", resp.StatusCode, b)
	}
	if got := configured.Load() - before; got != 3 {
		t.Errorf("a full-cache request ran the policy's Configure")
	}
	m := scrape(t, ts.url)
	for _, want := range []string{
		`tamp_kv_policy_requests_total{kv_type="f16",policy="test-evict"} 3`,
		`tamp_kv_policy_requests_total{kv_type="f32",policy="full"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if _, err := New(Config{Engine: ts.e, KV: KVSpec{Policy: "nosuch"}}); err == nil || !strings.Contains(err.Error(), "not available in this build") {
		t.Errorf("a server defaulting to a missing policy: err = %v", err)
	}
}
