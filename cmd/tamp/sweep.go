package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"tamp/quant"
	"tamp/sweep"
)

func newSweepCmd() *cobra.Command {
	var (
		mf                  modelFlags
		textPath, calibPath string
		weights, kvList     string
		dir, kvType         string
		o                   sweep.Options
		noSpeed, quiet      bool
	)
	cmd := &cobra.Command{
		Use:   "sweep -m MODEL -f TEXT --weights Q8_0,Q4_K_M,... --kv full,snapkv:64,... -o DIR",
		Short: "Map quality against memory and speed for every weight format × KV-cache setting",
		Long: `Run every combination of a static weight format (--weights) and a dynamic
KV-cache setting (--kv) and measure, for each: weight bytes, KV bytes at --ctx,
total memory, perplexity, mean and 99th-percentile KL divergence to the
uncompressed model with a full cache, the same-top-token rate, and prompt and
generation speed. The report (DIR/report.md, DIR/report.html, plots in PNG and
SVG) sorts the points by memory and marks the Pareto front: the points no
other point beats on both memory and KL divergence.

--weights: quant target names (Q8_0, Q4_0, Q4_K_M, SQ4_8, F16, ...; see
'tamp quantize --help'), bpw:X for a measured per-tensor allocation at X bits
per weight (calibrated on --calib, default the second half of TEXT), orig for
the model as it is. Quantized files are cached in DIR/weights.

--kv: full, kivi:BITS (KIVI 2/4/8-bit quantization of the full cache),
POLICY:BUDGET (an eviction policy keeping BUDGET entries per head: snapkv:64,
pyramidkv:128, h2o:64, streaming:64, ...), or the general
POLICY[:k=v,...][@BUDGET][+qBITS][+h] of 'tamp eval kv --spec'.

Each chunk of --ctx tokens is evaluated as a deployment meets it: its first
half is prefilled as a prompt (after which the policy compresses the cache)
and the second half is fed one decoding step at a time, each prediction
compared with the uncompressed model's (computed once, kept in DIR).

Every finished point is appended to DIR/points.jsonl (and DIR/points.csv) at
once; an interrupted sweep (Ctrl-C) drops only the points in flight and a
rerun with the same arguments resumes where it stopped. --workers points run
at once with --threads threads each; by default workers × threads = cores.
Speed is timed for one point at a time with all workers' threads, while the
other points wait.`,
		Example: `  tamp sweep -m stories260K.gguf -f tinystories-sample.txt --ctx 512 --chunks 8 \
      --weights orig,Q8_0,Q4_0,Q4_K_M,SQ4_8 --kv full,snapkv:64,pyramidkv:64,h2o:64,kivi:4 -o sweep-260k`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if textPath == "" {
				return fmt.Errorf("sweep: -f TEXT is required")
			}
			if dir == "" {
				return fmt.Errorf("sweep: -o DIR is required")
			}
			var err error
			if o.Weights, err = sweep.ParseWeights(weights); err != nil {
				return err
			}
			if o.KV, err = sweep.ParseKV(kvList); err != nil {
				return err
			}
			if o.Storage, err = parseKV(kvType); err != nil {
				return err
			}
			if noSpeed {
				o.SpeedGen = 0
			}
			o.Dir = dir
			stderr := cmd.ErrOrStderr()
			e, err := mf.open(cmd)
			if err != nil {
				return err
			}
			defer e.Close()
			if o.ModelID, err = fileID(e.Path); err != nil {
				return err
			}
			raw, err := os.ReadFile(textPath)
			if err != nil {
				return err
			}
			o.Source = e.File
			o.Tokens = e.Tok.Encode(string(raw), true, false)
			o.BOS, o.AddBOS = e.Tok.BOS(), e.Tok.AddBOS()
			needCalib := false
			for _, w := range o.Weights {
				needCalib = needCalib || (w.Kind == sweep.BitsPerWeight && w.Err == nil)
			}
			if needCalib {
				calib := raw
				what := calibPath
				if calibPath != "" {
					if calib, err = os.ReadFile(calibPath); err != nil {
						return err
					}
				} else {
					first, second := quant.SplitText(raw)
					calib, what = second, textPath+" (second half)"
					n := len(o.Tokens) / max(o.Ctx, 1)
					if o.Chunks > 0 {
						n = min(n, o.Chunks)
					}
					evaluated := n * o.Ctx
					if half := len(e.Tok.Encode(string(first), true, false)); evaluated > half {
						fmt.Fprintf(stderr, "warning: the evaluated chunks (%d tokens) reach into the calibration half of %s (%d tokens in the first half); lower --chunks or give --calib\n", evaluated, textPath, half)
					}
				}
				o.Calibration = e.Tok.Encode(string(calib), true, false)
				fmt.Fprintf(stderr, "calibration for bpw formats: %s, %d tokens\n", what, len(o.Calibration))
			}

			d := newSweepDisplay(stderr, quiet)
			o.Progress = d.progress
			o.Log = d.log
			res, runErr := sweep.Run(cmd.Context(), o)
			d.finish()
			if res == nil {
				return runErr
			}
			rep := sweep.ReportInfo{Model: filepath.Base(e.Path), Text: filepath.Base(textPath), Ctx: o.Ctx,
				Workers: res.Workers, Threads: res.Threads, BasePPL: res.BasePPL, Failed: res.Failed,
				Planned: len(o.Weights) * len(o.KV), Interrupted: runErr != nil,
				Command: "tamp " + strings.Join(os.Args[1:], " ")}
			if err := sweep.WriteReport(dir, res.Points, rep); err != nil {
				if runErr != nil {
					return runErr
				}
				return err
			}
			fmt.Fprintf(stderr, "%d points; report: %s, %s\n", len(res.Points), filepath.Join(dir, "report.md"), filepath.Join(dir, "report.html"))
			if runErr == nil {
				if err := sweep.WriteTable(cmd.OutOrStdout(), res.Points); err != nil {
					return err
				}
				if len(res.Failed) > 0 {
					fmt.Fprintf(stderr, "%d combinations could not run (listed in the report)\n", len(res.Failed))
				}
			}
			return runErr
		},
	}
	mf.register(cmd)
	f := cmd.Flags()
	f.StringVarP(&textPath, "file", "f", "", "text to evaluate on")
	f.StringVar(&calibPath, "calib", "", "calibration text for bpw:X formats (default: the second half of --file)")
	f.StringVar(&weights, "weights", "orig,Q8_0,Q4_0", "comma-separated weight formats")
	f.StringVar(&kvList, "kv", "full", "comma-separated KV-cache settings")
	f.StringVarP(&dir, "output", "o", "", "directory for results, cached files and the report")
	f.IntVar(&o.Ctx, "ctx", 512, "context in tokens: chunk length evaluated and the size KV bytes are reported at")
	f.IntVar(&o.Chunks, "chunks", 16, "chunks of --ctx tokens evaluated per point; 0 = the whole text")
	f.IntVar(&o.Batch, "batch", 0, "prompt tokens per weight-matrix pass; 0 = the model's default")
	f.IntVarP(&o.Workers, "workers", "j", 0, "points evaluated at once; 0 = as many as cores (fewer if memory is short)")
	f.IntVarP(&o.Threads, "threads", "t", 0, "threads per point; 0 = cores ÷ workers")
	f.IntVar(&o.SpeedPrompt, "speed-prompt", 256, "prompt tokens of the speed test")
	f.IntVar(&o.SpeedGen, "speed-gen", 64, "tokens generated in the speed test")
	f.IntVar(&o.SpeedRepeat, "speed-repeat", 3, "runs of the speed test (the median is reported)")
	f.Uint64Var(&o.Seed, "seed", 1, "seed of the speed test's random token ids")
	f.BoolVar(&noSpeed, "no-speed", false, "skip the speed test")
	f.IntVar(&o.CalibCtx, "calib-ctx", 128, "tokens per calibration chunk (bpw formats)")
	f.IntVar(&o.CalibChunks, "calib-chunks", 4, "calibration chunks per damage measurement (bpw formats)")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress bar (per-point lines are still printed)")
	kvStorageFlag(cmd, &kvType)
	return cmd
}

