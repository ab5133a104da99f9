package fetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
)

// partialSuffix marks a download in progress; Pull resumes from it.
const partialSuffix = ".partial"

// EnvHFToken names the environment variable whose value, when set, Pull
// sends as a bearer token with hf: requests, for gated or private
// repositories. Go's HTTP client drops it on redirects to other hosts.
const EnvHFToken = "HF_TOKEN"

// PullOptions adjusts Pull. The zero value downloads into ModelsDir from
// Hugging Face with http.DefaultTransport and shows no progress.
type PullOptions struct {
	// Dir is the directory to download into; "" means ModelsDir().
	Dir string
	// SHA256 is the expected sha256 of the file in hex; "" means take it
	// from the server when it states one (see Pull).
	SHA256 string
	// Size is the expected size of the file in bytes; 0 means unknown.
	Size int64
	// Progress receives a progress bar (bytes, rate, time left); nil shows
	// none.
	Progress io.Writer
	// Client makes the requests; nil means a client on
	// http.DefaultTransport. Its CheckRedirect, if any, is still honoured.
	Client *http.Client
	// BaseURL is the server hf: references are fetched from; "" means
	// DefaultBaseURL. Tests point it at a local server.
	BaseURL string
	// StallTimeout abandons a connection that delivers no data for this
	// long and resumes on a new one; 0 means one minute.
	StallTimeout time.Duration
}

// Tuning for retries. A connection that delivered data is resumed at once;
// maxFailures attempts in a row that deliver nothing end the download, with
// retryBackoff, doubling, between them.
const maxFailures = 4

// maxAttempts bounds the connections one Pull makes even while each makes
// progress, against servers that trickle a file a few bytes per connection.
const maxAttempts = 1000

var retryBackoff = 500 * time.Millisecond // var so tests can shorten it

// Pull downloads the model ref (a hf: reference or an http(s) URL) into
// opts.Dir, or ModelsDir, and returns the path of the local file, named as
// the last element of the reference.
//
// The download goes to NAME.partial and is renamed to NAME only once it is
// complete and verified. A .partial left by an interrupted Pull (network
// failure, cancelled ctx) is resumed with an HTTP Range request; a server
// that ignores Range makes it start over. NAME.partial.meta records the URL
// and the server's ETag or Last-Modified, so a partial file from another
// source is discarded rather than extended, and If-Range makes the server
// send the whole file again if it changed. A dropped or stalled connection
// is resumed automatically while it keeps delivering data.
//
// The result is verified against, where known:
//   - the size: opts.Size, else the total the server states (Content-Range,
//     Content-Length, or Hugging Face's X-Linked-Size);
//   - the sha256: opts.SHA256, else tamp's own record for DefaultRef, else a
//     64-hex-digit X-Linked-Etag header (Hugging Face sends the LFS object's
//     sha256 there, on the redirect to its CDN), else, for hf: references
//     only, a 64-hex-digit ETag. Plain URLs' ETags are not trusted as
//     checksums: many servers put other hashes there;
//   - the GGUF magic: a name ending in .gguf must start with "GGUF".
//
// On a mismatch the partial file is deleted and Pull returns an error.
//
// If NAME already exists, Pull returns it without downloading when it
// matches opts.SHA256/opts.Size, or, when those are not given, the size and
// checksum a HEAD request reports; otherwise it downloads it again.
//
// Two Pulls of the same file at once are not coordinated; don't.
func Pull(ctx context.Context, ref string, opts PullOptions) (string, error) {
	if !isRemote(ref) {
		return "", fmt.Errorf("cannot pull %q: want hf:OWNER/REPO/FILE.gguf or an http(s) URL (e.g. %s)", ref, DefaultRef)
	}
	r, err := parseRemote(ref, opts.BaseURL)
	if err != nil {
		return "", err
	}
	d := &download{r: r, opts: opts, start: -1, total: -1}
	if opts.Size < 0 {
		return "", fmt.Errorf("pull %s: negative size %d", ref, opts.Size)
	}
	if opts.SHA256 != "" {
		s, ok := parseSHA(opts.SHA256)
		if !ok {
			return "", fmt.Errorf("pull %s: --sha256 %q is not 64 hex digits", ref, opts.SHA256)
		}
		d.wantSHA, d.shaFrom = s, "given"
	} else if s, ok := knownFiles[ref]; ok {
		d.wantSHA, d.shaFrom = s, "tamp's record for "+ref
	}
	dir := opts.Dir
	if dir == "" {
		dir = ModelsDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("pull %s: cannot create the models directory: %w", ref, err)
	}
	d.final = filepath.Join(dir, r.name)
	d.partial = d.final + partialSuffix
	d.stall = opts.StallTimeout
	if d.stall <= 0 {
		d.stall = time.Minute
	}
	d.client = d.makeClient()

	if isFile(d.final) {
		ok, err := d.upToDate(ctx)
		if err != nil {
			return "", err
		}
		if ok {
			return d.final, nil
		}
	}
	if err := d.run(ctx); err != nil {
		return "", err
	}
	return d.final, nil
}

