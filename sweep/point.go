package sweep

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"tamp/eval"
	"tamp/kv/kveval"
	"tamp/model"
	"tamp/tensor"
)

// point measures one combination. Nothing is stored unless it completes.
func (r *runner) point(ctx context.Context, j job, base *eval.Base) (Point, error) {
	start := time.Now()
	units := 0
	defer func() {
		// A failed or interrupted point still moves the bar past its units.
		if units < r.unitsPerPoint {
			r.advance(r.unitsPerPoint-units, 0)
		}
	}()
	defer r.release(j.w.Name)
	l, err := r.model(ctx, j.w)
	if err != nil {
		return Point{}, err
	}
	o := r.opts
	m := l.m
	sc, err := kveval.NewStepScorer(m, model.SessionOptions{Context: o.Ctx, KVStorage: o.Storage, Batch: o.Batch, KV: j.k.Spec})
	if err != nil {
		return Point{}, fmt.Errorf("sweep: %s × %s: %w", j.w.Name, j.k.Name, err)
	}
	sc.Lock = r.machine.RLocker()
	res, err := eval.Perplexity(ctx, sc, nil, eval.Options{Base: base, BOS: o.BOS, AddBOS: o.AddBOS,
		Progress: func(done, total int) {
			units++
			r.advance(1, 0)
		}})
	if err != nil {
		return Point{}, fmt.Errorf("sweep: %s × %s: %w", j.w.Name, j.k.Name, err)
	}
	if err := ctx.Err(); err != nil {
		return Point{}, err
	}
	p := Point{Key: j.key, Fingerprint: r.fingerprint, Weights: j.w.Name, KV: j.k.Name, Policy: j.k.Policy(), Types: l.types,
		Ctx: o.Ctx, Chunks: res.Chunks, Positions: res.Tokens,
		WeightBytes: m.WeightBytes(), KVBytes: sc.Stats().MeanBytes, KVPeakBytes: sc.Stats().PeakBytes,
		KVFullBytes: m.KVCacheBytes(o.Ctx, o.Storage), PPL: res.PPL, PPLErr: res.PPLErr, Workers: r.workers, Threads: r.threads}
	var elements int64
	for _, t := range l.f.Tensors {
		elements += int64(t.Tensor().Elements())
	}
	if elements > 0 {
		var all int64
		for _, t := range l.f.Tensors {
			all += int64(len(t.Data))
		}
		p.BPW = 8 * float64(all) / float64(elements)
	}
	p.TotalBytes = p.WeightBytes + p.KVBytes
	if k := res.KLD; k != nil {
		p.KLD, p.KLDErr, p.KLDP99, p.SameTop = k.Mean, k.MeanErr, k.P99, k.SameTop
	}
	if o.SpeedGen > 0 {
		r.machine.Lock()
		threads := r.threads * r.workers
		tensor.SetThreads(threads)
		pp, tg, err := measureSpeed(ctx, m, o, j)
		tensor.SetThreads(r.threads)
		r.machine.Unlock()
		if err != nil {
			return Point{}, fmt.Errorf("sweep: %s × %s: speed: %w", j.w.Name, j.k.Name, err)
		}
		p.PromptTPS, p.GenTPS, p.SpeedThreads = pp, tg, threads
		units++
		r.advance(1, 0)
	}
	if err := ctx.Err(); err != nil {
		return Point{}, err
	}
	p.Seconds = time.Since(start).Seconds()
	p.Finished = time.Now().UTC().Format(time.RFC3339)
	if err := r.store.Add(p); err != nil {
		return Point{}, err
	}
	r.advance(0, 1)
	r.logf("%s", Summary(p))
	return p, nil
}

// Summary is the one-line account of a finished point.
func Summary(p Point) string {
	s := fmt.Sprintf("%-10s %-16s mem %s (weights %s + KV %s)  PPL %.4f  KLD %.5f (p99 %.4f)  same top %.1f%%",
		p.Weights, p.KV, HumanBytes(p.TotalBytes), HumanBytes(p.WeightBytes), HumanBytes(p.KVBytes), p.PPL, p.KLD, p.KLDP99, 100*p.SameTop)
	if p.GenTPS > 0 {
		s += fmt.Sprintf("  pp %.0f t/s  tg %.0f t/s", p.PromptTPS, p.GenTPS)
	}
	return s + fmt.Sprintf("  [%.1fs]", p.Seconds)
}

// HumanBytes prints a byte count in binary units.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for v := n / unit; v >= unit; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// measureSpeed times a prefill of SpeedPrompt random tokens and SpeedGen
// single-token steps after it, SpeedRepeat times, and returns the median
// speeds.
func measureSpeed(ctx context.Context, m *model.Model, o Options, j job) (pp, tg float64, err error) {
	sess, err := m.NewSession(model.SessionOptions{Context: o.SpeedPrompt + o.SpeedGen, KVStorage: o.Storage, Batch: o.Batch, KV: j.k.Spec})
	if err != nil {
		return 0, 0, err
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x5eed))
	prompt := make([]int32, o.SpeedPrompt)
	var pps, tgs []float64
	for range o.SpeedRepeat {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		for i := range prompt {
			prompt[i] = int32(rng.IntN(m.Vocab))
		}
		sess.Reset()
		t0 := time.Now()
		if _, err := sess.Forward(prompt, false); err != nil {
			return 0, 0, err
		}
		pps = append(pps, float64(len(prompt))/time.Since(t0).Seconds())
		t1 := time.Now()
		for range o.SpeedGen {
			if _, err := sess.Forward([]int32{int32(rng.IntN(m.Vocab))}, false); err != nil {
				return 0, 0, err
			}
		}
		tgs = append(tgs, float64(o.SpeedGen)/time.Since(t1).Seconds())
	}
	return median(pps), median(tgs), nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
