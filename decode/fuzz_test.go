package decode

import (
	"bytes"
	"context"
	stdjson "encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/workerpool/workerpool/job"
)

// FuzzDecode checks, for any input, that decoding never panics, ends, and
// yields exactly one Task per task in the input, numbered 1..n, once a
// leading byte-order mark is skipped:
//   - NDJSON (first non-blank byte '{'): one Task per non-blank line, with
//     Where naming that line, and no error from Err;
//   - a JSON array: when the whole input is a valid JSON array (by
//     encoding/json), one Task per element and no error; when Err is nil,
//     the input must have been a valid JSON array (nothing was dropped);
//   - anything else: no task, and a *FramingError unless the input is blank;
//   - in template mode: one Task per non-blank line, none with an error
//     but for a line holding a NUL byte, which no program can be given;
//     and with Null, one Task per non-empty NUL-separated item, none with
//     an error.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		``,
		"\n \r\n\t",
		`[]`,
		`[{"command":"a"},{"command":"b","args":["x",1]}]`,
		"[\n  {\"identifier\": 7, \"command\": \"php\", \"args\": [\"w.php\"], \"env\": {\"K\": \"V\"},\n   \"dir\": \"/tmp\", \"stdin\": \"in\", \"timeout\": \"1.5s\", \"meta\": {\"m\": [1, 2]}}\n]\n",
		`[{"command":"a"}, 1, "x", null, [], {"arg":[]}, {"command":"b","timeout":2}]`,
		`[{"command":"a"},{"command": oops}]`,
		`[{"command":"a"},`,
		`[{"command":"a"}] [{"command":"b"}]`,
		"{\"command\":\"a\"}\n{\"command\":\"b\"}\n",
		"\n\n{\"command\":\"a\",\"timeout\":\"2\"}\r\n\r\n{\"identifier\":\"x\",\"command\":\"b\",\"stdin\":\"\"}",
		"{\"command\":\"a\"}\nnot json\n[1,2]\n{\"command\":\"a\",\"arg\":[\"x\"]}\n{\"command\":1e999}\n",
		"{\"command\":\"a\",\"args\":[\"\\u00e9\\ud800\"],\"timeout\":99999999999}\n",
		"{\"command\":\"a\"",
		"hello world\n",
		"\xef\xbb\xbf[]",
		"\xef\xbb\xbf\xef\xbb\xbf{\"command\":\"a\"}",
		"\xef\xbb\xbf\n{\"command\":\"a\",\"command\":\"b\",\"env\":{\"=\":\"\",\"K\":\"\\u0000\"}}\n",
		"\xff\xfe[\x00",
		"{\"command\":\"a\",\"comm\\u0061nd\":\"b\",\"timeout\":1e-12,\"meta\":{\"x\":[\"}\\\"\",{}]}}",
		"\x00\xff{",
		`"just a string"`,
		"12 34",
	} {
		f.Add([]byte(seed), false)
	}
	for _, seed := range []string{"a.jpg\nb.jpg\n", "\n\n{}\r\n{#}\n  \n", "[1,2]\n{\"command\":\"x\"}", "", "\xef\xbb\xbfa\nb\x00c\n"} {
		f.Add([]byte(seed), true)
	}

	f.Fuzz(func(t *testing.T, input []byte, template bool) {
		var opts Options
		if template {
			opts.Template = []string{"echo", "{#}", "{}", "{/}:{//}:{.}:{/.}"}
		}
		tasks, err := fuzzDecode(t, input, opts)
		input = bytes.TrimPrefix(input, []byte("\xef\xbb\xbf"))
		for i, task := range tasks {
			if task.Seq != int64(i+1) {
				t.Fatalf("task %d has Seq %d", i+1, task.Seq)
			}
			if task.Err == nil && task.Command == "" && !template {
				t.Fatalf("task %d has neither a command nor an error", task.Seq)
			}
			if task.Err == nil && task.Timeout < 0 {
				t.Fatalf("task %d has a negative timeout %v", task.Seq, task.Timeout)
			}
			if task.Err != nil && !bytes.HasPrefix([]byte(task.Err.Error()), []byte("task ")) {
				t.Fatalf("task %d: error %q does not name the task", task.Seq, task.Err)
			}
		}

		first := firstNonBlank(input)
		switch {
		case template:
			checkLines(t, input, tasks, err)
			for _, task := range tasks {
				if task.Err != nil && !strings.Contains(task.Identifier, "\x00") {
					t.Fatalf("template task %d has an error: %v", task.Seq, task.Err)
				}
			}
			opts.Null = true
			items, err := fuzzDecode(t, append([]byte(bom), input...), opts)
			checkItems(t, input, items, err)
		case first < 0:
			if len(tasks) != 0 || err != nil {
				t.Fatalf("blank input: %d tasks, err %v", len(tasks), err)
			}
		case input[first] == '{':
			checkLines(t, input, tasks, err)
		case input[first] == '[':
			checkArray(t, input, tasks, err)
		default:
			var framing *FramingError
			if len(tasks) != 0 || !errors.As(err, &framing) {
				t.Fatalf("input starting with %q: %d tasks, err %v", input[first], len(tasks), err)
			}
		}
	})
}