// download is the state of one Pull.
type download struct {
	r       remote
	opts    PullOptions
	client  *http.Client
	final   string
	partial string
	stall   time.Duration

	wantSHA string // expected sha256, lower-case hex, or ""
	shaFrom string // where wantSHA came from, for error messages
	total   int64  // file size the server stated, or -1
	start   int64  // partial size when the first response arrived, or -1
	size    int64  // bytes in the partial file after the last attempt
	sha     hash.Hash
	bar     *progressbar.ProgressBar

	// linked collects Hugging Face's X-Linked-* headers from redirect
	// responses, which the client otherwise discards.
	linked http.Header
}

// makeClient copies the configured client with a CheckRedirect that records
// the headers of each redirect response before applying the original policy.
func (d *download) makeClient() *http.Client {
	var c http.Client
	if d.opts.Client != nil {
		c = *d.opts.Client
	}
	orig := c.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if resp := req.Response; resp != nil {
			for _, k := range []string{"X-Linked-Etag", "X-Linked-Size"} {
				if v := resp.Header.Get(k); v != "" && d.linked.Get(k) == "" {
					d.linked.Set(k, v)
				}
			}
		}
		if orig != nil {
			return orig(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &c
}

func (d *download) newRequest(ctx context.Context, method string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, d.r.url, nil)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", d.r.ref, err)
	}
	req.Header.Set("User-Agent", "tamp")
	if d.r.hf {
		if tok := os.Getenv(EnvHFToken); tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	d.linked = http.Header{}
	return req, nil
}

// upToDate reports whether the existing final file is the one wanted.
func (d *download) upToDate(ctx context.Context) (bool, error) {
	if d.wantSHA != "" || d.opts.Size > 0 {
		return d.fileMatches(d.final, d.opts.Size, d.wantSHA)
	}
	req, err := d.newRequest(ctx, http.MethodHead)
	if err != nil {
		return false, err
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return false, d.netError(ctx, err)
	}
	resp.Body.Close()
	if err := statusError(d.r, resp); err != nil {
		if resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode >= 500 {
			return false, nil // cannot tell: download again
		}
		return false, err
	}
	size := resp.ContentLength
	if v, err := strconv.ParseInt(d.linked.Get("X-Linked-Size"), 10, 64); err == nil {
		size = v
	}
	if size < 0 {
		return false, nil
	}
	return d.fileMatches(d.final, size, d.headerSHA(resp))
}

// fileMatches checks an existing file's size and sha256 (each when given).
func (d *download) fileMatches(p string, size int64, sha string) (bool, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return false, err
	}
	if size > 0 && fi.Size() != size {
		return false, nil
	}
	if sha == "" {
		return true, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, fmt.Errorf("pull %s: reading %s: %w", d.r.ref, p, err)
	}
	return hex.EncodeToString(h.Sum(nil)) == sha, nil
}

