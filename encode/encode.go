// Package encode writes results as JSON: one array on one line (the
// classic form), or one line per result (NDJSON), in input order or in the
// order they finish.
package encode

import (
	"bufio"
	"bytes"
	"io"
	"maps"
	"slices"

	json "github.com/goccy/go-json"

	"github.com/workerpool/workerpool/dispatch"
)

// Options configure Write.
type Options struct {
	// NDJSON writes one result per line, each flushed as it is written;
	// otherwise the results form one JSON array on one line.
	NDJSON bool
	// Ordered writes results in input order. The array is always ordered.
	Ordered bool
	// Binary sends result_body and stderr base64-encoded.
	Binary bool
	// Events writes lifecycle events as lines of their own, at once, and
	// marks results with "event":"finished". NDJSON only.
	Events bool
}

// Summary counts what Write wrote.
type Summary struct {
	Results int64
	Failed  int64
}

// Write receives results until the channel is closed and writes each to w
// as soon as its turn comes, flushing after each one. It is meant to be the
// only writer of w. It returns at the first write error; the sender must
// then be cancelled, since nobody receives any more.
func Write(w io.Writer, results <-chan dispatch.Result, opts Options) (Summary, error) {
	e := newEncoder(bufio.NewWriterSize(w, 64<<10), opts)
	if opts.NDJSON && !opts.Ordered {
		for r := range results {
			if err := e.write(&r); err != nil {
				return e.sum, err
			}
		}
		return e.sum, nil
	}
	if !opts.NDJSON {
		if _, err := e.w.WriteString("["); err != nil {
			return e.sum, err
		}
	}
	pending := map[int64]dispatch.Result{}
	defer func() {
		for _, r := range pending { // left over after a write error
			r.Close()
		}
	}()
	for r := range results {
		if !r.IsResult() {
			if err := e.write(&r); err != nil {
				return e.sum, err
			}
			continue
		}
		if r.Seq != e.next {
			// It waits for its turn, holding only its own bytes.
			r.Stdout.Head, r.Stderr.Head = compact(r.Stdout.Head), compact(r.Stderr.Head)
			pending[r.Seq] = r
			continue
		}
		if err := e.write(&r); err != nil {
			return e.sum, err
		}
		for e.next++; ; e.next++ {
			r, ok := pending[e.next]
			if !ok {
				break
			}
			delete(pending, e.next)
			if err := e.write(&r); err != nil {
				return e.sum, err
			}
		}
	}
	// Results whose predecessors never came (the sender was cancelled) are
	// still written, in order.
	for _, seq := range slices.Sorted(maps.Keys(pending)) {
		r := pending[seq]
		if err := e.write(&r); err != nil {
			return e.sum, err
		}
	}
	if !opts.NDJSON {
		if _, err := e.w.WriteString("]\n"); err != nil {
			return e.sum, err
		}
	}
	return e.sum, e.w.Flush()
}

type encoder struct {
	w    *bufio.Writer
	opts Options
	next int64 // the sequence number whose turn it is, when ordered
	sum  Summary
	buf  *bytes.Buffer // holds small encoded values
	enc  *json.Encoder // writes to buf
	text []byte        // a chunk of output being escaped
}

func newEncoder(w *bufio.Writer, opts Options) *encoder {
	buf := new(bytes.Buffer)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	return &encoder{w: w, opts: opts, next: 1, buf: buf, enc: enc}
}

func (e *encoder) write(r *dispatch.Result) error {
	defer r.Close()
	if r.Recorded || !r.IsResult() && !(e.opts.Events && e.opts.NDJSON) {
		return nil
	}
	if !r.IsResult() {
		return e.writeEvent(r)
	}
	if !e.opts.NDJSON && e.sum.Results > 0 {
		if err := e.w.WriteByte(','); err != nil {
			return err
		}
	}
	if err := e.writeResult(r); err != nil {
		return err
	}
	if e.opts.NDJSON {
		if err := e.w.WriteByte('\n'); err != nil {
			return err
		}
	}
	e.sum.Results++
	if r.Failed() {
		e.sum.Failed++
	}
	return e.w.Flush()
}

// event is a lifecycle notice as the user sees it.
type event struct {
	Event      string          `json:"event"`
	Identifier string          `json:"identifier"`
	Seq        int64           `json:"seq"`
	Attempt    int             `json:"attempt"`
	ExitCode   *int            `json:"exit_code,omitempty"`
	Error      string          `json:"error,omitempty"`
	Meta       json.RawMessage `json:"meta,omitempty"`
}

func (e *encoder) writeEvent(r *dispatch.Result) error {
	ev := event{Event: r.Event, Identifier: r.Identifier, Seq: r.Seq, Attempt: r.Attempts, Meta: r.Meta}
	if r.Event == dispatch.EventRetrying {
		ev.ExitCode = &r.ExitCode
		if r.Err != nil {
			ev.Error = r.Err.Error()
		}
	}
	e.buf.Reset()
	if err := e.enc.Encode(&ev); err != nil {
		return err
	}
	if _, err := e.w.Write(e.buf.Bytes()); err != nil {
		return err
	}
	return e.w.Flush()
}

// Marshal returns the JSON form of one result, as Write writes it.
func Marshal(r *dispatch.Result, binary bool) ([]byte, error) {
	var out bytes.Buffer
	e := newEncoder(bufio.NewWriter(&out), Options{Binary: binary})
	if err := e.writeResult(r); err != nil {
		return nil, err
	}
	if err := e.w.Flush(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// compact returns b without its spare capacity, so that results waiting
// for their turn hold only their own bytes.
func compact(b []byte) []byte {
	if cap(b)-len(b) < 4<<10 {
		return b
	}
	return bytes.Clone(b)
}
