package dispatch

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/workerpool/workerpool/job"
)

// capture collects one output stream of a child, up to a limit; bytes past
// the limit are read and dropped so the child never blocks on a full pipe.
type capture struct {
	r, w *os.File
	buf  spillBuffer
	done chan struct{}
}

func (l *Local) newCapture() (*capture, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	buf := spillBuffer{limit: l.opts.MaxOutput, inMemory: l.opts.SpillAfter, tempDir: l.opts.TempDir}
	return &capture{r: r, w: w, buf: buf, done: make(chan struct{})}, nil
}

func (c *capture) collect() {
	defer close(c.done)
	defer c.buf.release()
	_, err := c.buf.ReadFrom(c.r)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.readBuffered()
	}
}

// readBuffered takes what is still in the pipe after reading was cut short,
// without waiting for more: a busy machine may not have scheduled the reader
// before the pipe was abandoned.
func (c *capture) readBuffered() {
	rc, err := c.r.SyscallConn()
	if err != nil || c.r.SetReadDeadline(time.Time{}) != nil {
		return
	}
	// Bounded, in case a writer outside the group keeps filling the pipe.
	for range 64 {
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, rerr = c.buf.readOnce(func(p []byte) (int, error) { return readFD(fd, p) })
			return true // never wait for more
		})
		if err != nil || rerr != nil || n <= 0 {
			return
		}
	}
}

// output hands over what was captured; whether bytes were dropped, past
// the limit or because they could not be kept; and, when some could not be
// kept, why: the spill file could not be made or written.
func (c *capture) output() (job.Output, bool, error) {
	b := &c.buf
	return job.Output{Head: b.head, Spill: b.spill, SpillSize: b.spilled}, b.dropped, b.err
}

// keepError is the error of a task whose output stream could not be kept
// (see capture.output), or nil when err is nil.
func keepError(stream string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("cannot keep %s: %w", stream, err)
}

// close closes both ends of the pipe; the write end is normally closed
// already, once the child has started.
func (c *capture) close() {
	c.r.Close()
	c.w.Close()
}

// spillBuffer keeps the first limit bytes read into it (all of them when
// limit is zero) and drops the rest. The first inMemory bytes stay in
// memory, the others go to a temporary file.
type spillBuffer struct {
	limit    int64
	inMemory int
	tempDir  string

	head    []byte
	spill   *os.File
	spilled int64
	scratch *[chunk]byte
	dropped bool  // bytes were read and not kept
	err     error // from the spill file; what cannot be kept is dropped
}

// chunk is the most read from a pipe at once.
const chunk = 64 << 10

// ReadFrom reads r to its end.
func (b *spillBuffer) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for {
		n, err := b.readOnce(r.Read)
		total += int64(n)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

func (b *spillBuffer) size() int64 { return int64(len(b.head)) + b.spilled }

// readOnce makes one read through a scratch chunk and keeps what it got:
// in memory while the head is under inMemory, then in the spill file;
// once the limit is reached it is dropped.
func (b *spillBuffer) readOnce(read func([]byte) (int, error)) (int, error) {
	buf := b.scratchBuf()
	room := int64(len(buf))
	if b.limit > 0 {
		room = min(room, max(b.limit-b.size(), 0))
	}
	if room == 0 || b.err != nil {
		n, err := read(buf)
		b.dropped = b.dropped || n > 0
		return n, err
	}
	n, err := read(buf[:room])
	if n <= 0 {
		return n, err
	}
	got := buf[:n]
	if inMem := min(len(got), b.inMemory-len(b.head)); inMem > 0 {
		b.head = append(b.head, got[:inMem]...)
		got = got[inMem:]
	}
	if len(got) > 0 {
		b.keep(got)
	}
	return n, err
}

// keep appends p to the spill file, creating it (unlinked) on first use.
func (b *spillBuffer) keep(p []byte) {
	if b.spill == nil {
		f, err := os.CreateTemp(b.tempDir, "workerpool-output-*")
		if err != nil {
			b.err, b.dropped = err, true
			return
		}
		os.Remove(f.Name())
		b.spill = f
	}
	n, err := b.spill.Write(p)
	b.spilled += int64(n)
	if err != nil {
		b.err, b.dropped = err, true
	}
}

// scratchPool holds the chunks that pipes are read through, so that a task
// with little output allocates only what it printed.
var scratchPool = sync.Pool{New: func() any { return new([chunk]byte) }}

func (b *spillBuffer) scratchBuf() []byte {
	if b.scratch == nil {
		b.scratch = scratchPool.Get().(*[chunk]byte)
	}
	return b.scratch[:]
}

// release returns the scratch chunk; the buffer may read again after it.
func (b *spillBuffer) release() {
	if b.scratch != nil {
		scratchPool.Put(b.scratch)
		b.scratch = nil
	}
}

// ReadOutput reads r to its end and keeps what it read as Local keeps a
// child's output stream (stream names it, "stdout" or "stderr"): the first
// DefaultSpillAfter bytes in memory, the rest in an unlinked temporary file
// in tempDir (os.TempDir() when empty). The caller closes the Output. It
// reads r to its end even when the bytes cannot be kept, so that a stream
// framed by length stays in step; the bytes not kept are then dropped, as
// truncated reports, and the error says why, as Local's would.
func ReadOutput(r io.Reader, stream, tempDir string) (out job.Output, truncated bool, err error) {
	b := spillBuffer{inMemory: DefaultSpillAfter, tempDir: tempDir}
	defer b.release()
	_, err = b.ReadFrom(r)
	out = job.Output{Head: b.head, Spill: b.spill, SpillSize: b.spilled}
	if err == nil {
		err = keepError(stream, b.err)
	}
	return out, b.dropped, err
}
