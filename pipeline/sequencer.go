package pipeline

import (
	"bytes"
	"cmp"
	"errors"
	"io"
	"maps"
	"os"
	"slices"
	"sync"

	"github.com/workerpool/workerpool/job"
)

// sequencer puts results back in input order. It holds a result that
// finished before its predecessors until their turn, and it bounds how many
// it may hold: a task is admitted only within window of the oldest result
// not yet passed on. Sequence numbers start at 1, and every one is either
// admitted, and then has exactly one result, or skipped.
//
// A held result keeps at most heldHead bytes of each output in memory; the
// rest wait in one file shared by all held results (see heldFile), so
// that waiting results cost little memory and one file descriptor in all.
type sequencer struct {
	window int64
	file   heldFile // where held results keep their bytes

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
// channel in input order; it closes that channel after the last one. The
// receiver closes each result it gets (job.Result.Close): the shared file
// of held results is closed once the last one sent is closed.
func (s *sequencer) order(in <-chan job.Result) <-chan job.Result {
	out := make(chan job.Result)
	go func() {
		defer close(out)
		defer s.file.finish()
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
	return seq != s.next
}

// hold keeps r until its turn, with its outputs' bytes past heldHead moved
// to the shared file.
func (s *sequencer) hold(r job.Result) {
	s.file.keep(&r.Stdout)
	s.file.keep(&r.Stderr)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held[r.Seq] = &r
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

// heldHead is how many bytes of each output a held result keeps in memory.
const heldHead = 4 << 10

// heldFile is the one file in which the results a sequencer holds keep
// their bytes past heldHead: an unlinked temporary file in os.TempDir(),
// made when first needed, in which each output has a section of its own.
// It is written only by keep, which one goroutine calls at a time, and
// read by the outputs, each at its own offsets (job.Output.Reader), from
// the goroutine that writes the results. The space of a section is used
// again once its output is closed, and unused space at the end of the
// file is given back, so the file holds about the bytes of the results
// waiting at one time, not all the bytes that ever waited. The file is
// closed once finish has been called and every section has been closed.
type heldFile struct {
	buf []byte // what keep copies through

	mu   sync.Mutex
	f    *os.File
	end  int64    // the length of the file
	free []extent // unused space before end, by offset; none adjacent
	live int      // sections not yet closed
	done bool     // no section will be added
}

// extent is a part of a heldFile.
type extent struct{ off, size int64 }

// keep moves the bytes of o past heldHead into a section of the file and
// closes o's own spill file; an output no longer than heldHead, or already
// in a shared file, stays as it is. When the bytes cannot be written to
// the file (no temporary directory, a full disk), o stays as it is too,
// with its memory and its own spill file: it costs more while it waits,
// but loses nothing. A file that cannot be made is tried again for the
// next output.
func (h *heldFile) keep(o *job.Output) {
	head := min(len(o.Head), heldHead)
	size := o.Len() - int64(head)
	if size == 0 || o.Shared != nil {
		o.Head = compact(o.Head)
		return
	}
	sec, err := h.alloc(size)
	if err == nil {
		err = h.copy(sec, o, head)
	}
	if err != nil {
		if sec != nil {
			sec.Close()
		}
		o.Head = compact(o.Head)
		return
	}
	own := *o
	*o = job.Output{Head: bytes.Clone(o.Head[:head]), Spill: sec.f, SpillOffset: sec.at.off, SpillSize: size, Shared: sec}
	own.Close()
}

// copy writes the bytes of o after its first head bytes to sec, which is
// as long.
func (h *heldFile) copy(sec *section, o *job.Output, head int) error {
	w := io.NewOffsetWriter(sec.f, sec.at.off)
	if _, err := w.Write(o.Head[head:]); err != nil || o.Spill == nil {
		return err
	}
	if h.buf == nil {
		h.buf = make([]byte, 64<<10)
	}
	n, err := io.CopyBuffer(w, io.NewSectionReader(o.Spill, o.SpillOffset, o.SpillSize), h.buf)
	if err == nil && n != o.SpillSize {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// alloc returns a new section of size bytes: the first unused space that
// is large enough, else space added at the end. It makes the file on first
// use.
func (h *heldFile) alloc(size int64) (*section, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.f == nil {
		f, err := os.CreateTemp("", "workerpool-held-*")
		if err != nil {
			return nil, err
		}
		os.Remove(f.Name())
		h.f = f
	}
	h.live++
	at := extent{h.end, size}
	if i := slices.IndexFunc(h.free, func(e extent) bool { return e.size >= size }); i >= 0 {
		at.off = h.free[i].off
		h.free[i].off += size
		h.free[i].size -= size
		if h.free[i].size == 0 {
			h.free = slices.Delete(h.free, i, i+1)
		}
	} else {
		h.end += size
	}
	return &section{h: h, f: h.f, at: at}, nil
}

// release makes the space at unused, and gives back the end of the file
// when it is unused. It closes the file when it was the last section
// after finish.
func (h *heldFile) release(at extent) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.live--
	i, _ := slices.BinarySearchFunc(h.free, at.off, func(e extent, off int64) int { return cmp.Compare(e.off, off) })
	h.free = slices.Insert(h.free, i, at)
	if i+1 < len(h.free) && at.off+at.size == h.free[i+1].off {
		h.free[i].size += h.free[i+1].size
		h.free = slices.Delete(h.free, i+1, i+2)
	}
	if i > 0 && h.free[i-1].off+h.free[i-1].size == h.free[i].off {
		h.free[i-1].size += h.free[i].size
		h.free = slices.Delete(h.free, i, i+1)
	}
	var err error
	if last := len(h.free) - 1; h.free[last].off+h.free[last].size == h.end {
		h.end = h.free[last].off
		h.free = h.free[:last]
		err = h.f.Truncate(h.end)
	}
	if h.done && h.live == 0 {
		err = errors.Join(err, h.close())
	}
	return err
}

// finish says that no section will be added: the file is closed now if no
// section is open, else when the last one is closed.
func (h *heldFile) finish() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.done = true
	if h.live == 0 {
		h.close()
	}
}

func (h *heldFile) close() error {
	if h.f == nil {
		return nil
	}
	err := h.f.Close()
	h.f = nil
	return err
}

// section is one output's part of a heldFile. Closing it, once or more,
// makes its space unused.
type section struct {
	h    *heldFile
	f    *os.File // h.f, which stays open while the section does
	at   extent
	once sync.Once
}

func (s *section) Close() error {
	var err error
	s.once.Do(func() { err = s.h.release(s.at) })
	return err
}
