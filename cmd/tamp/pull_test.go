package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"tamp/internal/testdata"
)

// TestRunDownloadsReference: a model given as a URL is downloaded into the
// models directory on first use and found there afterwards.
func TestRunDownloadsReference(t *testing.T) {
	data, err := os.ReadFile(testdata.Path(t, "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.ServeContent(w, r, "stories260K.gguf", testModTime, bytesReader(data))
	}))
	defer srv.Close()
	dir := t.TempDir()
	t.Setenv("TAMP_MODELS", dir)
	url := srv.URL + "/models/stories260K.gguf"
	out, stderr, err := tamp(t, "run", "-m", url, "-p", "Once upon a time", "-n", "8", "--temp", "0")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !strings.HasPrefix(out, "Once upon a time, there was a little girl") {
		t.Errorf("output %q", out)
	}
	if !strings.Contains(stderr, "downloading "+url) {
		t.Errorf("download not announced: %q", stderr)
	}
	if fi, err := os.Stat(filepath.Join(dir, "stories260K.gguf")); err != nil || fi.Size() != int64(len(data)) {
		t.Fatalf("downloaded file: %v", err)
	}
	before := hits.Load()
	if _, _, err := tamp(t, "run", "-m", url, "-p", "Once", "-n", "2"); err != nil {
		t.Fatal(err)
	}
	if hits.Load() != before {
		t.Errorf("second run downloaded again")
	}
}

var testModTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
