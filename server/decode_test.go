package server

import (
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestDecodeCompletion(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		texts  []string
		tokens [][]int32
		stop   []string
		n      int
	}{
		{"string", `{"prompt": "hi"}`, []string{"hi"}, nil, nil, 1},
		{"strings", `{"prompt": ["a", "b"], "n": 2}`, []string{"a", "b"}, nil, nil, 2},
		{"tokens", `{"prompt": [1, 2, 3]}`, nil, [][]int32{{1, 2, 3}}, nil, 1},
		{"token lists", `{"prompt": [[1], [2, 3]]}`, nil, [][]int32{{1}, {2, 3}}, nil, 1},
		{"stop string", `{"prompt": "x", "stop": "\n"}`, []string{"x"}, nil, []string{"\n"}, 1},
		{"stop list", `{"prompt": "x", "stop": ["a", "bc"]}`, []string{"x"}, nil, []string{"a", "bc"}, 1},
		{"nulls", `{"prompt": "x", "stop": null, "temperature": null, "tamp": null, "stream": null}`, []string{"x"}, nil, nil, 1},
		{"everything", `{"model": "m", "prompt": "x", "max_tokens": 5, "temperature": 0.5, "top_p": 0.9, "top_k": 10, "min_p": 0.1,
			"repeat_penalty": 1.1, "repeat_last_n": 32, "presence_penalty": 0, "frequency_penalty": 0, "seed": 3, "n": 2,
			"stream": true, "stream_options": {"include_usage": true}, "user": "u",
			"tamp": {"kv_type": "f32", "kv": "snapkv", "kv_budget": 64, "kv_bits": 4}}`, []string{"x"}, nil, nil, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := decodeCompletion([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(r.Prompt.Texts, tc.texts) || !reflect.DeepEqual(r.Prompt.Tokens, tc.tokens) {
				t.Errorf("prompt %+v, want texts %q tokens %v", r.Prompt, tc.texts, tc.tokens)
			}
			if !slices.Equal([]string(r.Stop), tc.stop) {
				t.Errorf("stop %q, want %q", r.Stop, tc.stop)
			}
			n := 1
			if r.N != nil {
				n = *r.N
			}
			if n != tc.n {
				t.Errorf("n %d, want %d", n, tc.n)
			}
		})
	}
}

func TestDecodeChat(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []Message
		max  int
	}{
		{"plain", `{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]}`,
			[]Message{{Role: "system", Content: "s"}, {Role: "user", Content: "u"}}, 0},
		{"parts", `{"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]}`,
			[]Message{{Role: "user", Content: "ab"}}, 0},
		{"null content", `{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": null}]}`,
			[]Message{{Role: "user", Content: "q"}, {Role: "assistant"}}, 0},
		{"name and developer", `{"messages": [{"role": "developer", "content": "d", "name": "x"}]}`,
			[]Message{{Role: "developer", Content: "d", Name: "x"}}, 0},
		{"max_completion_tokens wins", `{"messages": [{"role": "user", "content": "q"}], "max_tokens": 5, "max_completion_tokens": 9}`,
			[]Message{{Role: "user", Content: "q"}}, 9},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := decodeChat([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(r.Messages, tc.want) {
				t.Errorf("messages %+v, want %+v", r.Messages, tc.want)
			}
			if tc.max != 0 && (r.MaxTokens == nil || *r.MaxTokens != tc.max) {
				t.Errorf("max_tokens %v, want %d", r.MaxTokens, tc.max)
			}
		})
	}
}

