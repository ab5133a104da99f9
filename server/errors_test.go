package server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"tamp/chat"
)

// TestBadRequests sends each kind of bad request and checks the status and
// the OpenAI-style error body: type, code, the field at fault, and what the
// message must say.
func TestBadRequests(t *testing.T) {
	e := openEngine(t)
	refusing, err := chat.New(`{{ raise_exception("roles must alternate") }}`, chat.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ts := start(t, Config{Engine: e, Context: 256, MaxTokens: 200, MaxBodyBytes: 4096, APIKey: "k"})
	tsChat := start(t, Config{Engine: e, Context: 256, Chat: refusing})
	long := strings.Repeat("The little dog ran to the park. ", 60)
	longTokens := len(e.Encode(long))
	if longTokens < 256 {
		t.Fatalf("the long prompt has only %d tokens", longTokens)
	}
	auth := []string{"Authorization", "Bearer k"}
	const comp, chatURL = "/v1/completions", "/v1/chat/completions"
	tests := []struct {
		name   string
		srv    *testServer
		path   string
		body   string
		header []string
		status int
		code   string
		param  string
		says   []string // substrings of the message
	}{
		{"malformed JSON", ts, comp, `{"prompt": "x",`, auth, 400, "invalid_json", "", []string{"malformed JSON"}},
		{"malformed JSON syntax", ts, comp, `{"prompt": x}`, auth, 400, "invalid_json", "", []string{"malformed JSON at byte"}},
		{"not an object", ts, comp, `["prompt"]`, auth, 400, "invalid_json", "", []string{"JSON object"}},
		{"empty body", ts, comp, ``, auth, 400, "invalid_json", "", []string{"empty"}},
		{"trailing data", ts, comp, `{"prompt": "x"} {"prompt": "y"}`, auth, 400, "invalid_json", "", []string{"after the request object"}},
		{"unknown field", ts, comp, `{"prompt": "x", "frobnicate": 1}`, auth, 400, "unknown_field", "frobnicate", []string{`"frobnicate"`}},
		{"unknown tamp field", ts, comp, `{"prompt": "x", "tamp": {"kv_typo": "f16"}}`, auth, 400, "unknown_field", "kv_typo", nil},
		{"unknown message field", ts, chatURL, `{"messages": [{"role": "user", "content": "x", "mood": "happy"}]}`, auth, 400, "unknown_field", "mood", nil},
		{"wrong type", ts, comp, `{"prompt": "x", "max_tokens": "ten"}`, auth, 400, "invalid_type", "max_tokens", []string{"an integer"}},
		{"fractional max_tokens", ts, comp, `{"prompt": "x", "max_tokens": 1.5}`, auth, 400, "invalid_type", "max_tokens", nil},
		{"missing prompt", ts, comp, `{"max_tokens": 4}`, auth, 400, "missing_field", "prompt", nil},
		{"prompt wrong type", ts, comp, `{"prompt": {"text": "x"}}`, auth, 400, "invalid_request", "", []string{"prompt must be"}},
		{"mixed prompt list", ts, comp, `{"prompt": ["x", 1]}`, auth, 400, "invalid_request", "", []string{"only strings or only"}},
		{"token outside vocabulary", ts, comp, `{"prompt": [1, 100000]}`, auth, 400, "invalid_prompt", "prompt", []string{"100000", "vocabulary"}},
		{"prompt too long", ts, comp, fmt.Sprintf(`{"prompt": %q}`, long), auth, 400, "context_length_exceeded", "prompt",
			[]string{"256 tokens", strconv.Itoa(longTokens) + " tokens"}},
		{"chat too long", ts, chatURL, fmt.Sprintf(`{"messages": [{"role": "user", "content": %q}]}`, long), auth, 400, "context_length_exceeded", "messages", []string{"256 tokens"}},
		{"temperature", ts, comp, `{"prompt": "x", "temperature": 3}`, auth, 400, "invalid_value", "temperature", []string{"temperature"}},
		{"top_p zero", ts, comp, `{"prompt": "x", "top_p": 0}`, auth, 400, "invalid_value", "top_p", nil},
		{"min_p", ts, comp, `{"prompt": "x", "min_p": -0.1}`, auth, 400, "invalid_value", "min_p", nil},
		{"top_k", ts, comp, `{"prompt": "x", "top_k": -1}`, auth, 400, "invalid_value", "top_k", nil},
		{"n zero", ts, comp, `{"prompt": "x", "n": 0}`, auth, 400, "invalid_value", "n", nil},
		{"n too many", ts, comp, `{"prompt": "x", "n": 100}`, auth, 400, "invalid_value", "n", []string{"at most"}},
		{"max_tokens zero", ts, comp, `{"prompt": "x", "max_tokens": 0}`, auth, 400, "invalid_value", "max_tokens", nil},
		{"max_tokens over cap", ts, comp, `{"prompt": "x", "max_tokens": 201}`, auth, 400, "invalid_value", "max_tokens", []string{"201", "200"}},
		{"max_completion_tokens over cap", ts, chatURL, `{"messages": [{"role": "user", "content": "x"}], "max_completion_tokens": 100000}`, auth, 400, "invalid_value", "max_tokens", nil},
		{"too many stops", ts, comp, `{"prompt": "x", "stop": ["a","b","c","d","e","f","g","h","i"]}`, auth, 400, "invalid_value", "stop", nil},
		{"empty stop", ts, comp, `{"prompt": "x", "stop": ""}`, auth, 400, "invalid_value", "stop", nil},
		{"stop wrong type", ts, comp, `{"prompt": "x", "stop": 5}`, auth, 400, "invalid_request", "", []string{"stop must be"}},
		{"presence penalty", ts, comp, `{"prompt": "x", "presence_penalty": 0.5}`, auth, 400, "unsupported_value", "presence_penalty", nil},
		{"kv_type", ts, comp, `{"prompt": "x", "tamp": {"kv_type": "q4"}}`, auth, 400, "invalid_value", "tamp.kv_type", []string{"f16 or f32"}},
		{"kv policy not built", ts, comp, `{"prompt": "x", "tamp": {"kv": "nosuch", "kv_budget": 128, "kv_bits": 4}}`, auth, 400, "kv_policy_unavailable", "tamp.kv",
			[]string{`KV policy "nosuch" is not available in this build`}},
		{"kv policy without budget", ts, comp, `{"prompt": "x", "tamp": {"kv": "snapkv", "kv_bits": 4}}`, auth, 400, "invalid_kv_budget", "tamp.kv_budget",
			[]string{`KV policy "snapkv" needs a kv_budget`}},
		{"kv policy malformed", ts, comp, `{"prompt": "x", "tamp": {"kv": "Snap KV"}}`, auth, 400, "invalid_kv_policy", "tamp.kv", nil},
		{"kv budget zero", ts, comp, `{"prompt": "x", "tamp": {"kv": "snapkv", "kv_budget": 0}}`, auth, 400, "invalid_kv_budget", "tamp.kv_budget", nil},
		{"kv bits", ts, comp, `{"prompt": "x", "tamp": {"kv_bits": 99}}`, auth, 400, "invalid_kv_bits", "tamp.kv_bits", nil},
		{"kv budget on full", ts, comp, `{"prompt": "x", "tamp": {"kv": "full", "kv_budget": 64}}`, auth, 400, "invalid_kv_budget", "tamp.kv_budget", []string{"takes no kv_budget"}},
		{"no messages", ts, chatURL, `{"messages": []}`, auth, 400, "missing_field", "messages", nil},
		{"unknown role", ts, chatURL, `{"messages": [{"role": "wizard", "content": "x"}]}`, auth, 400, "invalid_messages", "messages[0].role", []string{"wizard"}},
		{"tool role", ts, chatURL, `{"messages": [{"role": "tool", "content": "x"}]}`, auth, 400, "invalid_messages", "messages[0].role", nil},
		{"image content", ts, chatURL, `{"messages": [{"role": "user", "content": [{"type": "image_url", "text": ""}]}]}`, auth, 400, "invalid_request", "", []string{"only text parts"}},
		{"template refusal", tsChat, chatURL, `{"messages": [{"role": "user", "content": "x"}]}`, nil, 400, "chat_template_error", "messages", []string{"roles must alternate"}},
		{"unknown model", ts, comp, `{"model": "gpt-4", "prompt": "x"}`, auth, 404, "model_not_found", "model", []string{"gpt-4", modelID}},
		{"no key", ts, comp, `{"prompt": "x"}`, nil, 401, "invalid_api_key", "", nil},
		{"wrong key", ts, comp, `{"prompt": "x"}`, []string{"Authorization", "Bearer nope"}, 401, "invalid_api_key", "", nil},
		{"wrong scheme", ts, comp, `{"prompt": "x"}`, []string{"Authorization", "Basic k"}, 401, "invalid_api_key", "", nil},
		{"body too large", ts, comp, `{"prompt": "` + strings.Repeat("x", 5000) + `"}`, auth, 413, "request_too_large", "", []string{"4096"}},
		{"unknown path", ts, "/v1/embeddings", `{}`, auth, 404, "unknown_url", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := post(t, tc.srv.url+tc.path, tc.body, tc.header...)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			e := apiError(t, body)
			if e.Code != tc.code {
				t.Errorf("code %q, want %q (%s)", e.Code, tc.code, e.Message)
			}
			if e.Param != tc.param {
				t.Errorf("param %q, want %q (%s)", e.Param, tc.param, e.Message)
			}
			for _, s := range tc.says {
				if !strings.Contains(e.Message, s) {
					t.Errorf("message %q does not say %q", e.Message, s)
				}
			}
		})
	}
	// The server still works after all that.
	resp, body := post(t, ts.url+comp, `{"prompt": "Once", "max_tokens": 4}`, auth...)
	if resp.StatusCode != 200 {
		t.Errorf("a good request after the bad ones: %d %s", resp.StatusCode, body)
	}
}