// fuzzDecode decodes input, failing if the decoder does not end in time.
func fuzzDecode(t *testing.T, input []byte, opts Options) ([]job.Task, error) {
	dec := New(bytes.NewReader(input), opts)
	out := dec.Stream(context.Background())
	var tasks []job.Task
	deadline := time.After(10 * time.Second)
	for {
		select {
		case task, ok := <-out:
			if !ok {
				if dec.Count() != int64(len(tasks)) {
					t.Fatalf("Count is %d, %d tasks sent", dec.Count(), len(tasks))
				}
				return tasks, dec.Err()
			}
			tasks = append(tasks, task)
		case <-deadline:
			t.Fatalf("decoding did not end: %d tasks so far", len(tasks))
		}
	}
}

func firstNonBlank(input []byte) int {
	for i, b := range input {
		if b != ' ' && b != '\t' && b != '\n' && b != '\r' {
			return i
		}
	}
	return -1
}

// checkLines checks one task per non-blank line, each naming its line.
func checkLines(t *testing.T, input []byte, tasks []job.Task, err error) {
	if err != nil {
		t.Fatalf("reading lines from memory failed: %v", err)
	}
	var want []string
	for i, line := range bytes.Split(input, []byte("\n")) {
		if len(bytes.TrimSpace(line)) > 0 {
			want = append(want, "line "+strconv.Itoa(i+1))
		}
	}
	if len(tasks) != len(want) {
		t.Fatalf("%d non-blank lines, %d tasks", len(want), len(tasks))
	}
	for i, task := range tasks {
		if task.Where != want[i] {
			t.Fatalf("task %d: Where is %q, want %q", task.Seq, task.Where, want[i])
		}
	}
}

// checkItems checks one task per non-empty NUL-separated item, each naming
// its item, and none with an error.
func checkItems(t *testing.T, input []byte, tasks []job.Task, err error) {
	if err != nil {
		t.Fatalf("reading items from memory failed: %v", err)
	}
	var want []string
	for i, item := range bytes.Split(input, []byte{0}) {
		if len(item) > 0 {
			want = append(want, "item "+strconv.Itoa(i+1))
		}
	}
	if len(tasks) != len(want) {
		t.Fatalf("%d non-empty items, %d tasks", len(want), len(tasks))
	}
	for i, task := range tasks {
		if task.Where != want[i] || task.Err != nil {
			t.Fatalf("task %d: Where is %q, want %q; error %v", task.Seq, task.Where, want[i], task.Err)
		}
	}
}

// checkArray checks one task per element of a valid array, and that an
// input read without error was a valid array.
func checkArray(t *testing.T, input []byte, tasks []job.Task, err error) {
	var elements []stdjson.RawMessage
	refErr := stdjson.Unmarshal(input, &elements)
	var framing *FramingError
	if err != nil && !errors.As(err, &framing) {
		t.Fatalf("reading an array from memory failed, not as a framing error: %v", err)
	}
	switch {
	case refErr == nil && err != nil:
		t.Fatalf("valid array of %d elements rejected after %d tasks: %v", len(elements), len(tasks), err)
	case refErr != nil && err == nil:
		t.Fatalf("invalid array (%v) read without error, as %d tasks", refErr, len(tasks))
	case refErr == nil && len(tasks) != len(elements):
		t.Fatalf("array of %d elements, %d tasks", len(elements), len(tasks))
	}
	for i, task := range tasks {
		if want := "element " + strconv.Itoa(i+1); task.Where != want {
			t.Fatalf("task %d: Where is %q, want %q", task.Seq, task.Where, want)
		}
	}
}

// FuzzMembers checks members against encoding/json: for any valid JSON
// object it yields every key, in order, with the value as written; for any
// other valid JSON it reports that it is not an object.
func FuzzMembers(f *testing.F) {
	for _, seed := range []string{
		`{}`, ` { } `, `[]`, `"{}"`, `null`, `1`,
		`{"command": "a", "args": ["x", {"y": "}]"}], "n": -1.5e3, "t": true, "z": null}`,
		"{\"k\\u0061\": 1, \"k\xff\": \"v\xff\", \"\\\"\": [[], {}], \"e\": \"\\\\\"}",
		`{"a":1,"a":2}`,
		"{\"\\ud800\\udc00\\ud800\": 1, \"\xed\xa0\x80\xc3\": 2}",
		"{\n\t\"a\" :\r\n[ 1 , 2 ] ,\"b\":{\"c\":{\"d\":[]}}}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !stdjson.Valid(data) {
			return
		}
		got, ok := members(data, nil)
		var v any
		_ = stdjson.Unmarshal(data, &v)
		if _, isObject := v.(map[string]any); ok != isObject {
			t.Fatalf("members of %q: ok %v, object %v", data, ok, isObject)
		}
		if !ok {
			return
		}
		// Each value, and the key as encoding/json reads it, member by member.
		dec := stdjson.NewDecoder(bytes.NewReader(data))
		if _, err := dec.Token(); err != nil {
			t.Fatal(err)
		}
		for i := 0; dec.More(); i++ {
			key, err := dec.Token()
			if err != nil {
				t.Fatal(err)
			}
			var raw stdjson.RawMessage
			if err := dec.Decode(&raw); err != nil {
				t.Fatal(err)
			}
			if i >= len(got) {
				t.Fatalf("members of %q: %d found, more there", data, len(got))
			}
			if got[i].key != key.(string) {
				t.Fatalf("member %d of %q: key %q, want %q", i+1, data, got[i].key, key)
			}
			if !bytes.Equal(got[i].raw, raw) {
				t.Fatalf("member %d of %q: value %q, want %q", i+1, data, got[i].raw, raw)
			}
		}
	})
}