// FuzzDecodeRequest feeds arbitrary bodies to both request decoders: they
// must never panic, must refuse with a 400 carrying a message, and whatever
// they accept must satisfy the limits the server relies on.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"prompt": "hi", "max_tokens": 4}`,
		`{"prompt": ["a", "b"], "n": 3, "stop": ["x", "y"]}`,
		`{"prompt": [[1, 2], [3]], "temperature": 0}`,
		`{"messages": [{"role": "user", "content": "hi"}], "stream": true, "stream_options": {"include_usage": true}}`,
		`{"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}]}]}`,
		`{"prompt": "x", "tamp": {"kv": "snapkv", "kv_budget": 128, "kv_bits": 4, "kv_type": "f32"}}`,
		`{"prompt": "x",`, `[]`, `null`, `{"prompt": "x"} 1`, `{"prompt": 1e999}`, `{"n": -1, "prompt": "x"}`,
		"{\"prompt\": \"\xff\"}", `{"prompt":"x","prompt":[1]}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		check := func(err *APIError, s *Sampling, prompts int) {
			if err != nil {
				if err.Status != http.StatusBadRequest || err.Message == "" || err.Type == "" {
					t.Fatalf("bad error %+v for %q", err, body)
				}
				return
			}
			n := 1
			if s.N != nil {
				n = *s.N
			}
			if n < 1 || n*prompts > maxChoices || prompts < 1 {
				t.Fatalf("accepted %d choices for %d prompts: %q", n, prompts, body)
			}
			if len(s.Stop) > maxStops {
				t.Fatalf("accepted %d stops", len(s.Stop))
			}
			for _, st := range s.Stop {
				if st == "" || len(st) > maxStopBytes {
					t.Fatalf("accepted stop %q", st)
				}
			}
			if s.MaxTokens != nil && *s.MaxTokens < 1 {
				t.Fatalf("accepted max_tokens %d", *s.MaxTokens)
			}
			if s.Temperature != nil && !(*s.Temperature >= 0 && *s.Temperature <= 2) {
				t.Fatalf("accepted temperature %v", *s.Temperature)
			}
			if tp := s.Tamp; tp != nil {
				if tp.KV != "" && !validPolicyName(tp.KV) {
					t.Fatalf("accepted kv %q", tp.KV)
				}
				if tp.KVBudget != nil && *tp.KVBudget < 1 {
					t.Fatalf("accepted kv_budget %d", *tp.KVBudget)
				}
			}
		}
		if r, err := decodeCompletion([]byte(body)); err != nil {
			check(err, nil, 0)
		} else {
			for _, ids := range r.Prompt.Tokens {
				if len(ids) == 0 {
					t.Fatalf("accepted an empty token prompt: %q", body)
				}
			}
			check(nil, &r.Sampling, r.Prompt.Len())
		}
		if r, err := decodeChat([]byte(body)); err != nil {
			check(err, nil, 0)
		} else {
			if len(r.Messages) == 0 {
				t.Fatalf("accepted no messages: %q", body)
			}
			for _, m := range r.Messages {
				if !slices.Contains([]string{"system", "developer", "user", "assistant"}, m.Role) {
					t.Fatalf("accepted role %q", m.Role)
				}
			}
			check(nil, &r.Sampling, 1)
		}
	})
}

func TestStopper(t *testing.T) {
	tests := []struct {
		name    string
		stops   []string
		pieces  []string
		want    []string // what each feed returns
		stopped int      // index of the piece that hits a stop, -1 for none
		rest    string   // flush after the last piece when not stopped
	}{
		{"no stops", nil, []string{"ab", "cd"}, []string{"ab", "cd"}, -1, ""},
		{"whole piece", []string{"END"}, []string{"abc", "END", "x"}, []string{"abc", ""}, 1, ""},
		{"split across pieces", []string{"END"}, []string{"abE", "N", "Dzz"}, []string{"ab", "", ""}, 2, ""},
		{"false start released", []string{"END"}, []string{"abE", "Nx", "y"}, []string{"ab", "ENx", "y"}, -1, ""},
		{"held at the end", []string{"END"}, []string{"abEN"}, []string{"ab"}, -1, "EN"},
		{"earliest wins", []string{"cd", "b"}, []string{"abcd"}, []string{"a"}, 0, ""},
		{"inside a piece", []string{"\n\n"}, []string{"one\n\ntwo"}, []string{"one"}, 0, ""},
		{"overlapping prefixes", []string{"aab"}, []string{"a", "a", "a", "b"}, []string{"", "", "a", ""}, 3, ""},
		{"multibyte", []string{"é!"}, []string{"café", "?"}, []string{"caf", "é?"}, -1, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &stopper{stops: tc.stops}
			hit := -1
			for i, p := range tc.pieces {
				out, stopped := s.feed(p)
				if i >= len(tc.want) {
					t.Fatalf("fed piece %d after the stop", i)
				}
				if out != tc.want[i] {
					t.Errorf("piece %d: out %q, want %q", i, out, tc.want[i])
				}
				if stopped {
					hit = i
					break
				}
			}
			if hit != tc.stopped {
				t.Errorf("stopped at piece %d, want %d", hit, tc.stopped)
			}
			if hit < 0 {
				if rest := s.flush(); rest != tc.rest {
					t.Errorf("flush %q, want %q", rest, tc.rest)
				}
			}
		})
	}
}

// TestStopperNeverLeaks checks on every split of a text into two pieces that
// the stopper's output is the text up to the first stop string, and never
// more.
func TestStopperNeverLeaks(t *testing.T) {
	text := "Lily saw a big red ball. The ball was red and big."
	stops := []string{"red and", "ball."}
	first := len(text)
	for _, st := range stops {
		if i := strings.Index(text, st); i >= 0 && i < first {
			first = i
		}
	}
	for cut := 0; cut <= len(text); cut++ {
		s := &stopper{stops: stops}
		var out strings.Builder
		stopped := false
		for _, p := range []string{text[:cut], text[cut:]} {
			o, st := s.feed(p)
			out.WriteString(o)
			if st {
				stopped = true
				break
			}
		}
		if !stopped {
			out.WriteString(s.flush())
		}
		if out.String() != text[:first] || !stopped {
			t.Errorf("cut %d: got %q (stopped %v), want %q", cut, out.String(), stopped, text[:first])
		}
	}
}
