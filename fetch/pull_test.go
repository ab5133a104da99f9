package fetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"tamp/internal/testdata"
)

func TestMain(m *testing.M) {
	retryBackoff = time.Millisecond // retries of failing test servers need not wait
	os.Exit(m.Run())
}

// ggufBytes returns n bytes that start like a GGUF file.
func ggufBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed+1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	copy(b, "GGUF")
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// recorder notes each request a test server sees.
type recorder struct {
	mu   sync.Mutex
	reqs []string // "METHOD PATH RANGE"
}

func (rc *recorder) note(r *http.Request) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	line := strings.TrimSpace(r.Method + " " + r.URL.Path + " " + r.Header.Get("Range"))
	if ir := r.Header.Get("If-Range"); ir != "" {
		line += " if-range " + ir
	}
	rc.reqs = append(rc.reqs, line)
}

func (rc *recorder) all() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.reqs...)
}

// serve starts a loopback server whose handler also records requests.
func serve(t *testing.T, h http.HandlerFunc) (*httptest.Server, *recorder) {
	t.Helper()
	rc := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.note(r)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, rc
}

func serveContent(data []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	}
}

// checkResult asserts that Pull produced exactly want at dir/name and left
// no partial file behind.
func checkResult(t *testing.T, path, dir, name string, want []byte) {
	t.Helper()
	if exp := filepath.Join(dir, name); path != exp {
		t.Errorf("Pull returned %s, want %s", path, exp)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("downloaded %d bytes (sha256 %s), want %d bytes (sha256 %s)", len(got), sha(got), len(want), sha(want))
	}
	for _, p := range []string{path + partialSuffix, path + partialSuffix + metaSuffix} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left behind (stat error %v)", p, err)
		}
	}
}

// checkNothing asserts that a failed Pull left neither the file nor a partial.
func checkNothing(t *testing.T, dir, name string) {
	t.Helper()
	for _, p := range []string{filepath.Join(dir, name), filepath.Join(dir, name+partialSuffix), filepath.Join(dir, name+partialSuffix+metaSuffix)} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s exists after a failed pull (stat error %v)", p, err)
		}
	}
}

func TestPullFull(t *testing.T) {
	data := ggufBytes(300_000, 1)
	srv, rc := serve(t, serveContent(data))
	dir := t.TempDir()
	var progress bytes.Buffer
	p, err := Pull(context.Background(), srv.URL+"/files/model.gguf?download=1", PullOptions{Dir: dir, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, p, dir, "model.gguf", data)
	if reqs := rc.all(); len(reqs) != 1 || reqs[0] != "GET /files/model.gguf" {
		t.Errorf("requests %q, want one plain GET", reqs)
	}
	if !strings.Contains(progress.String(), "model.gguf") || !strings.Contains(progress.String(), "100%") {
		t.Errorf("progress output %q lacks the name or the finished bar", progress.String())
	}
}

func TestPullCreatesModelsDir(t *testing.T) {
	data := ggufBytes(1000, 2)
	srv, _ := serve(t, serveContent(data))
	dir := filepath.Join(t.TempDir(), "a", "b")
	t.Setenv(EnvModels, dir)
	p, err := Pull(context.Background(), srv.URL+"/m.gguf", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, p, dir, "m.gguf", data)
	if r, err := Resolve(srv.URL + "/m.gguf"); err != nil || r != p {
		t.Errorf("Resolve after Pull = %q, %v; want %q", r, err, p)
	}
}

func TestPullHFPaths(t *testing.T) {
	data := ggufBytes(5000, 3)
	tests := []struct {
		ref, path, name string
	}{
		{"hf:owner/repo/file.gguf", "/owner/repo/resolve/main/file.gguf", "file.gguf"},
		{"hf:owner/repo/sub/dir/file.gguf", "/owner/repo/resolve/main/sub/dir/file.gguf", "file.gguf"},
		{"hf:owner/repo@v1.2/file.gguf", "/owner/repo/resolve/v1.2/file.gguf", "file.gguf"},
		{"hf:ggml-org/models/tinyllamas/stories260K-alt.gguf", "/ggml-org/models/resolve/main/tinyllamas/stories260K-alt.gguf", "stories260K-alt.gguf"},
		{"HF:o/r@abc123/a b.gguf", "/o/r/resolve/abc123/a b.gguf", "a b.gguf"},
	}
	for _, tc := range tests {
		t.Run(tc.ref, func(t *testing.T) {
			srv, rc := serve(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != tc.path {
					http.NotFound(w, r)
					return
				}
				serveContent(data)(w, r)
			})
			dir := t.TempDir()
			p, err := Pull(context.Background(), tc.ref, PullOptions{Dir: dir, BaseURL: srv.URL + "/"})
			if err != nil {
				t.Fatalf("%v (requests %q)", err, rc.all())
			}
			checkResult(t, p, dir, tc.name, data)
		})
	}
}

