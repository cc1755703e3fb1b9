// Package encode writes results in one of the output modes: the classic
// JSON array on one line (Array), one JSON line per result (NDJSON), or each
// task's stdout as it is (Raw). Each result is flushed as soon as it is
// written. It writes results in the order it is given them; restoring input
// order is its caller's concern. It also reads an NDJSON output back, as the
// journal a resumed run skips the tasks of (see ReadJournal).
package encode

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	json "github.com/goccy/go-json"

	"github.com/workerpool/workerpool/job"
)

// Mode is a form of the output. The run asks it what it needs to know
// about the form, and an Encoder lays out each result as the mode says;
// neither asks which mode it is. A new mode is one type in this package
// that implements Mode, and a flag that chooses it.
type Mode interface {
	// String names the mode as the flag that chooses it does: "array"
	// (the default, which has no flag), "ndjson" or "raw".
	fmt.Stringer
	// Traits says what the run and the command line need to know about
	// the mode: its order, how its output file is written, and whether
	// it is JSON.
	Traits() Traits

	// result writes r to e.w as this mode lays out one result.
	result(e *Encoder, r *job.Result) error
	// end writes what follows the last result, if anything.
	end(e *Encoder) error
}

// Traits are what a mode says about itself. Each is false unless the mode
// sets it, so that a trait added later changes no mode that lacks it.
type Traits struct {
	// InOrder: results are always written in input order, as in the
	// array. Otherwise they are written in the order they are ready,
	// unless the caller restores input order.
	InOrder bool
	// Appends: an output file is appended to, a result at a time, so that
	// a run that stops leaves every result it finished, and a later run
	// adds to them. Otherwise the file is replaced whole once the output
	// is complete, so that no reader ever sees part of it.
	Appends bool
	// JSON: results are written as JSON, so that the options of that form
	// apply: Binary, Events, and reading the output back as a journal.
	JSON bool
	// Stderr: the mode writes to Options.RawStderr too, the run's stderr:
	// the tasks' stderr, and why a task failed.
	Stderr bool
}

// Options configure an Encoder.
type Options struct {
	// Mode is the form of the output; nil means Array.
	Mode Mode
	// Binary sends result_body and stderr base64-encoded. JSON modes only.
	Binary bool
	// Events marks results with "event":"finished", to go with the event
	// lines written by Event. NDJSON only.
	Events bool
	// OmitStderr leaves out the "stderr" field, for children whose stderr
	// was inherited or discarded rather than captured.
	OmitStderr bool
	// RawStderr receives each task's captured stderr, whole, and a line
	// that says why a task failed, in a mode that does not write them in
	// the result (Raw); nil drops them.
	RawStderr io.Writer
}

// Encoder writes results, and events, to one writer in one mode. It is not
// safe for concurrent use: one goroutine owns it, as the only writer of w.
type Encoder struct {
	w       *bufio.Writer
	mode    Mode
	opts    Options
	results int64         // how many results were written
	buf     *bytes.Buffer // holds small encoded values
	enc     *json.Encoder // writes to buf
	text    []byte        // a chunk of output being escaped
}

// NewEncoder returns an Encoder that writes to w.
func NewEncoder(w io.Writer, opts Options) *Encoder {
	buf := new(bytes.Buffer)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	mode := opts.Mode
	if mode == nil {
		mode = Array{}
	}
	return &Encoder{w: bufio.NewWriterSize(w, 64<<10), mode: mode, opts: opts, buf: buf, enc: enc}
}

// Result writes r, flushes it, and closes r's outputs, whether or not the
// write succeeds.
func (e *Encoder) Result(r *job.Result) error {
	defer r.Close()
	if err := e.mode.result(e, r); err != nil {
		return err
	}
	e.results++
	return e.w.Flush()
}

// Close ends the output as the mode says (the array is closed, "[]" when
// there were no results, and its line ended) and flushes it. It does not
// close the writer.
func (e *Encoder) Close() error {
	if err := e.mode.end(e); err != nil {
		return err
	}
	return e.w.Flush()
}

// event is a lifecycle notice as the user sees it.
type event struct {
	Event      job.EventKind   `json:"event"`
	Identifier string          `json:"identifier"`
	Seq        int64           `json:"seq"`
	Attempt    int             `json:"attempt"`
	ExitCode   *int            `json:"exit_code,omitempty"`
	Error      string          `json:"error,omitempty"`
	Host       string          `json:"host,omitempty"`
	Resource   string          `json:"resource,omitempty"` // what a waiting task waits for
	Meta       json.RawMessage `json:"meta,omitempty"`
}

// Event writes ev as a line of its own and flushes it: a task's start;
// its retry with the outcome of the attempt that failed; its wait at a
// gate, or its requeueing, with the resource. NDJSON only. Like
// a result, the line is valid UTF-8: invalid bytes become U+FFFD.
func (e *Encoder) Event(ev job.Event) error {
	t := ev.Task
	line := event{Event: ev.Kind, Identifier: t.Identifier, Seq: t.Seq, Attempt: ev.Attempt, Host: ev.Host, Resource: ev.Resource, Meta: validMeta(t.Meta)}
	if r := ev.Result; r != nil {
		line.ExitCode = &r.ExitCode
		if r.Err != nil {
			line.Error = r.Err.Error()
		}
	}
	e.buf.Reset()
	if err := e.enc.Encode(&line); err != nil {
		return err
	}
	if _, err := e.w.Write(e.buf.Bytes()); err != nil {
		return err
	}
	return e.w.Flush()
}
