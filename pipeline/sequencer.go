package pipeline

import (
	"bytes"
	"maps"
	"slices"
	"sync"

	"github.com/workerpool/workerpool/job"
)

// sequencer puts results back in input order. It holds a result that
// finished before its predecessors until their turn, and it bounds how many
// it may hold: a task is admitted only within window of the oldest result
// not yet passed on. Sequence numbers start at 1, and every one is either
// admitted, and then has exactly one result, or skipped.
type sequencer struct {
	window int64

	mu    sync.Mutex
	next  int64                 // the oldest seq not yet passed on
	held  map[int64]*job.Result // finished out of turn; nil for a skipped seq
	moved chan struct{}         // closed, and replaced, whenever next advances
}

func newSequencer(window int) *sequencer {
	return &sequencer{window: int64(window), next: 1, held: map[int64]*job.Result{}, moved: make(chan struct{})}
}

// admit blocks until seq is within the window, or stop is closed.
func (s *sequencer) admit(stop <-chan struct{}, seq int64) {
	for {
		s.mu.Lock()
		ok, moved := seq < s.next+s.window, s.moved
		s.mu.Unlock()
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

// skip records that seq will have no result. Tasks are admitted or skipped
// in order, so no result after seq exists yet.
func (s *sequencer) skip(seq int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq != s.next {
		s.held[seq] = nil
		return
	}
	s.advance()
}

// order receives results until in is closed and sends them on the returned
// channel in input order; it closes that channel after the last one.
func (s *sequencer) order(in <-chan job.Result) <-chan job.Result {
	out := make(chan job.Result)
	go func() {
		defer close(out)
		for r := range in {
			for _, r := range s.ready(r) {
				out <- r
			}
		}
		for _, r := range s.leftover() {
			out <- r
		}
	}()
	return out
}

// ready takes r and returns the results whose turn has come with it, in
// order: none if r is early, else r and those held right behind it.
func (s *sequencer) ready(r job.Result) []job.Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Seq != s.next {
		// It waits for its turn, holding only its own bytes.
		r.Stdout.Head, r.Stderr.Head = compact(r.Stdout.Head), compact(r.Stderr.Head)
		s.held[r.Seq] = &r
		return nil
	}
	batch := []job.Result{r}
	for s.advance(); ; s.advance() {
		h, ok := s.held[s.next]
		if !ok {
			return batch
		}
		delete(s.held, s.next)
		if h != nil {
			batch = append(batch, *h)
		}
	}
}

// advance moves past next and wakes whoever waits to be admitted.
func (s *sequencer) advance() {
	s.next++
	close(s.moved)
	s.moved = make(chan struct{})
}

// leftover returns, in order, the results still held once no more will
// come: none, when every admitted task has had its result.
func (s *sequencer) leftover() []job.Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	var rest []job.Result
	for _, seq := range slices.Sorted(maps.Keys(s.held)) {
		if h := s.held[seq]; h != nil {
			rest = append(rest, *h)
		}
	}
	clear(s.held)
	return rest
}

// compact returns b without its spare capacity, so that results waiting
// for their turn hold only their own bytes.
func compact(b []byte) []byte {
	if cap(b)-len(b) < 4<<10 {
		return b
	}
	return bytes.Clone(b)
}