// hfServer mimics Hugging Face: the resolve URL redirects to a CDN, stating
// the file's sha256 and size in X-Linked-* headers on the redirect; the CDN
// sends an ETag of its own that is not the sha256.
func hfServer(t *testing.T, data []byte, linkedSHA string) (*httptest.Server, *recorder) {
	return serve(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/o/r/resolve/main/"):
			w.Header().Set("X-Linked-Etag", `"`+linkedSHA+`"`)
			w.Header().Set("X-Linked-Size", fmt.Sprint(len(data)))
			w.Header().Set("ETag", `"0123456789012345678901234567890123456789"`)
			http.Redirect(w, r, "/cdn/blob", http.StatusFound)
		case r.URL.Path == "/cdn/blob":
			w.Header().Set("ETag", `"`+strings.Repeat("ab", 32)+`"`)
			serveContent(data)(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}

func TestPullHFRedirectChecksum(t *testing.T) {
	data := ggufBytes(100_000, 4)
	t.Run("match", func(t *testing.T) {
		srv, rc := hfServer(t, data, sha(data))
		dir := t.TempDir()
		p, err := Pull(context.Background(), "hf:o/r/x.gguf", PullOptions{Dir: dir, BaseURL: srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		checkResult(t, p, dir, "x.gguf", data)
		if reqs := rc.all(); len(reqs) != 2 || reqs[1] != "GET /cdn/blob" {
			t.Errorf("requests %q, want the redirect and the CDN GET", reqs)
		}
	})
	t.Run("mismatch", func(t *testing.T) {
		wrong := sha(append([]byte("x"), data...))
		srv, _ := hfServer(t, data, wrong)
		dir := t.TempDir()
		_, err := Pull(context.Background(), "hf:o/r/x.gguf", PullOptions{Dir: dir, BaseURL: srv.URL})
		if err == nil || !strings.Contains(err.Error(), "sha256 mismatch") || !strings.Contains(err.Error(), wrong) {
			t.Fatalf("err = %v, want a sha256 mismatch naming %s", err, wrong)
		}
		checkNothing(t, dir, "x.gguf")
	})
	t.Run("given sha overrides header", func(t *testing.T) {
		srv, _ := hfServer(t, data, strings.Repeat("0", 64))
		dir := t.TempDir()
		p, err := Pull(context.Background(), "hf:o/r/x.gguf", PullOptions{Dir: dir, BaseURL: srv.URL, SHA256: strings.ToUpper(sha(data))})
		if err != nil {
			t.Fatal(err)
		}
		checkResult(t, p, dir, "x.gguf", data)
	})
}

func TestPullETagTrust(t *testing.T) {
	data := ggufBytes(20_000, 5)
	wrongETag := `"` + strings.Repeat("cd", 32) + `"`
	h := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", wrongETag)
		serveContent(data)(w, r)
	}
	// A plain URL's ETag is not taken as a checksum.
	srv, _ := serve(t, h)
	dir := t.TempDir()
	p, err := Pull(context.Background(), srv.URL+"/x.gguf", PullOptions{Dir: dir})
	if err != nil {
		t.Fatalf("plain URL with a 64-hex ETag: %v", err)
	}
	checkResult(t, p, dir, "x.gguf", data)
	// Hugging Face's own ETag (no redirect) is.
	dir = t.TempDir()
	_, err = Pull(context.Background(), "hf:o/r/x.gguf", PullOptions{Dir: dir, BaseURL: srv.URL})
	if err == nil || !strings.Contains(err.Error(), "sha256 mismatch") {
		t.Fatalf("hf: ref with a wrong ETag: err = %v, want sha256 mismatch", err)
	}
	checkNothing(t, dir, "x.gguf")
	// A weak ETag never is.
	wrongETag = `W/"` + sha(append([]byte("y"), data...)) + `"`
	dir = t.TempDir()
	if _, err := Pull(context.Background(), "hf:o/r/x.gguf", PullOptions{Dir: dir, BaseURL: srv.URL}); err != nil {
		t.Fatalf("weak ETag: %v", err)
	}
}

// dropHandler sends the first cut bytes of data on the first request, then
// kills the connection; later requests are served properly.
func dropHandler(data []byte, cut int) http.HandlerFunc {
	var mu sync.Mutex
	first := true
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		f := first
		first = false
		mu.Unlock()
		if !f {
			serveContent(data)(w, r)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.WriteHeader(http.StatusOK)
		w.Write(data[:cut])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
}

func TestPullResumesDroppedConnection(t *testing.T) {
	data := ggufBytes(500_000, 6)
	srv, rc := serve(t, dropHandler(data, 200_000))
	dir := t.TempDir()
	p, err := Pull(context.Background(), srv.URL+"/m.gguf", PullOptions{Dir: dir, Progress: new(bytes.Buffer)})
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, p, dir, "m.gguf", data)
	reqs := rc.all()
	if len(reqs) != 2 {
		t.Fatalf("requests %q, want 2", reqs)
	}
	var off int
	if _, err := fmt.Sscanf(reqs[1], "GET /m.gguf bytes=%d-", &off); err != nil || off <= 0 || off > 200_000 {
		t.Errorf("second request %q, want a Range request from the bytes received (0 < offset <= 200000)", reqs[1])
	}
}

func TestPullResumesPartialFile(t *testing.T) {
	data := ggufBytes(400_000, 7)
	tests := []struct {
		name    string
		partial []byte
		handler http.HandlerFunc
		want    string // the Range of the (last) request
	}{
		{"range honoured", data[:123_456], serveContent(data), "bytes=123456-"},
		{
			// The partial is garbage, but the server starts over anyway.
			name: "range ignored", partial: bytes.Repeat([]byte("x"), 5000),
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", fmt.Sprint(len(data)))
				w.Write(data)
			},
			want: "bytes=5000-",
		},
		{"already complete", data, serveContent(data), fmt.Sprintf("bytes=%d-", len(data))},
		{"longer than the file", append(append([]byte(nil), data...), "junk"...), serveContent(data), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, rc := serve(t, tc.handler)
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "m.gguf"+partialSuffix), tc.partial, 0o644); err != nil {
				t.Fatal(err)
			}
			var progress bytes.Buffer
			p, err := Pull(context.Background(), srv.URL+"/m.gguf", PullOptions{Dir: dir, SHA256: sha(data), Progress: &progress})
			if err != nil {
				t.Fatalf("%v (requests %q)", err, rc.all())
			}
			checkResult(t, p, dir, "m.gguf", data)
			reqs := rc.all()
			if last := reqs[len(reqs)-1]; last != strings.TrimSpace("GET /m.gguf "+tc.want) {
				t.Errorf("requests %q, want the last to be GET with Range %q", reqs, tc.want)
			}
			if tc.name == "range honoured" && !strings.Contains(progress.String(), "resuming") {
				t.Errorf("progress %q does not say it resumed", progress.String())
			}
		})
	}
}

