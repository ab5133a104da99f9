package par

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countJob records how often each task ran.
type countJob struct{ hits []atomic.Int32 }

func (j *countJob) Task(i int) { j.hits[i].Add(1) }

func checkOnce(t *testing.T, j *countJob) {
	t.Helper()
	for i := range j.hits {
		if n := j.hits[i].Load(); n != 1 {
			t.Fatalf("task %d ran %d times", i, n)
		}
	}
}

func TestRunEveryTaskOnce(t *testing.T) {
	for _, threads := range []int{1, 2, 3, 8} {
		p := New(threads)
		if p.Threads() != threads {
			t.Errorf("Threads() = %d, want %d", p.Threads(), threads)
		}
		for _, tasks := range []int{0, 1, 2, 7, 100, 1000} {
			// Several rounds so that workers go through spinning,
			// parking and being woken between jobs.
			for round := 0; round < 20; round++ {
				j := &countJob{hits: make([]atomic.Int32, tasks)}
				p.Run(tasks, j)
				checkOnce(t, j)
			}
		}
		p.Close()
	}
}

func TestNewDefaultThreads(t *testing.T) {
	p := New(0)
	defer p.Close()
	if p.Threads() < 1 {
		t.Fatalf("Threads() = %d", p.Threads())
	}
}

// sumJob adds up task numbers into per-task slots, the pattern the tensor
// kernels use (disjoint output ranges).
type sumJob struct{ out []int }

func (j *sumJob) Task(i int) { j.out[i] = i * i }

func TestConcurrentRuns(t *testing.T) {
	p := New(3)
	defer p.Close()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := 0; round < 50; round++ {
				j := &sumJob{out: make([]int, 64)}
				p.Run(len(j.out), j)
				for i, v := range j.out {
					if v != i*i {
						t.Errorf("out[%d] = %d", i, v)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}

func TestClose(t *testing.T) {
	p := New(4)
	j := &countJob{hits: make([]atomic.Int32, 10)}
	p.Run(10, j)
	p.Close()
	p.Close() // idempotent
	// A closed pool still runs jobs, on the caller.
	j = &countJob{hits: make([]atomic.Int32, 10)}
	p.Run(10, j)
	checkOnce(t, j)
}

func TestRunDoesNotAllocate(t *testing.T) {
	p := New(2)
	defer p.Close()
	j := &sumJob{out: make([]int, 16)}
	if n := testing.AllocsPerRun(100, func() { p.Run(len(j.out), j) }); n != 0 {
		t.Errorf("Run allocates %v times per call", n)
	}
}

type nopJob struct{}

func (nopJob) Task(int) {}

// BenchmarkRun measures the fixed cost of a parallel job: handing it out
// and waiting for every thread.
func BenchmarkRun(b *testing.B) {
	p := New(0)
	defer p.Close()
	var j nopJob
	for b.Loop() {
		p.Run(p.Threads(), j)
	}
}

// blockJob's tasks wait until release is closed; started counts them in.
type blockJob struct {
	started chan struct{}
	release chan struct{}
}

func (j *blockJob) Task(int) {
	j.started <- struct{}{}
	<-j.release
}

// TestRunWhileBusy: a Run that finds the workers busy with another caller's
// job must run its own job on its goroutine rather than wait for them.
func TestRunWhileBusy(t *testing.T) {
	p := New(2)
	defer p.Close()
	blocked := &blockJob{started: make(chan struct{}, 2), release: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Go(func() { p.Run(2, blocked) })
	<-blocked.started // the first job holds the pool

	j := &countJob{hits: make([]atomic.Int32, 50)}
	done := make(chan struct{})
	go func() {
		p.Run(len(j.hits), j)
		close(done)
	}()
	select {
	case <-done:
		checkOnce(t, j)
	case <-time.After(30 * time.Second):
		t.Error("Run waited for another caller's job")
	}
	close(blocked.release)
	wg.Wait()
}
