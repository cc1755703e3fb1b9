package encode

import (
	"bufio"
	"bytes"
	"io"

	"github.com/workerpool/workerpool/job"
)

// Raw writes no JSON: each result is the task's stdout as it is, whole,
// as the task ends (GNU parallel's --group), and its captured stderr goes
// to Options.RawStderr. With Tag, every line of them starts with the
// task's identifier and a tab. An output file is appended to.
type Raw struct {
	Tag bool
}

func (Raw) String() string { return "raw" }
func (Raw) Traits() Traits { return Traits{Appends: true} }

// result writes r's stdout to e.w as it is, and its stderr to
// e.opts.RawStderr, each whole.
func (m Raw) result(e *Encoder, r *job.Result) error {
	var tag []byte
	if m.Tag {
		tag = append([]byte(r.Identifier), '\t')
	}
	if err := copyTagged(e.w, r.Stdout.Reader(), tag); err != nil {
		return err
	}
	if e.opts.RawStderr == nil || r.Stderr.Len() == 0 {
		return nil
	}
	if err := e.w.Flush(); err != nil { // stdout first, as the task wrote it
		return err
	}
	// The task's stderr is not the results': a failure to write it ends
	// nothing.
	w := bufio.NewWriter(e.opts.RawStderr)
	if copyTagged(w, r.Stderr.Reader(), tag) == nil {
		_ = w.Flush()
	}
	return nil
}

func (Raw) end(*Encoder) error { return nil }

// copyTagged copies r to w, with tag before every line.
func copyTagged(w *bufio.Writer, r io.Reader, tag []byte) error {
	if len(tag) == 0 {
		_, err := w.ReadFrom(r)
		return err
	}
	br := bufio.NewReaderSize(r, 64<<10)
	start := true
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			if start {
				if _, werr := w.Write(tag); werr != nil {
					return werr
				}
			}
			if _, werr := w.Write(chunk); werr != nil {
				return werr
			}
			start = bytes.HasSuffix(chunk, []byte{'\n'})
		}
		switch err {
		case nil, bufio.ErrBufferFull:
		case io.EOF:
			return nil
		default:
			return err
		}
	}
}