// TestPullPartialProvenance checks that a partial download is only resumed
// from the source it came from, and only while that file is unchanged.
func TestPullPartialProvenance(t *testing.T) {
	v1 := ggufBytes(100_000, 20)
	v2 := ggufBytes(100_000, 21)
	etag := func(b []byte) string { return `"` + sha(b)[:16] + `"` }
	tests := []struct {
		name     string
		metaURL  string // "" means the pulled URL; "none" means no meta file
		metaETag string
		serve    []byte
		wantReq  string
	}{
		{"same file resumes", "", etag(v1), v1, "GET /m.gguf bytes=40000- if-range " + etag(v1)},
		{"changed file starts over", "", etag(v1), v2, "GET /m.gguf bytes=40000- if-range " + etag(v1)},
		{"other source starts over", "http://elsewhere.example/m.gguf", etag(v1), v2, "GET /m.gguf"},
		{"no record resumes on trust", "none", "", v1, "GET /m.gguf bytes=40000-"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, rc := serve(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("ETag", etag(tc.serve))
				serveContent(tc.serve)(w, r)
			})
			dir := t.TempDir()
			partial := filepath.Join(dir, "m.gguf"+partialSuffix)
			os.WriteFile(partial, v1[:40_000], 0o644)
			if tc.metaURL != "none" {
				u := tc.metaURL
				if u == "" {
					u = srv.URL + "/m.gguf"
				}
				if err := writeMeta(partial+metaSuffix, partialMeta{URL: u, ETag: tc.metaETag}); err != nil {
					t.Fatal(err)
				}
			}
			p, err := Pull(context.Background(), srv.URL+"/m.gguf", PullOptions{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			checkResult(t, p, dir, "m.gguf", tc.serve)
			if reqs := rc.all(); len(reqs) != 1 || reqs[0] != tc.wantReq {
				t.Errorf("requests %q, want [%q]", reqs, tc.wantReq)
			}
		})
	}
}