// fileID identifies a model file by the SHA-256 of its contents.
func fileID(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return filepath.Base(path) + ":" + hex.EncodeToString(h.Sum(nil)), nil
}

// sweepDisplay shows the sweep's progress: a live bar with ETA on a terminal
// with the per-point lines printed above it, or plain lines elsewhere.
type sweepDisplay struct {
	mu       sync.Mutex
	w        io.Writer
	bar      *progressbar.ProgressBar
	tty      bool
	quiet    bool
	last     sweep.Progress
	lastLine time.Time
}

func newSweepDisplay(w io.Writer, quiet bool) *sweepDisplay {
	d := &sweepDisplay{w: w, quiet: quiet}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		d.tty = true
	}
	return d
}

func (d *sweepDisplay) progress(p sweep.Progress) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.last = p
	if d.quiet || p.Total == 0 {
		return
	}
	if d.tty {
		if d.bar == nil {
			d.bar = progressbar.NewOptions(p.Total, progressbar.OptionSetWriter(d.w),
				progressbar.OptionShowCount(), progressbar.OptionThrottle(200*time.Millisecond),
				progressbar.OptionClearOnFinish(), progressbar.OptionSetElapsedTime(true))
		}
		d.bar.Describe(fmt.Sprintf("points %d/%d, ETA %s", p.PointsDone, p.PointsTotal, eta(p)))
		d.bar.Set(p.Done)
		return
	}
	// Without a terminal: a status line at most every 30 seconds.
	if time.Since(d.lastLine) > 30*time.Second {
		d.lastLine = time.Now()
		fmt.Fprintf(d.w, "progress: %s\n", status(p))
	}
}

func eta(p sweep.Progress) string {
	if p.ETA <= 0 {
		return "?"
	}
	return p.ETA.Round(time.Second).String()
}

func status(p sweep.Progress) string {
	pct := 0
	if p.Total > 0 {
		pct = 100 * p.Done / p.Total
	}
	return fmt.Sprintf("%d%% (points %d/%d), %s elapsed, ETA %s", pct, p.PointsDone, p.PointsTotal, p.Elapsed.Round(time.Second), eta(p))
}

func (d *sweepDisplay) log(line string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.bar != nil {
		d.bar.Clear()
	}
	if !d.tty && d.last.PointsTotal > 0 && d.last.Done > 0 {
		line += "  | " + status(d.last)
	}
	fmt.Fprintln(d.w, line)
}

func (d *sweepDisplay) finish() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.bar != nil {
		d.bar.Clear()
		d.bar = nil
	}
}
