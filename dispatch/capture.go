package dispatch

import (
	"bytes"
	"errors"
	"io"
	"os"
	"time"

	"github.com/workerpool/workerpool/internal/spool"
	"github.com/workerpool/workerpool/job"
)

// capture collects one output stream of a child, up to a limit; bytes past
// the limit are read and dropped so the child never blocks on a full pipe.
// Its bytes are kept as spool.Buffer keeps them.
type capture struct {
	r, w  *os.File
	buf   spool.Buffer
	lines *lineSplitter // nil unless the task's lines are wanted as they come
	done  chan struct{}
}

// newCapture returns a capture whose lines, when sink is not nil, go to
// sink as they come (see job.LineSink).
func (l *Local) newCapture(sink func([]byte)) (*capture, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	buf := spool.Buffer{Limit: l.opts.MaxOutput, InMemory: l.opts.SpillAfter, TempDir: l.opts.TempDir}
	c := &capture{r: r, w: w, buf: buf, done: make(chan struct{})}
	if sink != nil {
		c.lines = &lineSplitter{emit: sink}
	}
	return c, nil
}

func (c *capture) collect() {
	defer close(c.done)
	defer c.buf.Release()
	var from io.Reader = c.r
	if c.lines != nil {
		from = io.TeeReader(c.r, c.lines)
		defer c.lines.flush()
	}
	_, err := c.buf.ReadFrom(from)
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
			n, rerr = c.buf.ReadOnce(func(p []byte) (int, error) { return readFD(fd, p) })
			return true // never wait for more
		})
		if err != nil || rerr != nil || n <= 0 {
			return
		}
	}
}

// output hands over what was captured of stream ("stdout" or "stderr");
// whether bytes were dropped, past the limit or because they could not be
// kept; and, when some could not be kept, why (see spool.Buffer.Output).
func (c *capture) output(stream string) (job.Output, bool, error) {
	return c.buf.Output(stream)
}

// lineSplitter cuts what is written to it into lines for emit: each whole
// line as soon as its line break is written, a line of job.MaxLine bytes
// without one, and what is left at flush.
type lineSplitter struct {
	emit    func([]byte)
	pending []byte
}

func (s *lineSplitter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		end := len(p)
		if i >= 0 {
			end = i + 1
		}
		take := min(end, job.MaxLine-len(s.pending))
		s.pending = append(s.pending, p[:take]...)
		p = p[take:]
		if take == end && i >= 0 || len(s.pending) == job.MaxLine {
			s.emit(s.pending)
			s.pending = s.pending[:0]
		}
	}
	return n, nil
}

// flush emits what is left: a last line without a line break.
func (s *lineSplitter) flush() {
	if len(s.pending) > 0 {
		s.emit(s.pending)
		s.pending = s.pending[:0]
	}
}

// close closes both ends of the pipe; the write end is normally closed
// already, once the child has started.
func (c *capture) close() {
	c.r.Close()
	c.w.Close()
}