func TestPullCompletePartialWithWrongBytes(t *testing.T) {
	data := ggufBytes(10_000, 8)
	srv, _ := serve(t, serveContent(data))
	dir := t.TempDir()
	bad := append([]byte(nil), data...)
	bad[5000] ^= 1
	os.WriteFile(filepath.Join(dir, "m.gguf"+partialSuffix), bad, 0o644)
	_, err := Pull(context.Background(), srv.URL+"/m.gguf", PullOptions{Dir: dir, SHA256: sha(data)})
	if err == nil || !strings.Contains(err.Error(), "sha256 mismatch") {
		t.Fatalf("err = %v, want sha256 mismatch", err)
	}
	checkNothing(t, dir, "m.gguf")
}

func TestPullVerification(t *testing.T) {
	data := ggufBytes(50_000, 9)
	html := []byte("<!doctype html><title>Sign in</title>")
	tests := []struct {
		name    string
		file    string
		body    []byte
		opts    PullOptions
		wantErr string // "" for success
	}{
		{"sha mismatch", "m.gguf", data, PullOptions{SHA256: strings.Repeat("1", 64)}, "sha256 mismatch"},
		{"size mismatch", "m.gguf", data, PullOptions{Size: int64(len(data)) + 1}, "expected 50001"},
		{"size and sha match", "m.gguf", data, PullOptions{Size: int64(len(data)), SHA256: sha(data)}, ""},
		{"not GGUF", "m.gguf", html, PullOptions{}, "not a GGUF file"},
		{"not GGUF, upper-case extension", "M.GGUF", html, PullOptions{}, "not a GGUF file"},
		{"empty .gguf", "m.gguf", nil, PullOptions{}, "not a GGUF file"},
		{"other extension need not be GGUF", "tok.bin", html, PullOptions{}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := serve(t, serveContent(tc.body))
			dir := t.TempDir()
			tc.opts.Dir = dir
			p, err := Pull(context.Background(), srv.URL+"/"+tc.file, tc.opts)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				checkResult(t, p, dir, tc.file, tc.body)
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
			}
			checkNothing(t, dir, tc.file)
		})
	}
}