// headerSHA returns the sha256 the server states for the file, or "".
func (d *download) headerSHA(resp *http.Response) string {
	if s, ok := parseSHA(d.linked.Get("X-Linked-Etag")); ok {
		return s
	}
	if s, ok := parseSHA(resp.Header.Get("X-Linked-Etag")); ok {
		return s
	}
	// Only Hugging Face's own ETag is its sha256, and only for LFS files
	// (others get a 40-digit git hash); a CDN's ETag may be another 64-digit
	// hash, so a redirected response's ETag is not trusted.
	if d.r.hf && resp.Request != nil && sameHost(resp.Request.URL.String(), d.r.url) {
		if s, ok := parseSHA(resp.Header.Get("Etag")); ok {
			return s
		}
	}
	return ""
}

func sameHost(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	return err1 == nil && err2 == nil && strings.EqualFold(ua.Host, ub.Host)
}

// parseSHA accepts a sha256 in hex, optionally quoted as in an ETag, and
// returns it in lower case. Weak ETags (W/"...") are not checksums.
func parseSHA(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "W/") {
		return "", false
	}
	s = strings.ToLower(strings.Trim(s, `"`))
	if len(s) != 64 {
		return "", false
	}
	if _, err := hex.DecodeString(s); err != nil {
		return "", false
	}
	return s, true
}

// discard marks a failure that shows the partial file is not worth keeping.
type discard struct{ err error }

func (e discard) Error() string { return e.err.Error() }
func (e discard) Unwrap() error { return e.err }

// retryable marks an attempt that failed in a way a new connection may fix.
type retryable struct{ err error }

func (e retryable) Error() string { return e.err.Error() }
func (e retryable) Unwrap() error { return e.err }

// run downloads into the partial file, retrying, then verifies and renames.
func (d *download) run(ctx context.Context) error {
	defer d.closeBar()
	failures := 0
	best := int64(0) // the longest the partial file has been
	if fi, err := os.Stat(d.partial); err == nil {
		best = fi.Size()
	}
	for attempts := 1; ; attempts++ {
		if attempts > maxAttempts {
			return fmt.Errorf("pull %s: giving up after %d connections (the partial download %s is kept; run the same pull to resume)", d.r.ref, maxAttempts, d.partial)
		}
		err := d.attempt(ctx)
		if err == nil {
			break
		}
		var re retryable
		if !errors.As(err, &re) {
			if errors.As(err, new(discard)) {
				d.removePartial() // attempt has closed it
			}
			return err
		}
		// Progress means a longer partial file than ever before; bytes that
		// only refill a restarted file do not count, or a server that ignores
		// Range and drops every connection would keep us busy forever.
		if d.size > best {
			best = d.size
			failures = 0
			continue
		}
		failures++
		if failures >= maxFailures {
			return fmt.Errorf("pull %s: giving up after %d failed attempts: %w (the partial download %s is kept; run the same pull to resume)",
				d.r.ref, failures, re.err, d.partial)
		}
		wait := retryBackoff << (failures - 1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return d.interrupted(ctx.Err())
		case <-t.C:
		}
	}
	if err := d.verify(); err != nil {
		d.removePartial()
		return err
	}
	if err := os.Rename(d.partial, d.final); err != nil {
		return fmt.Errorf("pull %s: %w", d.r.ref, err)
	}
	os.Remove(d.partial + metaSuffix)
	if d.bar != nil {
		d.bar.Finish()
	}
	return nil
}

func (d *download) interrupted(err error) error {
	return fmt.Errorf("pull %s: download interrupted: %w (the partial download %s is kept; run the same pull to resume)", d.r.ref, err, d.partial)
}

func (d *download) netError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return d.interrupted(ctx.Err())
	}
	return fmt.Errorf("pull %s: network error: %w", d.r.ref, err)
}

// errStalled cancels a request that delivered nothing for StallTimeout.
var errStalled = errors.New("connection stalled")

