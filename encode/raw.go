package encode

import (
	"bufio"
	"bytes"
	"io"

	"github.com/workerpool/workerpool/job"
)

// writeRawResult writes r's stdout to w as it is, and its stderr to
// e.opts.RawStderr, each whole; with Tag, every line starts with the
// task's identifier and a tab.
func (e *Encoder) writeRawResult(r *job.Result) error {
	var tag []byte
	if e.opts.Tag {
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
