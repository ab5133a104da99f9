package tensor

import (
	"runtime"
	"sync"
	"sync/atomic"

	"tamp/internal/par"
)

// The worker pool that runs MatMul, created on first use. Replacing it
// (SetThreads) closes the old one, whose running job finishes first; a
// product that picked up the old pool just before runs on its own
// goroutine, which is correct, only slower.
var (
	poolMu   sync.Mutex
	poolPtr  atomic.Pointer[par.Pool]
	poolSize int // the SetThreads value; 0 means GOMAXPROCS
)

func workers() *par.Pool {
	if p := poolPtr.Load(); p != nil {
		return p
	}
	poolMu.Lock()
	defer poolMu.Unlock()
	if p := poolPtr.Load(); p != nil {
		return p
	}
	p := par.New(poolSize)
	poolPtr.Store(p)
	return p
}

// SetThreads sets how many threads (goroutines, the caller's included)
// MatVec and MatMul spread a product over. n < 1 restores the default,
// runtime.GOMAXPROCS(0) at the time the pool starts. It is safe to call at
// any time; products already running finish on the previous threads.
//
// Decoding is bound by memory bandwidth, which one or two cores can already
// saturate on some machines, so benchmarks (tamp bench -t) set this to
// measure the scaling.
//
// The threads are shared by the whole process. When several goroutines run
// products at once (several sessions), one product at a time is spread
// over them and the others run each on its own goroutine, so that nothing
// waits and the cores are not oversubscribed by more than one goroutine per
// caller. Products too small to be worth splitting (below about 65k
// multiply-adds) always run on the caller.
func SetThreads(n int) {
	poolMu.Lock()
	defer poolMu.Unlock()
	if n < 1 {
		n = 0
	}
	if n == poolSize && poolPtr.Load() != nil {
		return
	}
	poolSize = n
	old := poolPtr.Swap(par.New(n))
	if old != nil {
		old.Close()
	}
}

// Threads is the number of threads MatVec and MatMul use.
func Threads() int {
	poolMu.Lock()
	n := poolSize
	poolMu.Unlock()
	if p := poolPtr.Load(); p != nil {
		return p.Threads()
	}
	if n < 1 {
		n = runtime.GOMAXPROCS(0)
	}
	return n
}

// Parallel runs job.Task(i) for every i in [0, tasks) on the threads MatVec
// and MatMul use (the caller's included) and returns when all have
// returned, for element-wise work between products that would otherwise
// leave the other threads idle. It has par.Pool.Run's rules: tasks must
// touch disjoint data and must not call Parallel, MatVec or MatMul.
func Parallel(tasks int, job par.Job) {
	workers().Run(tasks, job)
}
