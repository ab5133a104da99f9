package server

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var loadFull = flag.Bool("load-full", false, "TestLoad: run the full load (32 streaming clients × 20 requests) instead of the light default")

// loadResult summarises a load run.
type loadResult struct {
	requests, failed int
	tokens           int
	wall             time.Duration
	latency, ttft    []time.Duration // sorted
	peakHeap         uint64
	heapBefore       uint64
	heapAfter        uint64
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[min(len(d)-1, int(p*float64(len(d))))]
}

func (r loadResult) String() string {
	return fmt.Sprintf("%d requests (%d failed) in %v: latency p50 %v p99 %v, first token p50 %v p99 %v, %d tokens, %.0f tok/s aggregate; heap %d MiB before, %d MiB peak, %d MiB after",
		r.requests, r.failed, r.wall.Round(time.Millisecond),
		percentile(r.latency, 0.50).Round(time.Microsecond), percentile(r.latency, 0.99).Round(time.Microsecond),
		percentile(r.ttft, 0.50).Round(time.Microsecond), percentile(r.ttft, 0.99).Round(time.Microsecond),
		r.tokens, float64(r.tokens)/r.wall.Seconds(), r.heapBefore>>20, r.peakHeap>>20, r.heapAfter>>20)
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// runLoad sends clients × perClient streaming completions, each client
// one request after another, and checks every one: a 200, the greedy text
// expected for its prompt, a finish reason, usage, and "[DONE]".
func runLoad(t testing.TB, ts *testServer, want map[string]string, clients, perClient, maxTokens int) loadResult {
	prompts := slices.Sorted(maps.Keys(want))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}}
	defer client.CloseIdleConnections()
	var (
		mu       sync.Mutex
		res      loadResult
		peak     atomic.Uint64
		stopPoll = make(chan struct{})
		polled   = make(chan struct{})
	)
	res.heapBefore = heapInUse()
	go func() { // sample the heap while the load runs
		defer close(polled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var m runtime.MemStats
		for {
			select {
			case <-stopPoll:
				return
			case <-tick.C:
				runtime.ReadMemStats(&m)
				if m.HeapInuse > peak.Load() {
					peak.Store(m.HeapInuse)
				}
			}
		}
	}()
	start := time.Now()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perClient {
				prompt := prompts[(c+i)%len(prompts)]
				body := fmt.Sprintf(`{"model": %q, "prompt": %q, "max_tokens": %d, "temperature": 0, "stream": true, "stream_options": {"include_usage": true}}`,
					modelID, prompt, maxTokens)
				t0 := time.Now()
				resp, err := client.Post(ts.url+"/v1/completions", "application/json", strings.NewReader(body))
				if err != nil {
					t.Errorf("client %d request %d: %v", c, i, err)
					mu.Lock()
					res.failed++
					mu.Unlock()
					continue
				}
				var text strings.Builder
				var first time.Duration
				var usage *Usage
				finish, done := "", false
				sc := bufio.NewScanner(resp.Body)
				for sc.Scan() {
					ev, ok := strings.CutPrefix(sc.Text(), "data: ")
					if !ok {
						continue
					}
					if ev == "[DONE]" {
						done = true
						continue
					}
					var ch completionResponse
					if err := json.Unmarshal([]byte(ev), &ch); err != nil {
						t.Errorf("event %q: %v", ev, err)
						continue
					}
					if ch.Usage != nil {
						usage = ch.Usage
					}
					for _, c := range ch.Choices {
						if c.Text != "" && first == 0 {
							first = time.Since(t0)
						}
						text.WriteString(c.Text)
						if c.FinishReason != nil {
							finish = *c.FinishReason
						}
					}
				}
				if err := sc.Err(); err != nil {
					t.Errorf("client %d request %d: reading the stream: %v", c, i, err)
				}
				resp.Body.Close()
				lat := time.Since(t0)
				ok := resp.StatusCode == 200 && done && finish != "" && usage != nil && text.String() == want[prompt]
				if !ok {
					t.Errorf("client %d request %d: status %d, done %v, finish %q, usage %v, text %q (want %q)",
						c, i, resp.StatusCode, done, finish, usage, text.String(), want[prompt])
				}
				mu.Lock()
				res.requests++
				if ok {
					res.tokens += usage.CompletionTokens
					res.latency = append(res.latency, lat)
					res.ttft = append(res.ttft, first)
				} else {
					res.failed++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.wall = time.Since(start)
	close(stopPoll)
	<-polled
	res.peakHeap = peak.Load()
	client.CloseIdleConnections()
	res.heapAfter = heapInUse()
	slices.Sort(res.latency)
	slices.Sort(res.ttft)
	return res
}

// TestLoad runs concurrent streaming clients against a server with fewer
// slots than clients, so requests queue: every request must complete with
// the right text, none may be lost, and the heap must come back down. The
// default is light; -load-full runs 32 clients × 20 requests:
//
//	go test ./server -run TestLoad -load-full -v
//
// The figures it logs are measurements, not assertions.
func TestLoad(t *testing.T) {
	clients, perClient, maxTokens := 8, 4, 32
	if *loadFull {
		clients, perClient, maxTokens = 32, 20, 64
	}
	e := openEngine(t)
	ts := start(t, Config{Engine: e, Parallel: 4, MaxQueue: 64, Context: 256})
	want := map[string]string{}
	for _, p := range []string{"Once upon a time", "The little dog", "Lily and Tom went", "One day, a bird"} {
		want[p] = greedyText(t, e, p, maxTokens, 256)
	}
	goroutines := runtime.NumGoroutine()
	res := runLoad(t, ts, want, clients, perClient, maxTokens)
	t.Logf("load: %d clients × %d requests, %d slots: %v", clients, perClient, 4, res)
	if res.requests != clients*perClient || res.failed != 0 {
		t.Errorf("%d of %d requests done, %d failed", res.requests, clients*perClient, res.failed)
	}
	// Memory stays bounded: what the run leaves behind is small next to
	// the model and its slots, however many requests went through.
	if res.heapAfter > res.heapBefore+32<<20 {
		t.Errorf("heap grew from %d to %d bytes over the run", res.heapBefore, res.heapAfter)
	}
	waitFor(t, "the request goroutines to end", func() bool { return runtime.NumGoroutine() <= goroutines+2 })
	m := scrape(t, ts.url)
	if got := metric(t, m, `tamp_requests_total{code="200",endpoint="/v1/completions"}`); got != float64(clients*perClient) {
		t.Errorf("server counted %v successful requests, want %d", got, clients*perClient)
	}
	if got := metric(t, m, "tamp_slots_busy") + metric(t, m, "tamp_queue_depth"); got != 0 {
		t.Errorf("slots busy + queued = %v after the run", got)
	}
}

// BenchmarkLoad is the full load run as a benchmark, reporting latency
// percentiles and aggregate throughput per run of 32 clients × 20 requests.
func BenchmarkLoad(b *testing.B) {
	const clients, perClient, maxTokens = 32, 20, 64
	e := openEngine(b)
	ts := start(b, Config{Engine: e, Parallel: 4, MaxQueue: 64, Context: 256})
	want := map[string]string{}
	for _, p := range []string{"Once upon a time", "The little dog", "Lily and Tom went", "One day, a bird"} {
		want[p] = greedyText(b, e, p, maxTokens, 256)
	}
	var last loadResult
	for b.Loop() {
		last = runLoad(b, ts, want, clients, perClient, maxTokens)
		if last.failed != 0 {
			b.Fatalf("%d requests failed", last.failed)
		}
	}
	b.ReportMetric(float64(percentile(last.latency, 0.5).Microseconds())/1e3, "p50-ms")
	b.ReportMetric(float64(percentile(last.latency, 0.99).Microseconds())/1e3, "p99-ms")
	b.ReportMetric(float64(last.tokens)/last.wall.Seconds(), "tok/s")
	b.ReportMetric(float64(last.peakHeap>>20), "peak-heap-MiB")
	b.Logf("%v", last)
}
