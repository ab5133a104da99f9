package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress reports the advance of long work: a live bar with ETA on a
// terminal, and a plain line every tenth of the way elsewhere (logs, CI), so
// redirected output is not flooded with carriage returns.
type progress struct {
	bar      *progressbar.ProgressBar
	w        io.Writer
	desc     string
	total    int
	lastTick int
	start    time.Time
}

func newProgress(w io.Writer, total int, desc string) *progress {
	p := &progress{w: w, desc: desc, total: total, start: time.Now()}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(desc), progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true), progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish())
	}
	return p
}

// Set records that done of total units are finished.
func (p *progress) Set(done int) {
	if p.bar != nil {
		p.bar.Set(done)
		return
	}
	if p.total <= 0 {
		return
	}
	tick := 10 * done / p.total
	if tick > p.lastTick {
		p.lastTick = tick
		elapsed := time.Since(p.start)
		eta := time.Duration(float64(elapsed) * float64(p.total-done) / float64(max(done, 1)))
		fmt.Fprintf(p.w, "%s: %d/%d (%d%%), %s elapsed, ETA %s\n", p.desc, done, p.total, 100*done/p.total,
			elapsed.Round(time.Second), eta.Round(time.Second))
	}
}

// Finish clears a live bar.
func (p *progress) Finish() {
	if p.bar != nil {
		p.bar.Finish()
	}
}
