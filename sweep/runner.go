package sweep

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"tamp/eval"
	"tamp/gguf"
	"tamp/kv"
	"tamp/model"
	"tamp/quant"
	"tamp/tensor"
)

// Options configure a sweep.
type Options struct {
	// Dir holds the store, the base file, quantized weights and the report.
	Dir string
	// Source is the uncompressed model; ModelID identifies it across runs
	// (a content hash, say), so that a restarted sweep reuses points and
	// files only for the same model.
	Source  *gguf.File
	ModelID string
	// Tokens is the evaluation text, tokenized with BOS first when the
	// vocabulary adds one; BOS and AddBOS are as in eval.Options.
	Tokens []int32
	BOS    int32
	AddBOS bool
	// Calibration is the token stream bpw:X formats measure damage on; it
	// should not overlap the chunks evaluated. CalibCtx and CalibChunks
	// size the measurement (defaults 128 and 4).
	Calibration           []int32
	CalibCtx, CalibChunks int

	Weights []Weights
	KV      []KV

	// Ctx is the context, in tokens, that every point is evaluated at and
	// whose KV bytes are reported; Chunks how many chunks of Ctx tokens
	// are evaluated (0: as many as the text holds).
	Ctx, Chunks int
	// Storage is the element type of the cache's full-precision entries.
	Storage kv.Storage
	// Batch is the prefill micro-batch (model.SessionOptions.Batch).
	Batch int

	// SpeedPrompt tokens are prefilled and SpeedGen tokens generated after
	// them, SpeedRepeat times, to time each point (random token ids, as
	// tamp bench uses). SpeedGen 0 skips speed measurement.
	SpeedPrompt, SpeedGen, SpeedRepeat int
	// Seed selects the random token ids of the speed test.
	Seed uint64

	// Workers is how many points are evaluated at once and Threads how many
	// threads each uses for its matrix products; 0 picks them so that
	// Workers × Threads equals the cores available (GOMAXPROCS).
	Workers, Threads int

	// Progress, if set, is called as work advances (from several goroutines,
	// one call at a time).
	Progress func(Progress)
	// Log, if set, receives one-line messages: each finished or failed
	// point, and what the sweep is doing.
	Log func(string)
}

// Progress describes how far a sweep has come. Work is counted in units: one
// per evaluated chunk of a point and one for its speed test.
type Progress struct {
	Done, Total             int
	PointsDone, PointsTotal int
	Elapsed, ETA            time.Duration
	// Resumed is the number of points found already finished in the store.
	Resumed int
}

// Result is what a sweep returns: the points of this sweep's grid that are
// stored (resumed or new), and the combinations that could not run.
type Result struct {
	Points []Point
	Failed []Failure
	// Fingerprint identifies the sweep's model, text and settings.
	Fingerprint string
	Workers     int
	Threads     int
	// BasePPL is the uncompressed model's perplexity with a full cache.
	BasePPL float64
}

// Failure is a combination (or a whole weights or KV spec, when the other
// half is empty) that could not be measured, and why.
type Failure struct {
	Weights, KV string
	Err         error
}

// Key returns the store key of a point: the fingerprint and both specs.
func Key(fingerprint, weights, kvName string) string {
	return fingerprint + "|" + weights + "|" + kvName
}

