package server

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"tamp/engine"
	"tamp/internal/testdata"
	"tamp/sample"
)

const modelID = "stories260K"

func openEngine(t testing.TB) *engine.Engine {
	t.Helper()
	e, err := engine.Open(testdata.Path(t, "stories260K.gguf"), engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// testServer is a server listening on a loopback port.
type testServer struct {
	*Server
	url  string // "http://127.0.0.1:PORT"
	done chan error
}

// start runs a server for the test on 127.0.0.1 and shuts it down when the
// test ends. cfg.Engine defaults to stories260K, cfg.Context to 256.
func start(t testing.TB, cfg Config) *testServer {
	t.Helper()
	if cfg.Engine == nil {
		cfg.Engine = openEngine(t)
	}
	if cfg.Context == 0 {
		cfg.Context = 256
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: s, url: "http://" + ln.Addr().String(), done: make(chan error, 1)}
	go func() { ts.done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		if err := <-ts.done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ts
}

// post sends a JSON body and returns the response with its body read.
func post(t testing.TB, url, body string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// apiError decodes an OpenAI-style error body, failing the test if it is not
// one.
func apiError(t testing.TB, body []byte) *APIError {
	t.Helper()
	var e struct {
		Error *APIError `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == nil || e.Error.Message == "" || e.Error.Type == "" {
		t.Fatalf("not an OpenAI error body (%v): %s", err, body)
	}
	return e.Error
}

// greedyText is what tamp run prints after the prompt for a greedy
// generation of n tokens in a context of ctx: the reference the server must
// reproduce.
func greedyText(t testing.TB, e *engine.Engine, prompt string, n, ctx int) string {
	t.Helper()
	p := sample.DefaultParams()
	p.Temperature = 0
	var sb strings.Builder
	if _, err := e.Generate(context.Background(), prompt, engine.GenerateOptions{MaxTokens: n, Context: ctx, Sampling: p,
		OnText: func(s string) error { sb.WriteString(s); return nil }}); err != nil {
		t.Fatal(err)
	}
	return sb.String()
}

// sseEvents reads a server-sent event stream to its end and returns the data
// of each event.
func sseEvents(t testing.TB, r io.Reader) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			out = append(out, data)
		}
	}
	if err := sc.Err(); err != nil {
		t.Errorf("reading the event stream: %v", err) // not Fatal: callers run in goroutines
	}
	return out
}
