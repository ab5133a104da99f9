package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"tamp/internal/testdata"
)

// startServe runs `tamp serve` in-process on a free loopback port and
// returns its base URL and the command's result channel.
func startServe(t *testing.T, ctx context.Context, args ...string) (string, <-chan error) {
	t.Helper()
	pr, pw := io.Pipe()
	root := newRoot()
	root.SetOut(io.Discard)
	root.SetErr(pw)
	root.SetArgs(append([]string{"serve", "-m", testdata.Path(t, "stories260K.gguf"), "--port", "0"}, args...))
	errc := make(chan error, 1)
	go func() {
		err := root.ExecuteContext(ctx)
		pw.Close()
		errc <- err
	}()
	addr := regexp.MustCompile(`on (http://127\.0\.0\.1:\d+):`)
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if m := addr.FindStringSubmatch(sc.Text()); m != nil {
			go io.Copy(io.Discard, pr) // the request log
			return m[1], errc
		}
	}
	t.Fatalf("tamp serve never said where it listens: %v", <-errc)
	return "", nil
}

// TestServe starts the command, checks that its greedy completion is what
// `tamp run` prints for the same prompt, and stops it through its context
// as Ctrl-C would.
func TestServe(t *testing.T) {
	const prompt = "Once upon a time"
	out, _, err := tamp(t, "run", "-m", testdata.Path(t, "stories260K.gguf"), "-p", prompt, "-n", "40", "--temp", "0", "--ctx", "128")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.TrimSuffix(strings.TrimPrefix(out, prompt), "\n")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url, errc := startServe(t, ctx, "--parallel", "2", "--ctx", "128")
	resp, err := http.Post(url+"/v1/completions", "application/json",
		strings.NewReader(`{"prompt": "`+prompt+`", "max_tokens": 40, "temperature": 0}`))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Choices []struct{ Text string }
	}
	err = json.NewDecoder(resp.Body).Decode(&c)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || len(c.Choices) != 1 {
		t.Fatalf("completion: %d %v %+v", resp.StatusCode, err, c)
	}
	if c.Choices[0].Text != want {
		t.Errorf("tamp serve gave\n%q\ntamp run prints\n%q", c.Choices[0].Text, want)
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("tamp serve after shutdown: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("tamp serve did not stop")
	}
}

func TestServeFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--kv", "snapkv"}, // needs a budget
		{"--kv", "full", "--kv-bits", "3"},
		{"--kv", "nosuch", "--kv-budget", "64"},
		{"--kv", "snapkv", "--kv-budget", "64", "--kv-table", "/nonexistent/table.json"},
		{"--kv-type", "q4"},
		{"--parallel", "-3"},
		{"--chat-template", "/nonexistent/template.jinja"},
	} {
		// A cancelled context makes a serve that wrongly starts return at
		// once instead of serving forever.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		root := newRoot()
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		root.SetArgs(append([]string{"serve", "-m", testdata.Path(t, "stories260K.gguf"), "--port", "0"}, args...))
		if err := root.ExecuteContext(ctx); err == nil {
			t.Errorf("serve %v: no error", args)
		}
	}
}