// Run evaluates every combination of opts.Weights and opts.KV that the store in
// opts.Dir does not hold yet, writing each point to the store the moment it
// is finished. When ctx is cancelled it stops at the next chunk boundary of
// every point in flight, discards those partial points and returns
// ctx.Err() with the result so far. Specs that cannot run (unknown formats
// or policies) and points that fail are listed in Result.Failed; the rest
// still run.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if opts.Source == nil {
		return nil, fmt.Errorf("sweep: no model")
	}
	if opts.Ctx < 4 {
		return nil, fmt.Errorf("sweep: context %d is too short (at least 4 tokens)", opts.Ctx)
	}
	if opts.Chunks < 0 || opts.SpeedPrompt < 0 || opts.SpeedGen < 0 || opts.SpeedRepeat < 0 || opts.Workers < 0 || opts.Threads < 0 {
		return nil, fmt.Errorf("sweep: negative count in options")
	}
	if len(opts.Weights) == 0 || len(opts.KV) == 0 {
		return nil, fmt.Errorf("sweep: need at least one weights spec and one KV setting")
	}
	src, err := model.Load(opts.Source)
	if err != nil {
		return nil, err
	}
	if src.ContextLen > 0 && opts.Ctx > src.ContextLen {
		return nil, fmt.Errorf("sweep: context %d exceeds the model's trained context of %d", opts.Ctx, src.ContextLen)
	}
	nchunks := len(opts.Tokens) / opts.Ctx
	if opts.Chunks > 0 {
		nchunks = min(nchunks, opts.Chunks)
	}
	if nchunks < 1 {
		return nil, fmt.Errorf("sweep: the text has %d tokens, fewer than one chunk of %d", len(opts.Tokens), opts.Ctx)
	}
	if opts.SpeedRepeat == 0 {
		opts.SpeedRepeat = 3
	}
	if opts.SpeedGen > 0 && opts.SpeedPrompt < 1 {
		opts.SpeedPrompt = 1
	}
	if opts.CalibCtx == 0 {
		opts.CalibCtx = 128
	}
	if opts.CalibChunks == 0 {
		opts.CalibChunks = 4
	}
	store, err := OpenStore(opts.Dir)
	if err != nil {
		return nil, err
	}
	defer store.Close()

	r := &runner{opts: opts, src: src, store: store, chunks: nchunks, models: map[string]*loaded{}}
	r.fingerprint = r.fingerprintOf()
	res := &Result{Fingerprint: r.fingerprint}

	shape := kv.Shape{Layers: src.Layers, Heads: src.Heads, KVHeads: src.KVHeads, HeadDim: src.HeadDim}
	kvs := slices.Clone(opts.KV)
	for i := range kvs {
		kvs[i].check(shape)
	}
	// The grid, weights-major so that each quantized model is loaded once and
	// released when its last point is done.
	var todo []job
	uses := map[string]int{}
	for _, w := range opts.Weights {
		if w.Err == nil && w.Kind == BitsPerWeight && len(opts.Calibration) < opts.CalibCtx {
			w.Err = fmt.Errorf("sweep: weights %q needs a calibration text of at least %d tokens", w.Name, opts.CalibCtx)
		}
		if w.Err != nil {
			res.Failed = append(res.Failed, Failure{Weights: w.Name, Err: w.Err})
			continue
		}
		for _, k := range kvs {
			if k.Err != nil {
				continue
			}
			key := Key(r.fingerprint, w.Name, k.Name)
			if p, ok := store.Get(key); ok {
				res.Points = append(res.Points, p)
				continue
			}
			todo = append(todo, job{w: w, k: k, key: key})
			uses[w.Name]++
		}
	}
	for _, k := range kvs {
		if k.Err != nil {
			res.Failed = append(res.Failed, Failure{KV: k.Name, Err: k.Err})
		}
	}
	r.uses = uses
	r.unitsPerPoint = nchunks
	if opts.SpeedGen > 0 {
		r.unitsPerPoint++
	}
	r.prog = Progress{Total: (len(todo) + len(res.Points)) * r.unitsPerPoint, PointsTotal: len(todo) + len(res.Points),
		Done: len(res.Points) * r.unitsPerPoint, PointsDone: len(res.Points), Resumed: len(res.Points)}

	cores := runtime.GOMAXPROCS(0)
	workers := opts.Workers
	if workers == 0 {
		workers = autoWorkers(cores, len(todo), opts.Source, src, opts.Ctx)
	}
	workers = max(1, min(workers, max(1, len(todo))))
	threads := opts.Threads
	if threads == 0 {
		threads = max(1, cores/workers)
	}
	r.threads, r.workers = threads, workers
	res.Workers, res.Threads = workers, threads
	r.logf("sweep %s: %d weights × %d KV settings, %d points to run, %d already stored; ctx %d, %d chunks; %d workers × %d threads (%d cores)",
		r.fingerprint, len(opts.Weights), len(opts.KV), len(todo), len(res.Points), opts.Ctx, nchunks, workers, threads, cores)
	for _, f := range res.Failed {
		r.logf("skipped: %v", f.Err)
	}

	// The base: the uncompressed model with a full cache, computed once and
	// kept in Dir.
	base, basePPL, closeBase, err := r.base(ctx)
	if err != nil {
		return res, err
	}
	defer closeBase()
	r.basePPL = basePPL
	res.BasePPL = basePPL
	if len(todo) == 0 {
		r.report()
		return res, nil
	}

	tensor.SetThreads(threads)
	defer tensor.SetThreads(0)
	r.start = time.Now()
	r.report()

	jobs := make(chan job)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				p, err := r.point(ctx, j, base)
				mu.Lock()
				switch {
				case err == nil:
					res.Points = append(res.Points, p)
				case ctx.Err() == nil:
					res.Failed = append(res.Failed, Failure{Weights: j.w.Name, KV: j.k.Name, Err: err})
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for _, j := range todo {
		select {
		case jobs <- j:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	r.closeModels()
	if err := ctx.Err(); err != nil {
		return res, err
	}
	return res, nil
}

// autoWorkers picks how many points run at once: one per core, fewer when
// each model copy would not fit in half the available memory.
func autoWorkers(cores, points int, f *gguf.File, m *model.Model, ctx int) int {
	w := max(1, min(cores, points))
	var size int64
	for _, t := range f.Tensors {
		size += int64(len(t.Data))
	}
	size += m.KVCacheBytes(ctx, kv.F32)
	if avail := memAvailable(); avail > 0 && size > 0 {
		w = max(1, min(w, int(avail/2/size)))
	}
	return w
}

// memAvailable reads MemAvailable from /proc/meminfo (0 when unknown).
func memAvailable() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemAvailable:" {
			n, _ := strconv.ParseInt(fields[1], 10, 64)
			return n << 10
		}
	}
	return 0
}

