package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"tamp/kv"
)

// TestEveryKVPolicyRegistered: each policy of the kv package can be named in
// a request, needs a budget (but full, which refuses one) and takes KIVI bits.
func TestEveryKVPolicyRegistered(t *testing.T) {
	have := KVPolicies()
	for _, name := range kv.Policies() {
		p, ok := lookupKVPolicy(name)
		if !ok || !slices.Contains(have, name) {
			t.Errorf("kv policy %q is not registered with the server (have %v)", name, have)
			continue
		}
		want := Required
		if name == "full" {
			want = Forbidden
		}
		if p.Budget != want || !slices.Equal(p.Bits, []int{2, 4, 8}) || p.Configure == nil || p.Check == nil {
			t.Errorf("%s: budget %v bits %v configure %v check %v", name, p.Budget, p.Bits, p.Configure != nil, p.Check != nil)
		}
	}
}

// completion posts a greedy completion and returns its text.
func completion(t *testing.T, url, tamp string) (int, string, []byte) {
	t.Helper()
	prompt := strings.Repeat("Once upon a time there was a little girl named Lily. She loved to play outside in the sun. ", 3)
	body := fmt.Sprintf(`{"prompt": %q, "max_tokens": 24, "temperature": 0%s}`, prompt, tamp)
	resp, b := post(t, url+"/v1/completions", body)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, "", b
	}
	var out struct {
		Choices []struct {
			Text string `json:"text"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(b, &out); err != nil || len(out.Choices) != 1 {
		t.Fatalf("%s: %v", b, err)
	}
	return resp.StatusCode, out.Choices[0].Text, b
}

// TestKVPolicyRequests runs every kv policy, alone and with 4-bit KV, through
// the HTTP API, and checks that a tight budget really reaches the session:
// StreamingLLM capped at 8 entries cannot continue a 70-token prompt as the
// full cache does.
func TestKVPolicyRequests(t *testing.T) {
	ts := start(t, Config{Parallel: 1})
	code, full, b := completion(t, ts.url, "")
	if code != http.StatusOK {
		t.Fatalf("full: %d %s", code, b)
	}
	for _, name := range kv.Policies() {
		for _, bits := range []int{0, 4} {
			tamp := fmt.Sprintf(`, "tamp": {"kv": %q, "kv_budget": 32}`, name)
			switch {
			case name == "full" && bits != 0:
				tamp = `, "tamp": {"kv": "full", "kv_bits": 4}`
			case name == "full":
				tamp = `, "tamp": {"kv": "full"}`
			case bits != 0:
				tamp = fmt.Sprintf(`, "tamp": {"kv": %q, "kv_budget": 32, "kv_bits": %d}`, name, bits)
			}
			code, text, b := completion(t, ts.url, tamp)
			if code != http.StatusOK || text == "" {
				t.Errorf("%s: %d %q %s", tamp, code, text, b)
			}
			if name == "full" && bits == 0 && text != full {
				t.Errorf("naming full changed the text: %q, want %q", text, full)
			}
		}
	}
	_, capped, _ := completion(t, ts.url, `, "tamp": {"kv": "streaming", "kv_budget": 8}`)
	if capped == full {
		t.Errorf("streaming with 8 entries continued exactly as the full cache: %q", capped)
	}
	m := scrape(t, ts.url)
	for _, want := range []string{`policy="snapkv"} 2`, `policy="streaming"} 3`, `policy="full"} 3`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestKVPolicyBadRequests: combinations a policy cannot take get a 400 that
// names the field and says why.
func TestKVPolicyBadRequests(t *testing.T) {
	ts := start(t, Config{Parallel: 1})
	for _, tc := range []struct {
		tamp, param, code, says string
	}{
		{`{"kv": "snapkv"}`, "tamp.kv_budget", "invalid_kv_budget", `KV policy "snapkv" needs a kv_budget`},
		{`{"kv": "h2o", "kv_budget": 0}`, "tamp.kv_budget", "invalid_kv_budget", "must be a positive number"},
		{`{"kv": "streaming", "kv_budget": 100000}`, "tamp.kv_budget", "invalid_kv_budget", "exceeds the context of 256"},
		{`{"kv": "full", "kv_budget": 64}`, "tamp.kv_budget", "invalid_kv_budget", `KV policy "full" takes no kv_budget`},
		{`{"kv": "snapkv", "kv_budget": 64, "kv_bits": 3}`, "tamp.kv_bits", "invalid_kv_bits", "accepts kv_bits [2 4 8], got 3"},
		{`{"kv_bits": 16}`, "tamp.kv_bits", "invalid_kv_bits", "accepts kv_bits [2 4 8], got 16"},
		{`{"kv": "snapkv:window=4", "kv_budget": 64}`, "tamp.kv", "invalid_kv_policy", "is not a KV policy name"},
		{`{"kv": "evolkv", "kv_budget": 64}`, "tamp.kv", "kv_policy_unavailable", "available: adaptive, chunked, full, graphkv, h2o, pyramidkv, snapkv, streaming"},
	} {
		resp, b := post(t, ts.url+"/v1/completions", `{"prompt": "Once", "max_tokens": 4, "tamp": `+tc.tamp+`}`)
		var e struct {
			Error struct {
				Message, Param, Code string
			} `json:"error"`
		}
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("%s: %d %s", tc.tamp, resp.StatusCode, b)
		}
		if resp.StatusCode != http.StatusBadRequest || e.Error.Param != tc.param || e.Error.Code != tc.code || !strings.Contains(e.Error.Message, tc.says) {
			t.Errorf("%s: %d %+v, want 400 %s %s saying %q", tc.tamp, resp.StatusCode, e.Error, tc.param, tc.code, tc.says)
		}
	}
}

// TestKVTableDefault: a server-wide budget table must fit the model; one that
// does reaches compressing requests.
func TestKVTableDefault(t *testing.T) {
	e := openEngine(t)
	bad := &kv.Table{Kind: kv.TableLayers, Layers: []int{8, 8}}
	if _, err := New(Config{Engine: e, Context: 256, KV: KVSpec{Policy: "snapkv", Budget: 16, Table: bad}}); err == nil || !strings.Contains(err.Error(), "2 layers") {
		t.Errorf("a table for another model: err = %v", err)
	}
	layers := make([]int, e.Model.Layers)
	for i := range layers {
		layers[i] = 16
	}
	ts := start(t, Config{Engine: e, Parallel: 1, KV: KVSpec{Table: &kv.Table{Kind: kv.TableLayers, Budget: 16, Layers: layers}}})
	for _, tamp := range []string{`, "tamp": {"kv": "snapkv", "kv_budget": 16}`, `, "tamp": {"kv": "full", "kv_bits": 8}`} {
		if code, _, b := completion(t, ts.url, tamp); code != http.StatusOK {
			t.Errorf("%s with a table: %d %s", tamp, code, b)
		}
	}
}