// attempt makes one request and appends what it delivers to the partial
// file, leaving its length in d.size. It returns nil once the file is
// complete.
func (d *download) attempt(ctx context.Context) error {
	f, err := os.OpenFile(d.partial, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("pull %s: %w", d.r.ref, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("pull %s: %w", d.r.ref, err)
	}
	off := fi.Size()
	d.size = off
	var got int64
	defer func() { d.size = off + got }()

	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watchdog := time.AfterFunc(d.stall, func() { cancel(errStalled) })
	defer watchdog.Stop()

	req, err := d.newRequest(actx, http.MethodGet)
	if err != nil {
		return err
	}
	if off > 0 {
		m, ok := readMeta(d.partial + metaSuffix)
		if ok && m.URL != d.r.url {
			// Another source's file of the same name: its bytes are no
			// prefix of this one.
			if err := f.Truncate(0); err != nil {
				return fmt.Errorf("pull %s: %w", d.r.ref, err)
			}
			off = 0
		} else {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", off))
			// If the file changed since the partial was fetched, If-Range
			// makes the server send all of the new one (200) instead of
			// the rest of it.
			if v := m.ETag; v != "" && !strings.HasPrefix(v, "W/") {
				req.Header.Set("If-Range", v)
			} else if m.LastModified != "" {
				req.Header.Set("If-Range", m.LastModified)
			}
		}
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return d.attemptError(ctx, actx, err)
	}
	defer resp.Body.Close()

	total := int64(-1)
	switch resp.StatusCode {
	case http.StatusOK:
		if off > 0 { // the server ignored Range: start over
			if err := f.Truncate(0); err != nil {
				return fmt.Errorf("pull %s: %w", d.r.ref, err)
			}
			off = 0
		}
		total = resp.ContentLength
	case http.StatusPartialContent:
		first, _, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || first != off {
			// Not the range asked for; start over rather than guess.
			why := fmt.Errorf("server answered a request for bytes from %d with Content-Range %q", off, resp.Header.Get("Content-Range"))
			if err := f.Truncate(0); err != nil {
				return fmt.Errorf("pull %s: %w", d.r.ref, err)
			}
			off = 0
			return retryable{why}
		}
		total = size
	case http.StatusRequestedRangeNotSatisfiable:
		if off == 0 {
			return fmt.Errorf("pull %s: server refused the download (HTTP 416) without a Range request", d.r.ref)
		}
		_, _, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if ok && size != off {
			// The partial file is longer than the file: it is not a prefix of it.
			why := fmt.Errorf("partial download (%d bytes) is longer than the file (%d bytes)", off, size)
			if err := f.Truncate(0); err != nil {
				return fmt.Errorf("pull %s: %w", d.r.ref, err)
			}
			off = 0
			return retryable{why}
		}
		// Already complete (or the server will not say; verify decides).
		if err := d.noteResponse(resp, off, size); err != nil {
			return err
		}
		d.sha = nil // verify hashes the file itself
		return nil
	default:
		err := statusError(d.r, resp)
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
			return retryable{err}
		}
		return err
	}
	if err := d.noteResponse(resp, off, total); err != nil {
		return err
	}
	if err := writeMeta(d.partial+metaSuffix, partialMeta{
		URL: d.r.url, ETag: resp.Header.Get("Etag"), LastModified: resp.Header.Get("Last-Modified"),
	}); err != nil {
		return fmt.Errorf("pull %s: %w", d.r.ref, err)
	}

	h := sha256.New()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("pull %s: %w", d.r.ref, err)
	}
	if _, err := io.CopyN(h, f, off); err != nil {
		return fmt.Errorf("pull %s: reading the partial download: %w", d.r.ref, err)
	}
	d.sha = h
	d.startBar(off)

	buf := make([]byte, 256<<10)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			watchdog.Reset(d.stall)
			if _, err := f.Write(buf[:n]); err != nil {
				return fmt.Errorf("pull %s: writing %s: %w", d.r.ref, d.partial, err)
			}
			h.Write(buf[:n])
			got += int64(n)
			if d.total >= 0 && off+got > d.total {
				return discard{fmt.Errorf("pull %s: the server sent more than the %d bytes it stated; the download was discarded", d.r.ref, d.total)}
			}
			if d.bar != nil {
				d.bar.Add64(int64(n))
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return d.attemptError(ctx, actx, rerr)
		}
	}
	if d.total >= 0 && off+got < d.total {
		return retryable{fmt.Errorf("connection closed after %d of %d bytes", off+got, d.total)}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("pull %s: %w", d.r.ref, err)
	}
	return nil
}

