package spool

import (
	"bytes"
	"cmp"
	"errors"
	"io"
	"os"
	"slices"
	"sync"

	"github.com/workerpool/workerpool/job"
)

// heldHead is how many bytes of each output a Held file leaves in memory.
const heldHead = 4 << 10

// Held is one file in which outputs that wait keep their bytes past the
// first heldHead: an unlinked temporary file in the directory NewHeld is
// given, made when first needed, in which each output has a section of its
// own. It is written only by Keep, which one goroutine calls at a time,
// and read by the outputs, each at its own offsets (job.Output.Reader),
// from any one goroutine. The space of a section is used again once its
// output is closed, and unused space at the end of the file is given back,
// so the file holds about the bytes of the outputs waiting at one time,
// not all the bytes that ever waited. The file is closed once Finish has
// been called and every section has been closed.
type Held struct {
	tempDir string // where the file is made; os.TempDir() when empty
	buf     []byte // what Keep copies through

	mu   sync.Mutex
	f    *os.File
	end  int64    // the length of the file
	free []extent // unused space before end, by offset; none adjacent
	live int      // sections not yet closed
	done bool     // no section will be added
}

// NewHeld returns a Held file that will be made in tempDir, os.TempDir()
// when empty.
func NewHeld(tempDir string) *Held { return &Held{tempDir: tempDir} }

// extent is a part of a Held file.
type extent struct{ off, size int64 }

// Keep moves the bytes of o past heldHead into a section of the file and
// closes o's own spill; an output no longer than heldHead, or already in
// a shared file, stays as it is, without its head's spare capacity. When
// the bytes cannot be written to the file (no temporary directory, a full
// disk), o stays as it is too, with its memory and its own spill file: it
// costs more while it waits, but loses nothing. A file that cannot be made
// is tried again for the next output.
func (h *Held) Keep(o *job.Output) {
	head := min(len(o.Head()), heldHead)
	size := o.Len() - int64(head)
	if _, shared := o.Spill().(*section); size == 0 || shared {
		*o = job.NewOutput(compact(o.Head()), o.Spill())
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
		*o = job.NewOutput(compact(o.Head()), o.Spill())
		return
	}
	own := *o
	*o = job.NewOutput(bytes.Clone(o.Head()[:head]), sec)
	own.Close()
}

// compact returns b without its spare capacity, so that outputs waiting
// hold only their own bytes.
func compact(b []byte) []byte {
	if cap(b)-len(b) < 4<<10 {
		return b
	}
	return bytes.Clone(b)
}

// copy writes the bytes of o after its first head bytes to sec, which is
// as long.
func (h *Held) copy(sec *section, o *job.Output, head int) error {
	w := io.NewOffsetWriter(sec.f, sec.at.off)
	spill := o.Spill()
	if _, err := w.Write(o.Head()[head:]); err != nil || spill == nil {
		return err
	}
	if h.buf == nil {
		h.buf = make([]byte, 64<<10)
	}
	n, err := io.CopyBuffer(w, io.NewSectionReader(spill, 0, spill.Size()), h.buf)
	if err == nil && n != spill.Size() {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// alloc returns a new section of size bytes: the first unused space that
// is large enough, else space added at the end. It makes the file on first
// use.
func (h *Held) alloc(size int64) (*section, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.f == nil {
		f, err := createTemp(h.tempDir, "workerpool-held-*")
		if err != nil {
			return nil, err
		}
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
	return &section{SectionReader: io.NewSectionReader(h.f, at.off, size), h: h, f: h.f, at: at}, nil
}

// release makes the space at unused, and gives back the end of the file
// when it is unused. It closes the file when it was the last section
// after Finish.
func (h *Held) release(at extent) error {
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

// Finish says that no section will be added: the file is closed now if no
// section is open, else when the last one is closed.
func (h *Held) Finish() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.done = true
	if h.live == 0 {
		h.close()
	}
}

func (h *Held) close() error {
	if h.f == nil {
		return nil
	}
	err := h.f.Close()
	h.f = nil
	return err
}

// section is one output's part of a Held file, which stays open while the
// section does; it reads that part only. Closing it, once or more, makes
// its space unused.
type section struct {
	*io.SectionReader
	h    *Held
	f    *os.File // h.f
	at   extent
	once sync.Once
}

func (s *section) Close() error {
	var err error
	s.once.Do(func() { err = s.h.release(s.at) })
	return err
}
