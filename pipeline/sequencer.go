package pipeline

import (
	"maps"
	"slices"
	"sync"

	"github.com/workerpool/workerpool/internal/spool"
	"github.com/workerpool/workerpool/job"
)

// sequencer puts results back in input order. It holds a result that
// finished before its predecessors until their turn, and it bounds how many
// it may hold: a task is admitted only within window of the oldest result
// not yet passed on. Sequence numbers start at 1, and every one is either
// admitted, and then has exactly one result, or skipped.
//
// A held result keeps only the first few KiB of each output in memory; the
// rest wait in one file shared by all held results (see spool.Held), so
// that waiting results cost little memory and one file descriptor in all.
type sequencer struct {
	window int64
	file   *spool.Held // where held results keep their bytes

	// rank, when set, is the turn of each seq: results are passed on in
	// that order rather than in input order (see reorder).
	rank map[int64]int64

	mu    sync.Mutex
	next  int64                 // the oldest turn not yet passed on
	held  map[int64]*job.Result // by turn, finished out of turn; nil for a skipped one
	moved chan struct{}         // closed, and replaced, whenever next advances
}

// reorder makes the order of tasks, which holds every task of the run, the
// order of the results. It must be called before the first task is
// admitted or skipped.
func (s *sequencer) reorder(tasks []job.Task) {
	s.rank = make(map[int64]int64, len(tasks))
	for i, t := range tasks {
		s.rank[t.Seq] = int64(i) + 1
	}
}

// turn is the place of seq in the order of the results.
func (s *sequencer) turn(seq int64) int64 {
	if s.rank == nil {
		return seq
	}
	return s.rank[seq]
}

// newSequencer returns a sequencer that admits tasks within window of the
// oldest result not yet passed on, and keeps the bytes of the results it
// holds in a file in tempDir (os.TempDir() when empty).
func newSequencer(window int, tempDir string) *sequencer {
	return &sequencer{window: int64(window), file: spool.NewHeld(tempDir), next: 1, held: map[int64]*job.Result{}, moved: make(chan struct{})}
}

// admit blocks until seq is within the window, or stop is closed.
func (s *sequencer) admit(stop <-chan struct{}, seq int64) {
	seq = s.turn(seq)
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
	seq = s.turn(seq)
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq != s.next {
		s.held[seq] = nil
		return
	}
	s.advance()
}

// order receives results until in is closed and sends them on the returned
// channel in input order; it closes that channel after the last one. The
// receiver closes each result it gets (job.Result.Close): the shared file
// of held results is closed once the last one sent is closed.
func (s *sequencer) order(in <-chan job.Result) <-chan job.Result {
	out := make(chan job.Result)
	go func() {
		defer close(out)
		defer s.file.Finish()
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
// order: none if r is early, else r and those held right behind it. It is
// called by one goroutine at a time, so whether r is early cannot change
// while it is being held: only ready passes a result on, and skip moves
// past a task that has no result yet, which comes after r.
func (s *sequencer) ready(r job.Result) []job.Result {
	if s.early(r.Seq) {
		s.hold(r)
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
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

// early reports whether seq must wait for results before it.
func (s *sequencer) early(seq int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.turn(seq) != s.next
}

// hold keeps r until its turn, with most of its outputs' bytes moved to
// the shared file.
func (s *sequencer) hold(r job.Result) {
	s.file.Keep(&r.Stdout)
	s.file.Keep(&r.Stderr)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held[s.turn(r.Seq)] = &r
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
