// Package par runs data-parallel jobs on a fixed set of worker goroutines.
//
// Decoding one token runs a few hundred matrix products of a few hundred
// microseconds each. Starting goroutines for every product, or handing work
// over through a channel per piece, costs allocations and scheduler round
// trips that add up to several percent of a token; a Pool keeps its workers
// alive between jobs, lets them spin briefly before parking so that the next
// job of a burst finds them awake, and hands out the pieces of a job through
// one atomic counter.
package par

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Job is a unit of parallel work split into numbered tasks. Task is called
// exactly once for every task number of a Run, from any of the pool's
// goroutines (the caller of Run included), concurrently with other tasks of
// the same job; tasks must therefore touch disjoint data or synchronise.
type Job interface {
	Task(i int)
}

// spinTime is how long an idle worker polls for the next job before it
// parks. Each poll yields the processor, so a spinning worker gives way to
// any other runnable goroutine. Decoding a token runs about a hundred
// products with serial work between them (activation conversion, norms,
// rotary embedding, small attention) of ten to a few hundred
// microseconds; a worker that parks in those gaps joins the next product
// late, after a wake-up through the OS, and leaves the first of its tasks
// to the caller, which measured as a third of the tasks lost at 200 polls
// (about 15 µs). 300 µs bridges the gaps within a token and is still short
// against the time between requests, when the workers should sleep.
const spinTime = 300 * time.Microsecond

// Worker states.
const (
	awake  = 0
	parked = 1
)

// Pool is a set of worker goroutines that execute Jobs. The goroutine that
// calls Run works too, so a Pool of n threads starts n-1 goroutines. One job
// runs on the workers at a time: a Run that finds them busy with another
// caller's job runs its own on the calling goroutine instead of waiting, so
// concurrent callers (several sessions decoding at once) neither queue
// behind each other nor oversubscribe the cores by more than one thread
// each. The zero Pool is not usable; create one with New and release it
// with Close.
type Pool struct {
	threads int
	mu      sync.Mutex // held for the whole of a Run on the workers, and by Close
	closed  atomic.Bool

	// The current job. Written by Run before it publishes a new state and
	// read by workers only after they have joined that state's job.
	job   Job
	tasks int64
	next  atomic.Int64 // next task number to hand out

	// state packs the job generation (bits 33-63), a flag set once every
	// task has been handed out (bit 32) and the number of workers that have
	// joined the job and not yet left it (bits 0-31). Workers join only
	// while the flag is clear, so Run waits for exactly the workers that
	// took part, never for one that the OS has not scheduled yet.
	state atomic.Uint64
	done  chan struct{} // the last worker to leave a sealed job sends one token

	workers []worker
	quit    atomic.Bool
	exited  sync.WaitGroup
}

const (
	sealed     = 1 << 32
	genShift   = 33
	activeMask = sealed - 1
)

type worker struct {
	state atomic.Int32  // awake or parked
	wake  chan struct{} // a token unparks the worker
	_     [40]byte      // keep neighbouring workers' states on separate cache lines
}

// New starts a pool of threads goroutines (counting the caller of Run); a
// value below 1 means runtime.GOMAXPROCS(0).
func New(threads int) *Pool {
	if threads < 1 {
		threads = runtime.GOMAXPROCS(0)
	}
	p := &Pool{
		threads: threads,
		done:    make(chan struct{}, 1),
		workers: make([]worker, threads-1),
	}
	p.state.Store(sealed) // generation 0, nothing to join
	for i := range p.workers {
		w := &p.workers[i]
		w.wake = make(chan struct{}, 1)
		w.state.Store(parked)
		p.exited.Add(1)
		go p.loop(w)
	}
	return p
}

// Threads is the number of goroutines that run a job, the caller's included.
func (p *Pool) Threads() int { return p.threads }

