package dispatch

import "sync"

// window bounds how far ahead of the oldest unfinished task the pool may
// admit new ones. Sequence numbers start at 1 and every admitted sequence
// number is eventually finished. A nil window admits everything.
type window struct {
	size int64

	mu    sync.Mutex
	base  int64          // lowest sequence number not yet finished
	done  map[int64]bool // finished sequence numbers above base
	moved chan struct{}  // closed, and replaced, whenever base advances
}

func newWindow(size int) *window {
	return &window{size: int64(size), base: 1, done: map[int64]bool{}, moved: make(chan struct{})}
}

// admit blocks until seq is within the window of the oldest unfinished task,
// or stop is closed.
func (w *window) admit(stop <-chan struct{}, seq int64) {
	if w == nil {
		return
	}
	for {
		w.mu.Lock()
		ok, moved := seq < w.base+w.size, w.moved
		w.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-moved:
		case <-stop:
			return
		}
	}
}

// finish records that seq has its result.
func (w *window) finish(seq int64) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if seq != w.base {
		w.done[seq] = true
		return
	}
	w.base++
	for w.done[w.base] {
		delete(w.done, w.base)
		w.base++
	}
	close(w.moved)
	w.moved = make(chan struct{})
}
