package encode

import (
	"bytes"
	"encoding/base64"
	stdjson "encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	json "github.com/goccy/go-json"

	"github.com/workerpool/workerpool/job"
)

// FuzzEncode checks, for any identifier, outputs, meta (any JSON the
// decoder accepts) and error text, that every byte the encoder writes is
// valid UTF-8 and every line valid JSON (by encoding/json), in each form:
// a result alone, the array and NDJSON forms, event lines and dry-run plan
// lines. It also checks that nothing but invalid bytes is changed: each
// string decodes to its input with every invalid byte as U+FFFD (as
// encoding/json decodes it), meta decodes to the same value as its input,
// and in binary form the outputs decode to their exact bytes. And it checks
// that the identifier is written byte for byte as the JSON encoder writes
// any string, and reads back in the form the journal looks it up in; and
// that the line Raw writes when a task fails is one line of valid UTF-8.
func FuzzEncode(f *testing.F) {
	for _, seed := range []struct {
		id, stdout, stderr, meta, err string
		binary                        bool
	}{
		{"job 1", "out\n", "", `{"anything": "copied verbatim"}`, "", false},
		{"", "", "", "", "", false},
		{"id\xff", "a\xffb\x00", "\xe2\x82", "{\"k\xff\": [\"a\xffb\", \"\xc3\"]}", "boom \xfe", false},
		{"\xed\xa0\x80", "\xf4\x90\x80\x80\xc0\x80", "é€😀\u2028", "\"\xef\xbf\xbd\xed\xa0\x80\"", "\xff", true},
		{"<&>", "\\\"\t\r", "\x7f", `[1, 2.50, -3e2, null, true, {"a": {"b": []}}]`, "err \"quoted\"", false},
		{"x", strings.Repeat("\xff€", 40), "", "\"\\u00e9\\ud800\xff\"", "", false},
		{"x", "", "", "not json", "", true},
	} {
		f.Add(seed.id, []byte(seed.stdout), []byte(seed.stderr), []byte(seed.meta), seed.err, seed.binary)
	}

	f.Fuzz(func(t *testing.T, id string, stdout, stderr, meta []byte, errText string, binary bool) {
		if !json.Valid(meta) {
			meta = nil // the decoder passes on only meta it read as JSON
		}
		r := job.Result{
			Seq: 7, Identifier: id, ExitCode: 1, Stdout: job.BytesOutput(stdout), Stderr: job.BytesOutput(stderr),
			Started: true, Meta: meta, Err: errors.New(errText),
		}
		task := job.Task{Seq: 7, Identifier: id, Command: id, Args: []string{errText}, Env: map[string]string{id: errText},
			Dir: errText, Stdin: string(stdout), HasStdin: true, Meta: meta}

		one, err := Marshal(&r, binary)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		checkLine(t, "result", one)
		checkResult(t, one, &r, binary)

		for _, form := range []struct {
			opts  Options
			lines int
		}{{Options{Binary: binary}, 1}, {Options{Mode: NDJSON{}, Binary: binary, Events: true}, 2}} {
			var out bytes.Buffer
			if _, err := Write(&out, send(r, r), form.opts); err != nil {
				t.Fatalf("Write: %v", err)
			}
			checkLines(t, out.Bytes(), form.lines)
		}
		checkIdentifier(t, id)
		if line := appendFailure(nil, id, errText); !utf8.Valid(line) || bytes.IndexByte(line, '\n') != len(line)-1 {
			t.Fatalf("the line of a raw failure is not one line of valid UTF-8: %q", line)
		}

		var out bytes.Buffer
		e := NewEncoder(&out, Options{Mode: NDJSON{}, Events: true})
		if err := e.Event(job.Event{Kind: job.Started, Task: &task, Attempt: 1}); err != nil {
			t.Fatalf("Event: %v", err)
		}
		if err := e.Event(job.Event{Kind: job.Retrying, Task: &task, Attempt: 1, Result: &r}); err != nil {
			t.Fatalf("Event: %v", err)
		}
		checkLines(t, out.Bytes(), 2)

		out.Reset()
		invalid := task
		invalid.Err = r.Err
		if _, err := WritePlan(&out, send(task, invalid), func(*job.Task) (string, error) { return errText, nil }, nil); err != nil {
			t.Fatalf("WritePlan: %v", err)
		}
		checkLines(t, out.Bytes(), 2)
	})
}