// Run calls job.Task(i) for every i in [0, tasks) and returns when all calls
// have returned. Tasks are handed out in increasing order to whichever thread
// asks first, so uneven tasks or a busy core balance out. With one task, one
// thread, a closed pool or workers busy with another Run, everything runs on
// the calling goroutine. Run does not allocate. A Task must not call Run on
// the same pool, and a panicking Task on a worker goroutine ends the program
// like any goroutine's panic.
func (p *Pool) Run(tasks int, job Job) {
	if tasks <= 0 {
		return
	}
	if tasks == 1 || len(p.workers) == 0 || p.closed.Load() || !p.mu.TryLock() {
		for i := 0; i < tasks; i++ {
			job.Task(i)
		}
		return
	}
	defer p.mu.Unlock()
	if p.closed.Load() { // closed while we took the lock
		for i := 0; i < tasks; i++ {
			job.Task(i)
		}
		return
	}
	p.job = job
	p.tasks = int64(tasks)
	p.next.Store(0)
	gen := p.state.Load()>>genShift + 1
	p.state.Store(gen << genShift) // publishes the job: open, no one joined
	for i := range p.workers {
		w := &p.workers[i]
		if w.state.CompareAndSwap(parked, awake) {
			w.wake <- struct{}{}
		}
	}
	p.work()
	// Every task has been handed out: seal the job so that no worker joins
	// it any more, and wait for those still working on a task.
	if old := p.state.Or(sealed); old&activeMask != 0 {
		p.await()
	}
	p.job = nil
}

// await waits for the last worker of a sealed job to leave, and takes the
// token it sends. It polls first: blocking on the channel would hand this
// goroutine to the sender's processor when the token comes, leaving this
// one's idle and the worker queued for a thread at the start of the next
// job, which showed as the worker doing a third of decoding's tasks.
func (p *Pool) await() {
	start := time.Now()
	for spin := 0; p.state.Load()&activeMask != 0; spin++ {
		if spin&7 == 0 && time.Since(start) >= spinTime {
			break
		}
		runtime.Gosched()
	}
	<-p.done // sent by the worker that left last; already there unless it is just leaving
}

// work runs tasks of the current job until none are left.
func (p *Pool) work() {
	for {
		i := p.next.Add(1) - 1
		if i >= p.tasks {
			return
		}
		p.job.Task(int(i))
	}
}

// join adds the worker to the job of generation gen, unless that job is
// sealed or superseded.
func (p *Pool) join(gen uint64) bool {
	for {
		s := p.state.Load()
		if s>>genShift != gen || s&sealed != 0 {
			return false
		}
		if p.state.CompareAndSwap(s, s+1) {
			return true
		}
	}
}

func (p *Pool) loop(w *worker) {
	defer p.exited.Done()
	var seen uint64
	for {
		// Wait for a job newer than the last one seen: spin first, then
		// park. The state handshake makes Run send a wake token exactly
		// when the worker is (about to be) parked.
		if w.state.Load() == parked {
			<-w.wake
		}
		idle := time.Now()
		for spin := 0; p.state.Load()>>genShift == seen && !p.quit.Load(); spin++ {
			if spin&7 != 0 || time.Since(idle) < spinTime {
				runtime.Gosched()
				continue
			}
			w.state.Store(parked)
			// Run may have published a job before seeing the parked
			// state; if so, take it without waiting unless Run has
			// already claimed the wake-up (then its token is on the
			// way and must be consumed).
			if p.state.Load()>>genShift != seen || p.quit.Load() {
				if !w.state.CompareAndSwap(parked, awake) {
					<-w.wake
				}
				break
			}
			<-w.wake
			spin, idle = 0, time.Now()
		}
		if p.quit.Load() {
			return
		}
		seen = p.state.Load() >> genShift
		if !p.join(seen) {
			continue // came too late: the caller did all the tasks
		}
		p.work()
		if s := p.state.Add(^uint64(0)); s&activeMask == 0 && s&sealed != 0 {
			p.done <- struct{}{}
		}
	}
}

// Close stops the workers once any running job has finished. Later Runs
// execute on the calling goroutine. Close is idempotent.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return
	}
	p.closed.Store(true)
	p.quit.Store(true)
	for i := range p.workers {
		w := &p.workers[i]
		if w.state.CompareAndSwap(parked, awake) {
			w.wake <- struct{}{}
		}
	}
	p.exited.Wait()
}
