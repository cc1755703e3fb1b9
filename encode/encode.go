// Package encode writes results as JSON: one array on one line (the
// classic form), or one line per result (NDJSON), in input order or in the
// order they finish.
package encode

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"math"
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
	e := &encoder{w: bufio.NewWriterSize(w, 64<<10), opts: opts, next: 1}
	e.reset()
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
	for r := range results {
		if !r.IsResult() {
			if err := e.write(&r); err != nil {
				return e.sum, err
			}
			continue
		}
		pending[r.Seq] = r
		for {
			r, ok := pending[e.next]
			if !ok {
				break
			}
			delete(pending, e.next)
			e.next++
			if err := e.write(&r); err != nil {
				return e.sum, err
			}
		}
	}
	// Results whose predecessors never came (the sender was cancelled) are
	// still written, in order.
	for _, seq := range sortedSeqs(pending) {
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
	next int64
	sum  Summary
	buf  *bytes.Buffer // holds one encoded result
	enc  *json.Encoder // writes to buf
}

// keepBuffer is the most buffer space kept between results; a larger
// result's buffer is released once written.
const keepBuffer = 1 << 20

func (e *encoder) reset() {
	e.buf = new(bytes.Buffer)
	e.enc = json.NewEncoder(e.buf)
	e.enc.SetEscapeHTML(false)
}

func (e *encoder) write(r *dispatch.Result) error {
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
	e.buf.Reset()
	w := wireOf(r, e.opts.Binary)
	if e.opts.Events {
		w.Event = "finished"
	}
	if err := e.enc.Encode(w); err != nil {
		return err
	}
	line := e.buf.Bytes()
	if !e.opts.NDJSON {
		line = bytes.TrimSuffix(line, []byte{'\n'})
	}
	if _, err := e.w.Write(line); err != nil {
		return err
	}
	if e.buf.Cap() > keepBuffer {
		e.reset()
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

// wire is a result as the user sees it.
type wire struct {
	Identifier string          `json:"identifier"`
	ExitCode   int             `json:"exit_code"`
	ResultBody string          `json:"result_body"`
	Stderr     *string         `json:"stderr,omitempty"`
	Seq        int64           `json:"seq"`
	DurationMS *float64        `json:"duration_ms,omitempty"`
	Error      string          `json:"error,omitempty"`
	Signal     string          `json:"signal,omitempty"`
	TimedOut   bool            `json:"timed_out,omitempty"`
	Attempts   int             `json:"attempts,omitempty"`
	Truncated  bool            `json:"truncated,omitempty"`
	Encoding   string          `json:"encoding,omitempty"`
	Meta       json.RawMessage `json:"meta,omitempty"`
	Event      string          `json:"event,omitempty"`
}

// Marshal returns the JSON form of one result. In text form, bytes that are
// not valid UTF-8 become U+FFFD; in binary form result_body and stderr are
// base64 and no byte is lost.
func Marshal(r *dispatch.Result, binary bool) ([]byte, error) {
	return json.MarshalNoEscape(wireOf(r, binary))
}

func wireOf(r *dispatch.Result, binary bool) *wire {
	text := func(b []byte) string { return string(b) }
	if binary {
		text = base64.StdEncoding.EncodeToString
	}
	w := wire{
		Identifier: r.Identifier,
		ExitCode:   r.ExitCode,
		ResultBody: text(r.Stdout),
		Seq:        r.Seq,
		Signal:     r.Signal,
		TimedOut:   r.TimedOut,
		Truncated:  r.Truncated,
		Meta:       r.Meta,
	}
	if r.StderrCaptured && r.Started {
		s := text(r.Stderr)
		w.Stderr = &s
	}
	if r.Started {
		ms := math.Round(float64(r.Duration.Nanoseconds())/1e3) / 1e3
		w.DurationMS = &ms
	}
	if r.Err != nil {
		w.Error = r.Err.Error()
	}
	if r.Attempts > 1 {
		w.Attempts = r.Attempts
	}
	if binary {
		w.Encoding = "base64"
	}
	return &w
}

func sortedSeqs(m map[int64]dispatch.Result) []int64 {
	seqs := make([]int64, 0, len(m))
	for s := range m {
		seqs = append(seqs, s)
	}
	slices.Sort(seqs)
	return seqs
}