func TestPullServerLiesAboutLength(t *testing.T) {
	data := ggufBytes(10_000, 10)
	// Claims more than it sends, on every connection.
	srv, rc := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(data)+100))
		w.Write(data)
		panic(http.ErrAbortHandler)
	})
	dir := t.TempDir()
	_, err := Pull(context.Background(), srv.URL+"/m.gguf", PullOptions{Dir: dir})
	if err == nil {
		t.Fatal("Pull succeeded on a truncated body")
	}
	if len(rc.all()) < 2 {
		t.Errorf("requests %q: the truncated download was not retried", rc.all())
	}
	if _, err := os.Stat(filepath.Join(dir, "m.gguf")); !os.IsNotExist(err) {
		t.Errorf("a truncated download was installed")
	}
}

func TestPullServerSendsTooMuch(t *testing.T) {
	data := ggufBytes(20_000, 18)
	// No Content-Length (chunked), so only the expected size bounds it.
	srv, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write(data[:10])
		w.(http.Flusher).Flush()
		w.Write(data[10:])
	})
	dir := t.TempDir()
	_, err := Pull(context.Background(), srv.URL+"/m.gguf", PullOptions{Dir: dir, Size: 1000})
	if err == nil || !strings.Contains(err.Error(), "more than the 1000 bytes") {
		t.Fatalf("err = %v, want a complaint about too many bytes", err)
	}
	checkNothing(t, dir, "m.gguf")
}

func TestPullHTTPErrors(t *testing.T) {
	tests := []struct {
		ref  string
		code int
		want []string
	}{
		{"hf:o/r/m.gguf", 404, []string{"404", "repository or file does not exist", "/o/r/resolve/main/m.gguf"}},
		{"/m.gguf", 404, []string{"404", "file does not exist"}},
		{"hf:o/r/m.gguf", 401, []string{"401", "needs authentication", EnvHFToken}},
		{"hf:o/r/m.gguf", 403, []string{"403", "needs authentication"}},
		{"/m.gguf", 401, []string{"401", "needs authentication"}},
		{"/m.gguf", 500, []string{"500", "giving up"}},
		{"/m.gguf", 429, []string{"429", "giving up"}},
		{"/m.gguf", 416, []string{"416"}},
		{"/m.gguf", 302, []string{"302"}}, // a redirect without Location
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.ref, tc.code), func(t *testing.T) {
			srv, rc := serve(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.code)
			})
			ref := tc.ref
			if strings.HasPrefix(ref, "/") {
				ref = srv.URL + ref
			}
			dir := t.TempDir()
			_, err := Pull(context.Background(), ref, PullOptions{Dir: dir, BaseURL: srv.URL})
			if err == nil {
				t.Fatal("Pull succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			retried := tc.code >= 500 || tc.code == 429
			if n := len(rc.all()); (n > 1) != retried {
				t.Errorf("%d requests for HTTP %d; retry expected: %v", n, tc.code, retried)
			}
			if _, err := os.Stat(filepath.Join(dir, "m.gguf")); !os.IsNotExist(err) {
				t.Errorf("file installed after HTTP %d", tc.code)
			}
		})
	}
}

func TestPullNetworkError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/m.gguf"
	srv.Close() // nothing listens there now
	_, err := Pull(context.Background(), url, PullOptions{Dir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "network error") {
		t.Fatalf("err = %v, want a network error", err)
	}
}

// blockHandler sends the first cut bytes, then holds the connection open
// without sending more until the client goes away; later requests are
// served properly.
func blockHandler(data []byte, cut int) http.HandlerFunc {
	var mu sync.Mutex
	first := true
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		f := first
		first = false
		mu.Unlock()
		if !f {
			serveContent(data)(w, r)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.Write(data[:cut])
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}
}

