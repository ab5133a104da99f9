package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tamp/engine"
)

// patience bounds every wait in these tests. It is far above what any of
// them needs: reaching it means something hung, not that it was slow.
const patience = 20 * time.Second

func scrape(t testing.TB, url string) string {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// metric returns the value of one series in a Prometheus text exposition.
func metric(t testing.TB, text, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return 0
}

// waitFor polls cond until it holds, failing the test after patience.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(patience); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// blockFirst makes the server's first generated token wait for release (or
// for its request's context to end, if release is nil), and reports on
// entered when it starts waiting. Later tokens pass freely.
func blockFirst(t *testing.T, ts *testServer, release <-chan struct{}) (entered <-chan struct{}, sawCancel *atomic.Bool) {
	in := make(chan struct{})
	cancelled := new(atomic.Bool)
	var once atomic.Bool
	ts.beforeToken = func(ctx context.Context) {
		if !once.CompareAndSwap(false, true) {
			return
		}
		close(in)
		select {
		case <-release:
		case <-ctx.Done():
			cancelled.Store(true)
		case <-time.After(patience):
			t.Error("the blocked request was neither released nor cancelled")
		}
	}
	return in, cancelled
}

// TestDisconnectFreesSlot: a client that hangs up mid-generation cancels it
// at once, and the only slot serves the next request.
func TestDisconnectFreesSlot(t *testing.T) {
	ts := start(t, Config{Parallel: 1, MaxQueue: 4})
	entered, cancelled := blockFirst(t, ts, nil)

	ctx, hangUp := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.url+"/v1/completions",
			strings.NewReader(`{"prompt": "Once upon a time", "max_tokens": 200, "stream": true}`))
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		errc <- err
	}()
	select {
	case <-entered:
	case <-time.After(patience):
		t.Fatal("generation never started")
	}
	hangUp()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("client: err = %v, want context.Canceled", err)
	}
	resp, body := post(t, ts.url+"/v1/completions", `{"prompt": "Once", "max_tokens": 4, "temperature": 0}`)
	if resp.StatusCode != 200 {
		t.Fatalf("the next request: %d %s", resp.StatusCode, body)
	}
	if !cancelled.Load() {
		t.Error("the disconnected request's context was not cancelled")
	}
	m := scrape(t, ts.url)
	if got := metric(t, m, "tamp_requests_cancelled_total"); got != 1 {
		t.Errorf("tamp_requests_cancelled_total = %v, want 1", got)
	}
	// The abandoned generation stopped at its first token, not at 200.
	if got := metric(t, m, "tamp_generated_tokens_total"); got > 4+2 {
		t.Errorf("%v tokens generated: the abandoned request ran on", got)
	}
	if got := metric(t, m, "tamp_slots_busy"); got != 0 {
		t.Errorf("tamp_slots_busy = %v after both requests", got)
	}
}

// TestQueueFull: with the slot busy and the queue full, a request gets 503
// with Retry-After at once; the queued one is served when the slot frees.
func TestQueueFull(t *testing.T) {
	ts := start(t, Config{Parallel: 1, MaxQueue: 1})
	release := make(chan struct{})
	entered, _ := blockFirst(t, ts, release)
	body := `{"prompt": "Once", "max_tokens": 8}`
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, b := post(t, ts.url+"/v1/completions", body)
			codes[i] = resp.StatusCode
			if resp.StatusCode != 200 {
				t.Errorf("request %d: %d %s", i, resp.StatusCode, b)
			}
		}()
		if i == 0 {
			<-entered
		}
	}
	waitFor(t, "a queued request", func() bool { _, q := ts.pool.stats(); return q == 1 })

	resp, b := post(t, ts.url+"/v1/completions", body)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503: %s", resp.StatusCode, b)
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After %q, want a positive number of seconds", resp.Header.Get("Retry-After"))
	}
	if e := apiError(t, b); e.Code != "server_busy" {
		t.Errorf("code %q", e.Code)
	}
	var h map[string]any
	hr, err := http.Get(ts.url + "/health")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(hr.Body).Decode(&h)
	hr.Body.Close()
	if h["slots_busy"] != 1.0 || h["queue"] != 1.0 {
		t.Errorf("/health = %v", h)
	}
	if got := metric(t, scrape(t, ts.url), "tamp_queue_depth"); got != 1 {
		t.Errorf("tamp_queue_depth = %v, want 1", got)
	}
	close(release)
	wg.Wait()
	m := scrape(t, ts.url)
	if got := metric(t, m, `tamp_requests_total{code="503",endpoint="/v1/completions"}`); got != 1 {
		t.Errorf("503s counted: %v", got)
	}
	if got := metric(t, m, `tamp_requests_total{code="200",endpoint="/v1/completions"}`); got != 2 {
		t.Errorf("200s counted: %v", got)
	}
}