// checkIdentifier checks that the identifier is written as the JSON
// encoder writes any string, and that what a decoder reads back from it is
// validString's, the form the journal looks identifiers up in.
func checkIdentifier(t *testing.T, id string) {
	t.Helper()
	var got, want bytes.Buffer
	e := NewEncoder(&got, Options{})
	if err := e.writeString(id); err != nil || e.w.Flush() != nil {
		t.Fatalf("writeString: %v", err)
	}
	enc := json.NewEncoder(&want)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(id); err != nil {
		t.Fatalf("Encode: %v", err)
	}
	if w := bytes.TrimSuffix(want.Bytes(), []byte("\n")); !bytes.Equal(got.Bytes(), w) {
		t.Fatalf("identifier %q is written %s, want %s", id, got.Bytes(), w)
	}
	var back string
	if err := stdjson.Unmarshal(got.Bytes(), &back); err != nil || back != validString(id) {
		t.Fatalf("identifier %q reads back as %q, want validString's %q: %v", id, back, validString(id), err)
	}
}

// checkLines checks that out is valid UTF-8 and n lines of valid JSON.
func checkLines(t *testing.T, out []byte, n int) {
	t.Helper()
	lines := bytes.SplitAfter(out, []byte("\n"))
	if len(lines) != n+1 || len(lines[n]) != 0 {
		t.Fatalf("want %d lines, each ended, got %q", n, out)
	}
	for _, line := range lines[:n] {
		checkLine(t, "line", bytes.TrimSuffix(line, []byte("\n")))
	}
}

func checkLine(t *testing.T, what string, line []byte) {
	t.Helper()
	if !utf8.Valid(line) {
		t.Fatalf("%s is not valid UTF-8: %q", what, line)
	}
	if !stdjson.Valid(line) || bytes.ContainsRune(line, '\n') {
		t.Fatalf("%s is not one line of valid JSON: %q", what, line)
	}
}

// checkResult checks that the result written decodes to what r holds.
func checkResult(t *testing.T, got []byte, r *job.Result, binary bool) {
	t.Helper()
	var res struct {
		Identifier string             `json:"identifier"`
		Body       string             `json:"result_body"`
		Stderr     string             `json:"stderr"`
		Error      string             `json:"error"`
		Meta       stdjson.RawMessage `json:"meta"`
	}
	if err := stdjson.Unmarshal(got, &res); err != nil {
		t.Fatalf("result %q: %v", got, err)
	}
	for _, f := range []struct{ name, got, in string }{
		{"identifier", res.Identifier, r.Identifier},
		{"error", res.Error, r.Err.Error()},
	} {
		if want := replaced(f.in); f.got != want {
			t.Fatalf("%s is %q, want %q", f.name, f.got, want)
		}
	}
	for _, f := range []struct {
		name, got string
		in        []byte
	}{{"result_body", res.Body, r.Stdout.Head()}, {"stderr", res.Stderr, r.Stderr.Head()}} {
		if !binary {
			if want := replaced(string(f.in)); f.got != want {
				t.Fatalf("%s is %q, want %q", f.name, f.got, want)
			}
			continue
		}
		if b, err := base64.StdEncoding.DecodeString(f.got); err != nil || !bytes.Equal(b, f.in) {
			t.Fatalf("%s %q does not decode to %q: %v", f.name, f.got, f.in, err)
		}
	}
	if len(r.Meta) == 0 {
		if res.Meta != nil {
			t.Fatalf("meta %s written for no meta", res.Meta)
		}
		return
	}
	if want, got := jsonValue(t, r.Meta), jsonValue(t, res.Meta); !reflect.DeepEqual(want, got) {
		t.Fatalf("meta %q reads as %#v, want %#v from %q", res.Meta, got, want, r.Meta)
	}
}

// replaced is s with each invalid byte as U+FFFD, as encoding/json reads
// a string holding them.
func replaced(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r)
	}
	return b.String()
}

// jsonValue reads JSON as encoding/json does, numbers kept as text.
func jsonValue(t *testing.T, data []byte) any {
	t.Helper()
	dec := stdjson.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%q: %v", data, err)
	}
	return v
}
