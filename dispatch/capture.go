package dispatch

import (
	"errors"
	"os"
	"time"

	"github.com/workerpool/workerpool/internal/spool"
	"github.com/workerpool/workerpool/job"
)

// capture collects one output stream of a child, up to a limit; bytes past
// the limit are read and dropped so the child never blocks on a full pipe.
// Its bytes are kept as spool.Buffer keeps them.
type capture struct {
	r, w *os.File
	buf  spool.Buffer
	done chan struct{}
}

func (l *Local) newCapture() (*capture, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	buf := spool.Buffer{Limit: l.opts.MaxOutput, InMemory: l.opts.SpillAfter, TempDir: l.opts.TempDir}
	return &capture{r: r, w: w, buf: buf, done: make(chan struct{})}, nil
}

func (c *capture) collect() {
	defer close(c.done)
	defer c.buf.Release()
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

// close closes both ends of the pipe; the write end is normally closed
// already, once the child has started.
func (c *capture) close() {
	c.r.Close()
	c.w.Close()
}