func TestQueueTimeout(t *testing.T) {
	ts := start(t, Config{Parallel: 1, MaxQueue: 4, QueueTimeout: 50 * time.Millisecond})
	release := make(chan struct{})
	entered, _ := blockFirst(t, ts, release)
	done := make(chan struct{})
	go func() {
		defer close(done)
		post(t, ts.url+"/v1/completions", `{"prompt": "Once", "max_tokens": 4}`)
	}()
	<-entered
	resp, b := post(t, ts.url+"/v1/completions", `{"prompt": "Once", "max_tokens": 4}`)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a request that waited past the queue timeout: %d %s", resp.StatusCode, b)
	}
	close(release)
	<-done
}

func newTestSlots(t *testing.T, n int) []*engine.Slot {
	e := openEngine(t)
	var s []*engine.Slot
	for range n {
		sl, err := e.NewSlot(16)
		if err != nil {
			t.Fatal(err)
		}
		s = append(s, sl)
	}
	return s
}

// TestPoolFIFO checks that freed slots go to waiting requests in arrival
// order, that a request leaving the queue gives up its place, and that
// closing wakes everyone.
func TestPoolFIFO(t *testing.T) {
	slots := newTestSlots(t, 1)
	p := newPool(slots, 8)
	ctx := context.Background()
	s, err := p.acquire(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var order []int
	var mu sync.Mutex
	var wg sync.WaitGroup
	leaveCtx, leave := context.WithCancel(ctx)
	for i := range 4 {
		wg.Add(1)
		c := ctx
		if i == 1 {
			c = leaveCtx // waiter 1 gives up before its turn
		}
		go func() {
			defer wg.Done()
			got, err := p.acquire(c, 0)
			if err != nil {
				if i != 1 || !errors.Is(err, context.Canceled) {
					t.Errorf("waiter %d: %v", i, err)
				}
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			p.release(got)
		}()
		waitFor(t, "waiter in the queue", func() bool { _, q := p.stats(); return q == i+1 })
	}
	leave()
	waitFor(t, "waiter 1 to leave", func() bool { _, q := p.stats(); return q == 3 })
	p.release(s)
	wg.Wait()
	if want := []int{0, 2, 3}; len(order) != 3 || order[0] != 0 || order[1] != 2 || order[2] != 3 {
		t.Errorf("served in order %v, want %v", order, want)
	}
	if busy, q := p.stats(); busy != 0 || q != 0 {
		t.Errorf("after all: %d busy, %d queued", busy, q)
	}

	// Bounded queue, then close.
	p = newPool(slots, 1)
	s, _ = p.acquire(ctx, 0)
	errc := make(chan error, 1)
	go func() { _, err := p.acquire(ctx, 0); errc <- err }()
	waitFor(t, "queued", func() bool { _, q := p.stats(); return q == 1 })
	if _, err := p.acquire(ctx, 0); !errors.Is(err, errBusy) {
		t.Errorf("beyond the queue: %v, want errBusy", err)
	}
	p.close()
	if err := <-errc; !errors.Is(err, errClosed) {
		t.Errorf("queued at close: %v, want errClosed", err)
	}
	if _, err := p.acquire(ctx, 0); !errors.Is(err, errClosed) {
		t.Errorf("after close: %v, want errClosed", err)
	}
	p.release(s)
}

// TestGracefulShutdown: requests in flight finish; new connections are
// refused; Shutdown returns once they are done.
func TestGracefulShutdown(t *testing.T) {
	e := openEngine(t)
	ts := start(t, Config{Engine: e, Parallel: 1})
	release := make(chan struct{})
	entered, _ := blockFirst(t, ts, release)
	want := greedyText(t, e, "Once upon a time", 16, 256)
	type result struct {
		events []string
		err    error
	}
	resc := make(chan result, 1)
	go func() {
		resp, err := http.Post(ts.url+"/v1/completions", "application/json",
			strings.NewReader(`{"prompt": "Once upon a time", "max_tokens": 16, "temperature": 0, "stream": true}`))
		if err != nil {
			resc <- result{err: err}
			return
		}
		defer resp.Body.Close()
		resc <- result{events: sseEvents(t, resp.Body)}
	}()
	<-entered
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		shut <- ts.Shutdown(ctx)
	}()
	waitFor(t, "the listener to close", func() bool {
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(ts.url, "http://"), time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	close(release)
	r := <-resc
	if r.err != nil {
		t.Fatal(r.err)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if len(r.events) == 0 || r.events[len(r.events)-1] != "[DONE]" {
		t.Fatalf("the stream in flight did not finish: %q", r.events)
	}
	var text strings.Builder
	for _, ev := range r.events[:len(r.events)-1] {
		var c completionResponse
		if err := json.Unmarshal([]byte(ev), &c); err != nil {
			t.Fatalf("event %q: %v", ev, err)
		}
		text.WriteString(c.Choices[0].Text)
	}
	if text.String() != want {
		t.Errorf("the request in flight gave %q, want %q", text.String(), want)
	}
}

// TestShutdownDeadline: a generation still running when the deadline passes
// is cancelled with an error event, queued requests get 503, and Shutdown
// reports the deadline.
func TestShutdownDeadline(t *testing.T) {
	ts := start(t, Config{Parallel: 1, MaxQueue: 4})
	entered, cancelled := blockFirst(t, ts, nil) // blocks until cancelled
	resc := make(chan []string, 1)
	go func() {
		resp, err := http.Post(ts.url+"/v1/chat/completions", "application/json",
			strings.NewReader(`{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 100, "stream": true}`))
		if err != nil {
			t.Error(err)
			resc <- nil
			return
		}
		defer resp.Body.Close()
		resc <- sseEvents(t, resp.Body)
	}()
	<-entered
	queued := make(chan int, 1)
	go func() {
		resp, b := post(t, ts.url+"/v1/completions", `{"prompt": "x", "max_tokens": 2}`)
		if resp.StatusCode == http.StatusServiceUnavailable {
			if e := apiError(t, b); e.Code != "shutting_down" {
				t.Errorf("queued request: code %q", e.Code)
			}
		}
		queued <- resp.StatusCode
	}()
	waitFor(t, "a queued request", func() bool { _, q := ts.pool.stats(); return q == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := ts.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v, want the deadline", err)
	}
	if code := <-queued; code != http.StatusServiceUnavailable {
		t.Errorf("queued request: %d, want 503", code)
	}
	events := <-resc
	if !cancelled.Load() {
		t.Error("the generation was not cancelled")
	}
	if len(events) == 0 || !strings.Contains(events[len(events)-1], `"shutting_down"`) {
		t.Errorf("the stream did not end with a shutdown error: %q", events)
	}
}

func TestMetricsAndHealth(t *testing.T) {
	e := openEngine(t)
	ts := start(t, Config{Engine: e, Parallel: 3, Context: 128})
	for range 2 {
		if resp, b := post(t, ts.url+"/v1/completions", `{"prompt": "Once upon a time", "max_tokens": 10, "temperature": 0}`); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
	}
	m := scrape(t, ts.url)
	prompt := float64(len(e.Encode("Once upon a time")))
	checks := []struct {
		series string
		want   float64
	}{
		{`tamp_requests_total{code="200",endpoint="/v1/completions"}`, 2},
		{"tamp_prompt_tokens_total", 2 * prompt},
		{"tamp_generated_tokens_total", 20},
		{"tamp_slots", 3},
		{"tamp_slots_busy", 0},
		{"tamp_queue_depth", 0},
		{"tamp_kv_bytes_in_use", 0},
		{"tamp_kv_bytes_capacity", float64(3 * e.Model.KVCacheBytes(128, 0))},
		{`tamp_kv_policy_requests_total{kv_type="f16",policy="full"}`, 2},
		{`tamp_request_duration_seconds_count{endpoint="/v1/completions"}`, 2},
	}
	for _, c := range checks {
		if got := metric(t, m, c.series); got != c.want {
			t.Errorf("%s = %v, want %v", c.series, got, c.want)
		}
	}
	if metric(t, m, "tamp_generate_tokens_per_second") <= 0 || metric(t, m, "tamp_generate_seconds_total") <= 0 {
		t.Error("no generation speed reported")
	}
}

// TestKeepAliveAfterWriteDeadline reuses a connection after the write
// deadline of a streamed response has passed: the next response must not
// inherit it (net/http clears it between requests; the server relies on
// that).
func TestKeepAliveAfterWriteDeadline(t *testing.T) {
	ts := start(t, Config{WriteTimeout: 50 * time.Millisecond})
	conns := 0
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conns++
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}}
	defer client.CloseIdleConnections()
	resp, err := client.Post(ts.url+"/v1/completions", "application/json", strings.NewReader(`{"prompt": "Once", "max_tokens": 4, "stream": true}`))
	if err != nil {
		t.Fatal(err)
	}
	sseEvents(t, resp.Body)
	resp.Body.Close()
	time.Sleep(100 * time.Millisecond) // let the stream's deadline pass
	for _, path := range []string{"/health", "/v1/models"} {
		resp, err := client.Get(ts.url + path)
		if err != nil {
			t.Fatalf("%s on the reused connection: %v", path, err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
	if conns != 1 {
		t.Errorf("%d connections dialled, want the one reused", conns)
	}
}

// TestStreamChoices streams n = 2 chat choices: each gets its role chunk,
// its text and its finish reason, under its own index.
func TestStreamChoices(t *testing.T) {
	ts := start(t, Config{})
	resp, err := http.Post(ts.url+"/v1/chat/completions", "application/json", strings.NewReader(
		`{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 6, "n": 2, "seed": 1, "stream": true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	events := sseEvents(t, resp.Body)
	if len(events) == 0 || events[len(events)-1] != "[DONE]" {
		t.Fatalf("stream does not end with [DONE]: %q", events)
	}
	roles, finishes := map[int]int{}, map[int]string{}
	for _, ev := range events[:len(events)-1] {
		var c chatResponse
		if err := json.Unmarshal([]byte(ev), &c); err != nil {
			t.Fatal(err)
		}
		if c.Object != "chat.completion.chunk" || len(c.Choices) != 1 {
			t.Fatalf("bad chunk %s", ev)
		}
		ch := c.Choices[0]
		if ch.Delta == nil {
			t.Fatalf("chunk without delta: %s", ev)
		}
		if ch.Delta.Role == "assistant" {
			roles[ch.Index]++
		}
		if ch.FinishReason != nil {
			finishes[ch.Index] = *ch.FinishReason
		}
	}
	for i := range 2 {
		if roles[i] != 1 || finishes[i] == "" {
			t.Errorf("choice %d: %d role chunks, finish %q", i, roles[i], finishes[i])
		}
	}
}