type job struct {
	w   Weights
	k   KV
	key string
}

// loaded is a weights spec's model, shared by the points that use it.
type loaded struct {
	once  sync.Once
	f     *gguf.File
	m     *model.Model
	types string
	err   error
	owned bool // f was opened by the sweep and must be closed
}

type runner struct {
	opts        Options
	src         *model.Model
	store       *Store
	chunks      int
	fingerprint string
	basePPL     float64

	threads, workers int
	// machine is held shared while points are evaluated, chunk by chunk, and
	// exclusively to time a point or quantize, so that speeds are measured
	// on an otherwise idle machine and quantization (which uses every core)
	// never runs beside evaluations.
	machine sync.RWMutex

	mu     sync.Mutex
	models map[string]*loaded
	uses   map[string]int

	progMu        sync.Mutex
	prog          Progress
	start         time.Time
	unitsPerPoint int
	newUnits      atomic.Int64
}

func (r *runner) logf(format string, args ...any) {
	if r.opts.Log != nil {
		r.opts.Log(fmt.Sprintf(format, args...))
	}
}

// advance records finished units (and points) and reports progress.
func (r *runner) advance(units, points int) {
	r.progMu.Lock()
	defer r.progMu.Unlock()
	r.prog.Done += units
	r.prog.PointsDone += points
	r.newUnits.Add(int64(units))
	r.reportLocked()
}

func (r *runner) report() {
	r.progMu.Lock()
	defer r.progMu.Unlock()
	r.reportLocked()
}

func (r *runner) reportLocked() {
	if r.opts.Progress == nil {
		return
	}
	p := r.prog
	if !r.start.IsZero() {
		p.Elapsed = time.Since(r.start)
		// The rate counts only this run's work: resumed points took no time.
		if n := r.newUnits.Load(); n > 0 {
			p.ETA = time.Duration(float64(p.Elapsed) / float64(n) * float64(p.Total-p.Done))
		}
	}
	r.opts.Progress(p)
}