func TestPullCancel(t *testing.T) {
	data := ggufBytes(300_000, 11)
	const cut = 100_000
	srv, rc := serve(t, blockHandler(data, cut))
	dir := t.TempDir()
	partial := filepath.Join(dir, "m.gguf"+partialSuffix)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := Pull(ctx, srv.URL+"/m.gguf", PullOptions{Dir: dir})
		errc <- err
	}()
	// Wait until the first part is on disk, then cancel.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if fi, err := os.Stat(partial); err == nil && fi.Size() == cut {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first part never reached the partial file")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	err := <-errc
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if !strings.Contains(err.Error(), "resume") {
		t.Errorf("error %q does not say how to resume", err)
	}
	if fi, err := os.Stat(partial); err != nil || fi.Size() != cut {
		t.Fatalf("partial after cancel: %v, %v; want %d bytes kept", fi, err, cut)
	}
	p, err := Pull(context.Background(), srv.URL+"/m.gguf", PullOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, p, dir, "m.gguf", data)
	if reqs := rc.all(); reqs[len(reqs)-1] != fmt.Sprintf("GET /m.gguf bytes=%d-", cut) {
		t.Errorf("requests %q, want the last to resume at %d", reqs, cut)
	}
}

func TestPullCancelledBeforeStart(t *testing.T) {
	srv, _ := serve(t, serveContent(ggufBytes(100, 12)))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Pull(ctx, srv.URL+"/m.gguf", PullOptions{Dir: t.TempDir()})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestPullStalledConnection(t *testing.T) {
	data := ggufBytes(200_000, 13)
	srv, rc := serve(t, blockHandler(data, 50_000))
	dir := t.TempDir()
	p, err := Pull(context.Background(), srv.URL+"/m.gguf", PullOptions{Dir: dir, StallTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, p, dir, "m.gguf", data)
	if reqs := rc.all(); len(reqs) != 2 || reqs[1] != "GET /m.gguf bytes=50000-" {
		t.Errorf("requests %q, want a resume at 50000 after the stall", reqs)
	}
}

func TestPullExistingFile(t *testing.T) {
	data := ggufBytes(30_000, 14)
	old := ggufBytes(30_000, 15) // same size, other bytes
	tests := []struct {
		name     string
		existing []byte
		linked   bool // server states the sha256 in X-Linked-Etag
		opts     PullOptions
		wantReqs []string
	}{
		{"given sha matches: no request", data, false, PullOptions{SHA256: sha(data)}, nil},
		{"given size matches: no request", data, false, PullOptions{Size: int64(len(data))}, nil},
		{"given sha differs: download", old, false, PullOptions{SHA256: sha(data)}, []string{"GET /m.gguf"}},
		{"server sha matches: HEAD only", data, true, PullOptions{}, []string{"HEAD /m.gguf"}},
		{"server sha differs: download", old, true, PullOptions{}, []string{"HEAD /m.gguf", "GET /m.gguf"}},
		{"size differs: download", data[:100], false, PullOptions{}, []string{"HEAD /m.gguf", "GET /m.gguf"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, rc := serve(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.linked {
					w.Header().Set("X-Linked-Etag", sha(data))
				}
				serveContent(data)(w, r)
			})
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "m.gguf"), tc.existing, 0o644)
			tc.opts.Dir = dir
			p, err := Pull(context.Background(), srv.URL+"/m.gguf", tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			checkResult(t, p, dir, "m.gguf", data)
			if reqs := rc.all(); strings.Join(reqs, ",") != strings.Join(tc.wantReqs, ",") {
				t.Errorf("requests %q, want %q", reqs, tc.wantReqs)
			}
		})
	}
}

// TestPullDefaultModel serves the real stories260K.gguf where Hugging Face
// keeps it and checks Pull verifies it against tamp's record of its sha256,
// with no checksum from the server.
func TestPullDefaultModel(t *testing.T) {
	real, err := os.ReadFile(testdata.Path(t, DefaultModel))
	if err != nil {
		t.Fatal(err)
	}
	for _, corrupt := range []bool{false, true} {
		t.Run(fmt.Sprint("corrupt=", corrupt), func(t *testing.T) {
			body := real
			if corrupt {
				body = append([]byte(nil), real...)
				body[len(body)/2] ^= 0x40
			}
			srv, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/ggml-org/models/resolve/main/tinyllamas/stories260K.gguf" {
					http.NotFound(w, r)
					return
				}
				serveContent(body)(w, r)
			})
			dir := t.TempDir()
			p, err := Pull(context.Background(), DefaultRef, PullOptions{Dir: dir, BaseURL: srv.URL})
			if corrupt {
				if err == nil || !strings.Contains(err.Error(), "sha256 mismatch") {
					t.Fatalf("err = %v, want sha256 mismatch", err)
				}
				checkNothing(t, dir, DefaultModel)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkResult(t, p, dir, DefaultModel, real)
		})
	}
}

