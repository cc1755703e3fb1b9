// Package encode writes results as JSON: one array on one line (the
// classic form), or one line per result (NDJSON), each line flushed as soon
// as it is written. It writes them in the order it is given them; restoring
// input order is its caller's concern.
package encode

import (
	"bufio"
	"bytes"
	"io"

	json "github.com/goccy/go-json"

	"github.com/workerpool/workerpool/job"
)

// Options configure an Encoder.
type Options struct {
	// NDJSON writes one result per line, each flushed as it is written;
	// otherwise the results form one JSON array on one line.
	NDJSON bool
	// Binary sends result_body and stderr base64-encoded.
	Binary bool
	// Events marks results with "event":"finished", to go with the event
	// lines written by Event. NDJSON only.
	Events bool
	// OmitStderr leaves out the "stderr" field, for children whose stderr
	// was inherited or discarded rather than captured.
	OmitStderr bool
	// Raw writes no JSON: each result is the task's stdout as it is, and
	// its captured stderr goes to RawStderr (when set), each whole. Tag
	// starts every line of them with the task's identifier and a tab.
	Raw       bool
	Tag       bool
	RawStderr io.Writer
}

// Encoder writes results, and events, as JSON to one writer. It is not safe
// for concurrent use: one goroutine owns it, as the only writer of w.
type Encoder struct {
	w       *bufio.Writer
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
	return &Encoder{w: bufio.NewWriterSize(w, 64<<10), opts: opts, buf: buf, enc: enc}
}

// Result writes r, flushes it, and closes r's outputs, whether or not the
// write succeeds.
func (e *Encoder) Result(r *job.Result) error {
	defer r.Close()
	if e.opts.Raw {
		if err := e.writeRawResult(r); err != nil {
			return err
		}
		e.results++
		return e.w.Flush()
	}
	sep := byte(',')
	if e.results == 0 {
		sep = '['
	}
	if !e.opts.NDJSON {
		if err := e.w.WriteByte(sep); err != nil {
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
	e.results++
	return e.w.Flush()
}

// Close ends the output: in array form it closes the array ("[]" when
// there were no results) and ends the line. It does not close the writer.
func (e *Encoder) Close() error {
	if !e.opts.NDJSON && !e.opts.Raw {
		end := "]\n"
		if e.results == 0 {
			end = "[]\n"
		}
		if _, err := e.w.WriteString(end); err != nil {
			return err
		}
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
	Meta       json.RawMessage `json:"meta,omitempty"`
}

// Event writes ev as a line of its own and flushes it: a task's start, or
// its retry with the outcome of the attempt that failed. NDJSON only. Like
// a result, the line is valid UTF-8: invalid bytes become U+FFFD.
func (e *Encoder) Event(ev job.Event) error {
	t := ev.Task
	line := event{Event: ev.Kind, Identifier: t.Identifier, Seq: t.Seq, Attempt: ev.Attempt, Host: ev.Host, Meta: validMeta(t.Meta)}
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