// metaSuffix names the file beside a partial download that records where it
// came from, so a resume neither mixes two sources' files of the same name
// nor appends to a file that changed on the server.
const metaSuffix = ".meta"

// partialMeta is the content of a partial download's meta file.
type partialMeta struct {
	URL          string `json:"url"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
}

// readMeta reads a meta file; ok is false when there is none or it is
// unreadable, in which case the partial is resumed on trust and the final
// checks (size, sha256, magic) are the safeguard.
func readMeta(p string) (m partialMeta, ok bool) {
	b, err := os.ReadFile(p)
	if err != nil || json.Unmarshal(b, &m) != nil || m.URL == "" {
		return partialMeta{}, false
	}
	return m, true
}

func writeMeta(p string, m partialMeta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return os.WriteFile(p, append(b, '\n'), 0o644)
}

// removePartial deletes the partial download and its meta file.
func (d *download) removePartial() {
	os.Remove(d.partial)
	os.Remove(d.partial + metaSuffix)
}

// attemptError classifies a failed request or read: the caller's
// cancellation ends the Pull, anything else may be retried.
func (d *download) attemptError(ctx, actx context.Context, err error) error {
	if ctx.Err() != nil {
		return d.interrupted(ctx.Err())
	}
	if errors.Is(context.Cause(actx), errStalled) {
		return retryable{fmt.Errorf("no data for %v: %w", d.stall, errStalled)}
	}
	return retryable{fmt.Errorf("network error: %w", err)}
}

// noteResponse records what a response says about the file: its total size
// and checksum. off is where this response's bytes start.
func (d *download) noteResponse(resp *http.Response, off, total int64) error {
	if v, err := strconv.ParseInt(d.linked.Get("X-Linked-Size"), 10, 64); err == nil && total < 0 {
		total = v
	}
	if total >= 0 {
		if d.opts.Size > 0 && total != d.opts.Size {
			return discard{fmt.Errorf("pull %s: the server says the file is %d bytes, expected %d; the download was discarded", d.r.ref, total, d.opts.Size)}
		}
		d.total = total
	}
	if d.opts.Size > 0 {
		d.total = d.opts.Size
	}
	if d.wantSHA == "" {
		if s := d.headerSHA(resp); s != "" {
			d.wantSHA, d.shaFrom = s, "stated by the server"
		}
	}
	if d.start < 0 {
		d.start = off
	}
	d.size = off
	return nil
}

// startBar creates the progress bar on the first response, sized to what is
// left to fetch, and restarts it if the server made the download start over.
func (d *download) startBar(off int64) {
	w := d.opts.Progress
	if w == nil {
		return
	}
	remaining := int64(-1)
	if d.total > 0 {
		remaining = d.total - off
	}
	if d.bar != nil {
		if off >= d.start {
			return
		}
		d.bar.Exit() // started over: replace the bar
		d.start = off
	}
	desc := d.r.name
	if off > 0 {
		desc = fmt.Sprintf("%s (resuming at %s)", d.r.name, humanBytes(off))
	}
	if remaining == 0 {
		return
	}
	d.bar = progressbar.NewOptions64(remaining,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSpinnerType(14),
		// No spinner goroutine: it would write to w after Pull returns.
		progressbar.OptionSetSpinnerChangeInterval(0),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
		progressbar.OptionSetRenderBlankState(true),
	)
}

func (d *download) closeBar() {
	if d.bar != nil && !d.bar.IsFinished() {
		d.bar.Exit()
	}
}

// verify checks the complete partial file.
func (d *download) verify() error {
	fi, err := os.Stat(d.partial)
	if err != nil {
		return fmt.Errorf("pull %s: %w", d.r.ref, err)
	}
	if d.total >= 0 && fi.Size() != d.total {
		return fmt.Errorf("pull %s: downloaded %d bytes, expected %d; the download was discarded", d.r.ref, fi.Size(), d.total)
	}
	f, err := os.Open(d.partial)
	if err != nil {
		return fmt.Errorf("pull %s: %w", d.r.ref, err)
	}
	defer f.Close()
	if strings.EqualFold(filepath.Ext(d.r.name), ".gguf") {
		magic := make([]byte, 4)
		if _, err := io.ReadFull(f, magic); err != nil || !bytes.Equal(magic, []byte("GGUF")) {
			return fmt.Errorf("pull %s: the download is not a GGUF file (it starts with %q, not \"GGUF\"); the URL may lead to a web page rather than the file; the download was discarded", d.r.ref, magic)
		}
	}
	if d.wantSHA != "" {
		got := ""
		if d.sha != nil && d.size == fi.Size() {
			got = hex.EncodeToString(d.sha.Sum(nil))
		} else { // completed by a 416, or no bytes came through d.sha
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return fmt.Errorf("pull %s: %w", d.r.ref, err)
			}
			h := sha256.New()
			if _, err := io.Copy(h, f); err != nil {
				return fmt.Errorf("pull %s: %w", d.r.ref, err)
			}
			got = hex.EncodeToString(h.Sum(nil))
		}
		if got != d.wantSHA {
			return fmt.Errorf("pull %s: sha256 mismatch: the download has %s, expected %s (%s); the download was discarded", d.r.ref, got, d.wantSHA, d.shaFrom)
		}
	}
	return nil
}

// statusError explains an HTTP error status, or returns nil for success.
func statusError(r remote, resp *http.Response) error {
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return nil
	}
	what := "the file"
	if r.hf {
		what = "the repository or file"
	}
	switch code {
	case http.StatusUnauthorized, http.StatusForbidden:
		hint := ""
		if r.hf {
			hint = fmt.Sprintf("; for a gated or private repository accept its terms on the website and set %s to an access token", EnvHFToken)
		}
		return fmt.Errorf("pull %s: HTTP %d %s from %s: %s does not exist or needs authentication%s",
			r.ref, code, http.StatusText(code), r.url, what, hint)
	case http.StatusNotFound:
		return fmt.Errorf("pull %s: HTTP 404 Not Found from %s: %s does not exist (check the spelling, revision and path)",
			r.ref, r.url, what)
	}
	return fmt.Errorf("pull %s: HTTP %d %s from %s", r.ref, code, http.StatusText(code), r.url)
}

// parseContentRange parses "bytes FIRST-LAST/TOTAL", "bytes FIRST-LAST/*"
// and "bytes */TOTAL"; missing numbers are -1.
func parseContentRange(s string) (first, last, total int64, ok bool) {
	first, last, total = -1, -1, -1
	rest, found := strings.CutPrefix(strings.TrimSpace(s), "bytes ")
	if !found {
		return first, last, total, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	if !found {
		return first, last, total, false
	}
	if tot != "*" {
		v, err := strconv.ParseInt(tot, 10, 64)
		if err != nil || v < 0 {
			return first, last, total, false
		}
		total = v
	}
	if rng == "*" {
		return first, last, total, total >= 0
	}
	a, b, found := strings.Cut(rng, "-")
	if !found {
		return first, last, total, false
	}
	f, err1 := strconv.ParseInt(a, 10, 64)
	l, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || f < 0 || l < f || (total >= 0 && l >= total) {
		return first, last, total, false
	}
	return f, l, total, true
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