// fingerprintOf hashes what the figures depend on: the model, the evaluated
// tokens and the evaluation settings.
func (r *runner) fingerprintOf() string {
	o := r.opts
	h := sha256.New()
	fmt.Fprintf(h, "model=%s\nctx=%d\nchunks=%d\nstorage=%s\nbos=%d,%v\nbatch=%d\nspeed=%d,%d,%d,%d\n",
		o.ModelID, o.Ctx, r.chunks, o.Storage, o.BOS, o.AddBOS, o.Batch, o.SpeedPrompt, o.SpeedGen, o.SpeedRepeat, o.Seed)
	h.Write([]byte(tokensHash(o.Tokens[:r.chunks*o.Ctx])))
	return hex.EncodeToString(h.Sum(nil))[:12]
}

func tokensHash(t []int32) string {
	h := sha256.New()
	var b [4]byte
	for _, v := range t {
		binary.LittleEndian.PutUint32(b[:], uint32(v))
		h.Write(b[:])
	}
	return hex.EncodeToString(h.Sum(nil))
}

func shortHash(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:])[:10]
}

// base returns the uncompressed model's stored log-probabilities over the
// evaluated chunks, computing and saving them in Dir on first use.
func (r *runner) base(ctx context.Context) (*eval.Base, float64, func(), error) {
	o := r.opts
	path := filepath.Join(o.Dir, "base-"+shortHash(o.ModelID, tokensHash(o.Tokens[:r.chunks*o.Ctx]), strconv.Itoa(o.Ctx), o.Storage.String())+".kld")
	pplPath := path + ".ppl"
	if _, err := os.Stat(path); err != nil {
		r.logf("computing the base (uncompressed model, full cache): %d chunks of %d tokens", r.chunks, o.Ctx)
		sc, err := r.src.NewScorer(model.SessionOptions{Context: o.Ctx, KVStorage: o.Storage, Batch: o.Batch})
		if err != nil {
			return nil, 0, nil, err
		}
		var res *eval.Result
		err = writeAtomic(path, func(w io.Writer) error {
			var err error
			res, err = eval.Perplexity(ctx, sc, o.Tokens, eval.Options{Ctx: o.Ctx, BOS: o.BOS, AddBOS: o.AddBOS, MaxChunks: r.chunks, SaveBase: w})
			return err
		})
		if err != nil {
			return nil, 0, nil, err
		}
		if err := os.WriteFile(pplPath, []byte(strconv.FormatFloat(res.PPL, 'g', -1, 64)+"\n"), 0o644); err != nil {
			return nil, 0, nil, err
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, nil, err
	}
	b, err := eval.ReadBase(f)
	if err != nil {
		f.Close()
		return nil, 0, nil, fmt.Errorf("sweep: base file %s: %w (delete it to recompute)", path, err)
	}
	if b.Ctx != o.Ctx || b.Chunks != r.chunks || b.Vocab != r.src.Vocab {
		f.Close()
		return nil, 0, nil, fmt.Errorf("sweep: base file %s does not match the sweep (ctx %d, %d chunks, vocab %d); delete it", path, b.Ctx, b.Chunks, b.Vocab)
	}
	var ppl float64
	if data, err := os.ReadFile(pplPath); err == nil {
		ppl, _ = strconv.ParseFloat(strings.TrimSpace(string(data)), 64)
	}
	return b, ppl, func() { f.Close() }, nil
}

// model returns the model of a weights spec, quantizing it (or reusing the
// file quantized by an earlier run) on first use.
func (r *runner) model(ctx context.Context, w Weights) (*loaded, error) {
	r.mu.Lock()
	l, ok := r.models[w.Name]
	if !ok {
		l = &loaded{}
		r.models[w.Name] = l
	}
	r.mu.Unlock()
	l.once.Do(func() { l.err = r.load(ctx, w, l) })
	return l, l.err
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func (r *runner) load(ctx context.Context, w Weights, l *loaded) error {
	o := r.opts
	if w.Kind == Original {
		l.f, l.m, l.types = o.Source, r.src, typeCounts(o.Source)
		return nil
	}
	id := shortHash(o.ModelID, w.Name)
	if w.Kind == BitsPerWeight {
		id = shortHash(o.ModelID, w.Name, tokensHash(o.Calibration), strconv.Itoa(o.CalibCtx), strconv.Itoa(o.CalibChunks))
	}
	path := filepath.Join(o.Dir, "weights", unsafeName.ReplaceAllString(w.Name, "_")+"-"+id+".gguf")
	if _, err := os.Stat(path); err != nil {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		// Quantization uses every core: run it alone.
		r.machine.Lock()
		err := r.quantize(ctx, w, path)
		r.machine.Unlock()
		if err != nil {
			return fmt.Errorf("sweep: weights %s: %w", w.Name, err)
		}
	}
	f, err := gguf.Open(path)
	if err != nil {
		return fmt.Errorf("sweep: weights %s: cached file %s: %w (delete it to requantize)", w.Name, path, err)
	}
	m, err := model.Load(f)
	if err != nil {
		f.Close()
		return fmt.Errorf("sweep: weights %s: %w", w.Name, err)
	}
	l.f, l.m, l.types, l.owned = f, m, typeCounts(f), true
	return nil
}

func (r *runner) quantize(ctx context.Context, w Weights, path string) error {
	o := r.opts
	start := time.Now()
	qo := quant.Options{}
	switch w.Kind {
	case Target:
		t := w.Target
		qo.Target = &t
	case BitsPerWeight:
		var weights int64
		for _, t := range o.Source.Tensors {
			weights += int64(t.Tensor().Elements())
		}
		budget := int64(w.BPW * float64(weights) / 8)
		r.logf("allocating %s: %d bytes of tensor data on %d calibration tokens", w.Name, budget, len(o.Calibration))
		plan, err := quant.Allocate(ctx, o.Source, quant.AllocOptions{Budget: budget, Calibration: o.Calibration,
			Ctx: o.CalibCtx, Chunks: o.CalibChunks, Workers: runtime.GOMAXPROCS(0)})
		if err != nil {
			return err
		}
		qo.Plan = plan
		qo.Type = tensor.Q8_0
	}
	out, rep, err := quant.Quantize(o.Source, qo)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := gguf.WriteFile(path, out); err != nil {
		return err
	}
	r.logf("quantized %s in %s: %.3f bits per weight (%s)", w.Name, time.Since(start).Round(time.Millisecond), rep.BitsPerWeight(), rep.TypeCounts())
	return nil
}

// release drops one use of a weights spec's model, closing it after the last.
func (r *runner) release(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.uses[name]--
	if r.uses[name] > 0 {
		return
	}
	if l, ok := r.models[name]; ok && l.owned && l.f != nil {
		l.f.Close()
	}
	delete(r.models, name)
}

func (r *runner) closeModels() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, l := range r.models {
		if l.owned && l.f != nil {
			l.f.Close()
		}
		delete(r.models, name)
	}
}

// typeCounts summarises a file's tensor types, most bytes first.
func typeCounts(f *gguf.File) string {
	count := map[tensor.Type]int{}
	bytes := map[tensor.Type]int{}
	for _, t := range f.Tensors {
		count[t.Type]++
		bytes[t.Type] += len(t.Data)
	}
	types := make([]tensor.Type, 0, len(count))
	for t := range count {
		types = append(types, t)
	}
	sort.Slice(types, func(i, j int) bool { return bytes[types[i]] > bytes[types[j]] })
	parts := make([]string, len(types))
	for i, t := range types {
		parts[i] = fmt.Sprintf("%d %s", count[t], t)
	}
	return strings.Join(parts, ", ")
}