func TestPullHFToken(t *testing.T) {
	data := ggufBytes(1000, 16)
	t.Setenv(EnvHFToken, "secret-token")
	var mu sync.Mutex
	var auth []string
	srv, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth = append(auth, r.Header.Get("Authorization"))
		mu.Unlock()
		serveContent(data)(w, r)
	})
	if _, err := Pull(context.Background(), "hf:o/r/m.gguf", PullOptions{Dir: t.TempDir(), BaseURL: srv.URL}); err != nil {
		t.Fatal(err)
	}
	if _, err := Pull(context.Background(), srv.URL+"/m.gguf", PullOptions{Dir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(auth) != 2 || auth[0] != "Bearer secret-token" || auth[1] != "" {
		t.Errorf("Authorization headers %q, want the token for hf: only", auth)
	}
}

func TestPullBadArguments(t *testing.T) {
	srv, rc := serve(t, serveContent(ggufBytes(100, 17)))
	tests := []struct {
		ref  string
		opts PullOptions
		want string
	}{
		{"stories260K.gguf", PullOptions{}, "cannot pull"},
		{"ftp://example.org/m.gguf", PullOptions{}, "cannot pull"},
		{"hf:owner/m.gguf", PullOptions{}, "too few parts"},
		{"hf:o/r/../m.gguf", PullOptions{}, "bad path element"},
		{"hf:o/r@/m.gguf", PullOptions{}, "empty revision"},
		{"hf:o//m.gguf", PullOptions{}, "bad path element"},
		{srv.URL + "/", PullOptions{}, "names no file"},
		{srv.URL + "/m.gguf.partial", PullOptions{}, "unfinished downloads"},
		{srv.URL + "/m.gguf", PullOptions{SHA256: "abc"}, "not 64 hex digits"},
		{srv.URL + "/m.gguf", PullOptions{SHA256: strings.Repeat("g", 64)}, "not 64 hex digits"},
		{srv.URL + "/m.gguf", PullOptions{Size: -5}, "negative size"},
	}
	for _, tc := range tests {
		t.Run(tc.ref, func(t *testing.T) {
			tc.opts.Dir = t.TempDir()
			_, err := Pull(context.Background(), tc.ref, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
	if reqs := rc.all(); len(reqs) != 0 {
		t.Errorf("bad arguments reached the server: %q", reqs)
	}
}

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		in                 string
		first, last, total int64
		ok                 bool
	}{
		{"bytes 0-99/100", 0, 99, 100, true},
		{"bytes 10-99/*", 10, 99, -1, true},
		{"bytes */100", -1, -1, 100, true},
		{"bytes */*", -1, -1, -1, false},
		{"bytes 10-5/100", -1, -1, 100, false},
		{"bytes 0-100/100", -1, -1, 100, false},
		{"bytes 0-9", -1, -1, -1, false},
		{"items 0-9/10", -1, -1, -1, false},
		{"bytes a-9/10", -1, -1, 10, false},
		{"", -1, -1, -1, false},
	}
	for _, tc := range tests {
		f, l, n, ok := parseContentRange(tc.in)
		if ok != tc.ok || (ok && (f != tc.first || l != tc.last || n != tc.total)) {
			t.Errorf("parseContentRange(%q) = %d, %d, %d, %v; want %d, %d, %d, %v", tc.in, f, l, n, ok, tc.first, tc.last, tc.total, tc.ok)
		}
	}
}
