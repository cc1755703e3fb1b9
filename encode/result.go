package encode

import (
	"bytes"
	"encoding/base64"
	"io"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	json "github.com/goccy/go-json"

	"github.com/workerpool/workerpool/job"
)

// tail holds the fields of a result that follow its outputs.
type tail struct {
	Seq        int64           `json:"seq"`
	DurationMS *float64        `json:"duration_ms,omitempty"`
	StartedAt  string          `json:"started_at,omitempty"`
	EndedAt    string          `json:"ended_at,omitempty"`
	UserMS     *float64        `json:"user_ms,omitempty"`
	SysMS      *float64        `json:"sys_ms,omitempty"`
	MaxRSSKB   *int64          `json:"max_rss_kb,omitempty"`
	Limit      string          `json:"limit,omitempty"`
	Error      string          `json:"error,omitempty"`
	Signal     string          `json:"signal,omitempty"`
	TimedOut   bool            `json:"timed_out,omitempty"`
	Attempts   int             `json:"attempts,omitempty"`
	Truncated  bool            `json:"truncated,omitempty"`
	Host       string          `json:"host,omitempty"`
	Encoding   string          `json:"encoding,omitempty"`
	Meta       json.RawMessage `json:"meta,omitempty"`
	Event      string          `json:"event,omitempty"`
}

// writeResult writes r as one JSON object:
//
//	{"identifier":..,"exit_code":..,"result_body":..,"stderr":..,"seq":..,...}
//
// The outputs are streamed from memory or their spill files, a chunk at a
// time, so a result of any size is written without another copy of it. In
// text form bytes that are not valid UTF-8 become U+FFFD; in binary form the
// outputs are base64 and no byte is lost. Invalid bytes in the identifier,
// the error and meta become U+FFFD in either form, so what is written is
// always valid UTF-8.
func (e *Encoder) writeResult(r *job.Result) error {
	if err := e.writeRaw(`{"identifier":`); err != nil {
		return err
	}
	if err := e.writeString(r.Identifier); err != nil {
		return err
	}
	if err := e.writeRaw(`,"exit_code":` + strconv.Itoa(r.ExitCode) + `,"result_body":`); err != nil {
		return err
	}
	if err := e.writeOutput(r.Stdout); err != nil {
		return err
	}
	if !e.opts.OmitStderr && r.Started {
		if err := e.writeRaw(`,"stderr":`); err != nil {
			return err
		}
		if err := e.writeOutput(r.Stderr); err != nil {
			return err
		}
	}
	t := tail{Seq: r.Seq, Signal: r.Signal, TimedOut: r.TimedOut, Truncated: r.Truncated, Host: r.Host, Meta: validMeta(r.Meta)}
	if r.Started {
		t.DurationMS = millis(r.Duration)
		if !r.StartedAt.IsZero() {
			t.StartedAt, t.EndedAt = timestamp(r.StartedAt), timestamp(r.StartedAt.Add(r.Duration))
		}
	}
	if u := r.Usage; u != nil {
		t.UserMS, t.SysMS, t.MaxRSSKB = millis(u.User), millis(u.System), &u.MaxRSS
	}
	t.Limit = r.Limit
	if r.Err != nil {
		t.Error = r.Err.Error()
	}
	if r.Attempts > 1 {
		t.Attempts = r.Attempts
	}
	if e.opts.Binary {
		t.Encoding = "base64"
	}
	if e.opts.Events {
		t.Event = "finished"
	}
	e.buf.Reset()
	if err := e.enc.Encode(&t); err != nil {
		return err
	}
	// ,"seq":...} : the tail object without its opening brace or newline.
	if err := e.w.WriteByte(','); err != nil {
		return err
	}
	_, err := e.w.Write(bytes.TrimSuffix(e.buf.Bytes()[1:], []byte{'\n'}))
	return err
}

// millis is d in milliseconds, to the microsecond.
func millis(d time.Duration) *float64 {
	ms := math.Round(float64(d.Nanoseconds())/1e3) / 1e3
	return &ms
}

// timestampLayout is RFC 3339 with milliseconds, always three digits of
// them.
const timestampLayout = "2006-01-02T15:04:05.000Z07:00"

// timestamp is t in UTC, to the millisecond (cut, not rounded), as in
// "2026-12-04T23:55:01.123Z".
func timestamp(t time.Time) string { return t.UTC().Format(timestampLayout) }

func (e *Encoder) writeRaw(s string) error {
	_, err := e.w.WriteString(s)
	return err
}

// writeValue writes one small value as JSON.
func (e *Encoder) writeValue(v any) error {
	e.buf.Reset()
	if err := e.enc.Encode(v); err != nil {
		return err
	}
	_, err := e.w.Write(bytes.TrimSuffix(e.buf.Bytes(), []byte{'\n'}))
	return err
}

// textChunk is how much output is escaped at a time.
const textChunk = 64 << 10

// writeOutput writes a captured stream as one JSON string.
func (e *Encoder) writeOutput(o job.Output) error {
	if err := e.w.WriteByte('"'); err != nil {
		return err
	}
	var err error
	if e.opts.Binary {
		b64 := base64.NewEncoder(base64.StdEncoding, e.w)
		if _, err = io.Copy(b64, o.Reader()); err == nil {
			err = b64.Close()
		}
	} else {
		err = e.writeText(o.Reader())
	}
	if err != nil {
		return err
	}
	return e.w.WriteByte('"')
}

// writeText escapes r into the body of a JSON string, a chunk at a time.
// A chunk never ends inside a UTF-8 sequence that the next bytes could
// complete, so the result is the same as escaping the whole text at once.
func (e *Encoder) writeText(r io.Reader) error {
	if e.text == nil {
		e.text = make([]byte, textChunk+utf8.UTFMax)
	}
	carry := 0
	for {
		n, rerr := io.ReadFull(r, e.text[carry:textChunk])
		end := carry + n
		cut := end
		if rerr == nil {
			cut = completeRunes(e.text[:end])
		}
		if cut > 0 {
			if err := e.writeEscaped(e.text[:cut]); err != nil {
				return err
			}
		}
		carry = copy(e.text, e.text[cut:end])
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// completeRunes returns the length of b without a trailing partial UTF-8
// sequence that more bytes could complete.
func completeRunes(b []byte) int {
	for back := 1; back <= utf8.UTFMax-1 && back <= len(b); back++ {
		c := b[len(b)-back]
		if c < utf8.RuneSelf {
			return len(b) // ASCII: nothing pending
		}
		if utf8.RuneStart(c) {
			if utf8.FullRune(b[len(b)-back:]) {
				return len(b)
			}
			return len(b) - back
		}
	}
	return len(b)
}

// writeEscaped writes text escaped as in a JSON string, without the quotes.
func (e *Encoder) writeEscaped(text []byte) error {
	e.buf.Reset()
	if err := e.enc.Encode(string(text)); err != nil {
		return err
	}
	quoted := bytes.TrimSuffix(e.buf.Bytes(), []byte{'\n'})
	_, err := e.w.Write(quoted[1 : len(quoted)-1])
	return err
}
