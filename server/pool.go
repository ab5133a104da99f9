package server

import (
	"context"
	"errors"
	"sync"
	"time"

	"tamp/engine"
)

var (
	// errBusy: every slot is taken and the queue is full, or the request
	// waited in the queue for the longest time allowed.
	errBusy = errors.New("server busy")
	// errClosed: the server is shutting down.
	errClosed = errors.New("server shutting down")
)

// pool hands out the server's slots. Requests that find every slot busy wait
// in a bounded first-in, first-out queue: a freed slot goes to the request
// that has waited longest, so no request is overtaken.
type pool struct {
	mu       sync.Mutex
	free     []*engine.Slot
	waiters  []chan *engine.Slot // FIFO; each has room for one slot
	maxQueue int
	closed   bool
	total    int
}

func newPool(slots []*engine.Slot, maxQueue int) *pool {
	return &pool{free: append([]*engine.Slot(nil), slots...), maxQueue: maxQueue, total: len(slots)}
}

// acquire returns a free slot, waiting in the queue for at most wait (0: no
// limit) or until ctx ends.
func (p *pool) acquire(ctx context.Context, wait time.Duration) (*engine.Slot, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errClosed
	}
	if len(p.free) > 0 {
		s := p.free[len(p.free)-1]
		p.free = p.free[:len(p.free)-1]
		p.mu.Unlock()
		return s, nil
	}
	if len(p.waiters) >= p.maxQueue {
		p.mu.Unlock()
		return nil, errBusy
	}
	ch := make(chan *engine.Slot, 1)
	p.waiters = append(p.waiters, ch)
	p.mu.Unlock()

	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	var err error
	select {
	case s := <-ch:
		if s == nil {
			return nil, errClosed
		}
		return s, nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-timeout:
		err = errBusy
	}
	// Leave the queue; if a slot was handed over meanwhile, pass it on.
	p.mu.Lock()
	for i, w := range p.waiters {
		if w == ch {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			p.mu.Unlock()
			return nil, err
		}
	}
	p.mu.Unlock()
	if s := <-ch; s != nil {
		p.release(s)
	}
	return nil, err
}

// release returns a slot: to the longest-waiting request if there is one.
func (p *pool) release(s *engine.Slot) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.waiters) > 0 {
		ch := p.waiters[0]
		p.waiters = p.waiters[1:]
		ch <- s
		return
	}
	p.free = append(p.free, s)
}

// close refuses new requests and wakes every queued one with errClosed.
// Slots in use are still returned with release.
func (p *pool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, ch := range p.waiters {
		ch <- nil
	}
	p.waiters = nil
}

// stats reports the busy slots and the queue length.
func (p *pool) stats() (busy, queued int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.total - len(p.free), len(p.waiters)
}
