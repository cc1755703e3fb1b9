package decode

import (
	"errors"
	"io"
)

// ErrInterrupted is returned by an Interruptible reader once it is stopped.
var ErrInterrupted = errors.New("reading stopped")

const chunkSize = 64 << 10

type chunk struct {
	data []byte
	err  error
}

// interruptible reads r in its own goroutine, one chunk ahead of its reader,
// so that a Read can return as soon as stop is closed even while the read of
// r underneath (a terminal, a pipe) stays blocked.
type interruptible struct {
	stop   <-chan struct{}
	chunks chan chunk
	rest   []byte
	err    error
}

// Interruptible returns a reader of r whose Read returns ErrInterrupted as
// soon as stop is closed. Bytes already read from r but not yet returned
// are dropped then. A goroutine blocked in r's Read stays blocked until
// that Read returns.
func Interruptible(r io.Reader, stop <-chan struct{}) io.Reader {
	ir := &interruptible{stop: stop, chunks: make(chan chunk)}
	go ir.pump(r)
	return ir
}

func (ir *interruptible) pump(r io.Reader) {
	for {
		buf := make([]byte, chunkSize)
		n, err := r.Read(buf)
		select {
		case ir.chunks <- chunk{buf[:n], err}:
		case <-ir.stop:
			return
		}
		if err != nil {
			return
		}
	}
}

func (ir *interruptible) Read(p []byte) (int, error) {
	for len(ir.rest) == 0 {
		if ir.err != nil {
			return 0, ir.err
		}
		select {
		case <-ir.stop:
			ir.err = ErrInterrupted
		case c := <-ir.chunks:
			ir.rest, ir.err = c.data, c.err
		}
	}
	select {
	case <-ir.stop:
		ir.rest, ir.err = nil, ErrInterrupted
		return 0, ir.err
	default:
	}
	n := copy(p, ir.rest)
	ir.rest = ir.rest[n:]
	return n, nil
}