// TestBodyTooLargeChunked sends an oversized body without Content-Length, so
// the limit is found while reading.
func TestBodyTooLargeChunked(t *testing.T) {
	ts := start(t, Config{MaxBodyBytes: 1024})
	body := io.MultiReader(strings.NewReader(`{"prompt": "`), strings.NewReader(strings.Repeat("y", 4000)), strings.NewReader(`"}`))
	req, err := http.NewRequest(http.MethodPost, ts.url+"/v1/completions", body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if req.ContentLength != 0 && req.ContentLength != -1 {
		t.Fatalf("the request has a Content-Length (%d)", req.ContentLength)
	}
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413: %s", resp.StatusCode, b)
	}
	if e := apiError(t, b); e.Code != "request_too_large" {
		t.Errorf("code %q", e.Code)
	}
}

func TestMethodAndAuthExemptions(t *testing.T) {
	ts := start(t, Config{APIKey: "k"})
	get := func(path string, header ...string) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodGet, ts.url+path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	if resp, b := get("/health"); resp.StatusCode != 200 || !bytes.Contains(b, []byte(`"status":"ok"`)) {
		t.Errorf("/health without a key: %d %s", resp.StatusCode, b)
	}
	if resp, _ := get("/metrics"); resp.StatusCode != 401 {
		t.Errorf("/metrics without a key: %d, want 401", resp.StatusCode)
	}
	if resp, _ := get("/v1/models"); resp.StatusCode != 401 {
		t.Errorf("/v1/models without a key: %d, want 401", resp.StatusCode)
	}
	resp, b := get("/v1/completions", "Authorization", "Bearer k")
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET /v1/completions: %d Allow=%q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if e := apiError(t, b); e.Code != "method_not_allowed" {
		t.Errorf("code %q", e.Code)
	}
	if resp, b := get("/v1/models/nope", "Authorization", "Bearer k"); resp.StatusCode != 404 {
		t.Errorf("/v1/models/nope: %d %s", resp.StatusCode, b)
	}
	if resp, b := get("/v1/models/"+modelID+".gguf", "Authorization", "Bearer k"); resp.StatusCode != 200 {
		t.Errorf("the model's file name is an alias: %d %s", resp.StatusCode, b)
	}
}

// TestHeaderTimeout opens a connection that never finishes its headers: the
// server must close it rather than hold it forever.
func TestHeaderTimeout(t *testing.T) {
	ts := start(t, Config{ReadHeaderTimeout: 200 * time.Millisecond})
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("POST /v1/completions HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	// Generous bound: this checks that the connection is closed at all, not
	// how fast.
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	b, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after 20 s with headers unfinished (read %q)", b)
	}
}

// TestBodyTimeout sends headers promising a body that never comes: 408.
func TestBodyTimeout(t *testing.T) {
	ts := start(t, Config{BodyTimeout: 200 * time.Millisecond})
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"prompt\":")); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no response to a stalled body: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("status %d, want 408: %s", resp.StatusCode, b)
	}
	if e := apiError(t, b); e.Code != "timeout" {
		t.Errorf("code %q", e.Code)
	}
}

// TestHeadersTooLarge: Go's server answers 431 past the header limit.
func TestHeadersTooLarge(t *testing.T) {
	ts := start(t, Config{})
	req, _ := http.NewRequest(http.MethodGet, ts.url+"/health", nil)
	req.Header.Set("X-Big", strings.Repeat("a", maxHeaderBytes+4096))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("status %d, want 431", resp.StatusCode)
	}
}
