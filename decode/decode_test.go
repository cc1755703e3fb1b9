package decode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/job"
)

// waitLimit bounds every wait of these tests: far above what a decoder on
// a busy 2-core machine needs (a 20 MB task under -race, beside the other
// packages' tests, has taken 12 s), so that only a hang trips it.
const waitLimit = 60 * time.Second

// decodeAll decodes r to the end and returns every task sent and Err.
func decodeAll(t testing.TB, r io.Reader, opts Options) ([]job.Task, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	dec := New(r, opts)
	var tasks []job.Task
	for task := range dec.Stream(ctx) {
		tasks = append(tasks, task)
	}
	require.NoError(t, ctx.Err(), "decoding did not finish in time")
	require.Equal(t, int64(len(tasks)), dec.Count(), "Count must match the tasks sent")
	return tasks, dec.Err()
}

func decodeString(t testing.TB, input string) ([]job.Task, error) {
	t.Helper()
	return decodeAll(t, strings.NewReader(input), Options{})
}

// requireSeq checks that tasks are numbered 1..n in the order sent.
func requireSeq(t testing.TB, tasks []job.Task) {
	t.Helper()
	for i, task := range tasks {
		require.Equal(t, int64(i+1), task.Seq, "task %d", i)
	}
}

func commands(tasks []job.Task) []string {
	out := make([]string, 0, len(tasks))
	for _, task := range tasks {
		out = append(out, task.Command)
	}
	return out
}

func TestFraming(t *testing.T) {
	tests := []struct {
		name     string
		input    string
		commands []string
		// framing, when set, is a substring of the *FramingError that Err
		// must return; otherwise Err must be nil.
		framing string
	}{
		{name: "empty input", input: "", commands: []string{}},
		{name: "blank input", input: " \n\r\n\t\n", commands: []string{}},
		{name: "JSON array", input: `[{"command":"a"},{"command":"b"}]`, commands: []string{"a", "b"}},
		{name: "empty JSON array", input: "[]\n", commands: []string{}},
		{name: "JSON array with spaces", input: "[ ]", commands: []string{}},
		{
			name:     "pretty-printed JSON array",
			input:    "[\n  {\n    \"command\": \"a\"\n  },\n  {\n    \"command\": \"b\"\n  }\n]\n",
			commands: []string{"a", "b"},
		},
		{name: "NDJSON", input: "{\"command\":\"a\"}\n{\"command\":\"b\"}\n", commands: []string{"a", "b"}},
		{name: "NDJSON without final newline", input: "{\"command\":\"a\"}\n{\"command\":\"b\"}", commands: []string{"a", "b"}},
		{name: "NDJSON with blank lines", input: "\n{\"command\":\"a\"}\n\n  \n\t\n{\"command\":\"b\"}\n\n", commands: []string{"a", "b"}},
		{name: "leading blank lines before array", input: "\n\n  \t\r\n[{\"command\":\"a\"}]", commands: []string{"a"}},
		{name: "leading blank lines before NDJSON", input: "\r\n \n  {\"command\":\"a\"}", commands: []string{"a"}},
		{name: "plain text", input: "echo hello\n", commands: []string{}, framing: `starts with 'e'`},
		{name: "JSON string", input: `"echo"`, commands: []string{}, framing: `starts with '"'`},
		{name: "JSON number", input: "  42\n", commands: []string{}, framing: `starts with '4'`},
		{name: "JSON null", input: "null", commands: []string{}, framing: "neither a JSON array nor NDJSON"},
		{
			name:     "array that breaks mid-way",
			input:    `[{"command":"a"},{"command":"b"},{"command": oops},{"command":"c"}]`,
			commands: []string{"a", "b"},
			framing:  "cannot be read after 2 tasks",
		},
		{
			name:     "array with a missing comma",
			input:    `[{"command":"a"} {"command":"b"}]`,
			commands: []string{"a"},
			framing:  "after 1 tasks",
		},
		{
			name:     "array that ends early",
			input:    `[{"command":"a"},{"command":"b"}`,
			commands: []string{"a", "b"},
			framing:  "ends early, after 2 tasks",
		},
		{name: "array that ends after a comma", input: `[{"command":"a"},`, commands: []string{"a"}, framing: "after 1 tasks"},
		{name: "array that ends inside an element", input: `[{"command":"a"},{"comm`, commands: []string{"a"}, framing: "ends early, after 1 tasks"},
		{name: "lone bracket", input: "[", commands: []string{}, framing: "ends early, after 0 tasks"},
		{name: "byte-order mark before array", input: "\xef\xbb\xbf[{\"command\":\"a\"}]", commands: []string{"a"}},
		{name: "byte-order mark before NDJSON", input: "\xef\xbb\xbf{\"command\":\"a\"}\n{\"command\":\"b\"}\n", commands: []string{"a", "b"}},
		{name: "byte-order mark before blank lines", input: "\xef\xbb\xbf\r\n \n[{\"command\":\"a\"}]", commands: []string{"a"}},
		{name: "byte-order mark alone", input: "\xef\xbb\xbf", commands: []string{}},
		{name: "byte-order mark before plain text", input: "\xef\xbb\xbfecho hello\n", commands: []string{}, framing: `starts with 'e'`},
		{name: "two byte-order marks", input: "\xef\xbb\xbf\xef\xbb\xbf[]", commands: []string{}, framing: "starts with byte 0xef"},
		{name: "invalid UTF-8", input: "\xff[]", commands: []string{}, framing: "it starts with byte 0xff"},
		{name: "control character", input: "\x00[]", commands: []string{}, framing: "it starts with byte 0x00"},
		{name: "letter beyond ASCII", input: "\u00e9cho", commands: []string{}, framing: "it starts with byte 0xc3"},
		{name: "UTF-16 little-endian", input: "\xff\xfe[\x00]\x00", commands: []string{}, framing: "UTF-16"},
		{name: "UTF-16 big-endian", input: "\xfe\xff\x00[\x00]", commands: []string{}, framing: "UTF-16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tasks, err := decodeString(t, tt.input)
			require.Equal(t, tt.commands, commands(tasks))
			requireSeq(t, tasks)
			for _, task := range tasks {
				require.NoError(t, task.Err)
			}
			if tt.framing == "" {
				require.NoError(t, err)
				return
			}
			var framing *FramingError
			require.ErrorAs(t, err, &framing)
			require.Contains(t, err.Error(), tt.framing)
		})
	}
}

// TestTrailingDataAfterArray: a second array, or a task, after the first
// array is input the user gave; it must not vanish without a word.
func TestTrailingDataAfterArray(t *testing.T) {
	tests := []struct{ name, input string }{
		{name: "second array", input: "[{\"command\":\"a\"}]\n[{\"command\":\"b\"}]\n"},
		{name: "NDJSON after array", input: "[{\"command\":\"a\"}]\n{\"command\":\"b\"}\n"},
		{name: "garbage after array", input: `[{"command":"a"}] oops`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tasks, err := decodeString(t, tt.input)
			require.Equal(t, []string{"a"}, commands(tasks))
			var framing *FramingError
			require.ErrorAs(t, err, &framing, "data after the array must not be ignored silently")
		})
	}
	t.Run("white space after array", func(t *testing.T) {
		tasks, err := decodeString(t, "[{\"command\":\"a\"}]\n\n \t\r\n")
		require.Equal(t, []string{"a"}, commands(tasks))
		require.NoError(t, err)
	})
}

// TestBadTaskIsReported: every task read yields exactly one Task; a bad one
// carries an error naming it and where it was read, and the good tasks
// around it are intact.
func TestBadTaskIsReported(t *testing.T) {
	tests := []struct {
		name string
		task string
		// ndjsonOnly marks a line that is not a JSON value, which only
		// NDJSON can carry as one task.
		ndjsonOnly bool
		want       []string
	}{
		{name: "invalid JSON", task: `{"command": "a",}`, ndjsonOnly: true, want: []string{"invalid JSON", "one task per line"}},
		{name: "truncated object", task: `{"command": "a"`, ndjsonOnly: true, want: []string{"invalid JSON"}},
		{name: "plain text", task: `echo hi`, ndjsonOnly: true, want: []string{"invalid JSON"}},
		{name: "array", task: `["a", "b"]`, want: []string{"must be a JSON object", `["a", "b"]`}},
		{name: "string", task: `"echo"`, want: []string{"must be a JSON object"}},
		{name: "number", task: `42`, want: []string{"must be a JSON object"}},
		{name: "null", task: `null`, want: []string{"must be a JSON object"}},
		{name: "bool", task: `true`, want: []string{"must be a JSON object"}},
		{name: "missing command", task: `{"args": ["x"]}`, want: []string{`"command" is required`}},
		{name: "empty object", task: `{}`, want: []string{`"command" is required`}},
		{name: "empty command", task: `{"command": ""}`, want: []string{`"command" is required`}},
		{name: "null command", task: `{"command": null}`, want: []string{`"command" is required`}},
		{name: "command a number", task: `{"command": 5}`, want: []string{`"command" must be a string`}},
		{name: "command an array", task: `{"command": ["echo", "hi"]}`, want: []string{`"command" must be a string`}},
		{name: "args a string", task: `{"command": "a", "args": "x y"}`, want: []string{`"args" must be an array of strings`}},
		{name: "args an object", task: `{"command": "a", "args": {"x": "y"}}`, want: []string{`"args" must be an array of strings`}},
		{name: "args holding an object", task: `{"command": "a", "args": ["x", {"y": 1}]}`, want: []string{`"args" must be an array of strings`, "element 2"}},
		{name: "args holding a bool", task: `{"command": "a", "args": [true]}`, want: []string{`"args" must be an array of strings`, "element 1"}},
		{name: "args holding null", task: `{"command": "a", "args": [null]}`, want: []string{`"args" must be an array of strings`}},
		{name: "env an array", task: `{"command": "a", "env": ["K=V"]}`, want: []string{`"env" must be an object of strings`}},
		{name: "env a string", task: `{"command": "a", "env": "K=V"}`, want: []string{`"env" must be an object of strings`}},
		{name: "env holding a bool", task: `{"command": "a", "env": {"K": false}}`, want: []string{`"env" must be an object of strings`, `"K"`}},
		{name: "dir a number", task: `{"command": "a", "dir": 1}`, want: []string{`"dir" must be a string`}},
		{name: "stdin an object", task: `{"command": "a", "stdin": {}}`, want: []string{`"stdin" must be a string`}},
		{name: "timeout a word", task: `{"command": "a", "timeout": "soon"}`, want: []string{`"timeout"`, `"soon"`}},
		{name: "timeout negative", task: `{"command": "a", "timeout": -1}`, want: []string{`"timeout"`}},
		{name: "timeout negative duration", task: `{"command": "a", "timeout": "-5s"}`, want: []string{`"timeout"`}},
		{name: "timeout a bool", task: `{"command": "a", "timeout": true}`, want: []string{`"timeout"`}},
		{name: "timeout an array", task: `{"command": "a", "timeout": [1]}`, want: []string{`"timeout"`}},
		{name: "identifier a bool", task: `{"identifier": true, "command": "a"}`, want: []string{`"identifier" must be a string or a number`}},
		{name: "identifier an object", task: `{"identifier": {}, "command": "a"}`, want: []string{`"identifier" must be a string or a number`}},
		{name: "unknown key", task: `{"command": "a", "arg": ["x"]}`, want: []string{`unknown field "arg"`, `"meta"`}},
		{name: "key in the wrong case", task: `{"Command": "a"}`, want: []string{`unknown field "Command"`}},
		{name: "env key with =", task: `{"command": "a", "env": {"OK": "1", "HOME=/tmp": "x"}}`, want: []string{`"env"`, `key "HOME=/tmp"`, `"="`}},
		{name: "env key only =", task: `{"command": "a", "env": {"=": "x"}}`, want: []string{`"env"`, `key "="`}},
		{name: "env key empty", task: `{"command": "a", "env": {"": "x"}}`, want: []string{`"env"`, `key ""`, "empty"}},
		{name: "env key given twice", task: `{"command": "a", "env": {"K": "1", "K": "2"}}`, want: []string{`"env"`, `key "K"`, "more than once"}},
		{name: "NUL in command", task: `{"command": "a\u0000b"}`, want: []string{`"command"`, "NUL byte"}},
		{name: "NUL in args", task: `{"command": "a", "args": ["x", "y\u0000"]}`, want: []string{`"args"`, "element 2", "NUL byte"}},
		{name: "NUL in env key", task: `{"command": "a", "env": {"K\u0000": "v"}}`, want: []string{`"env"`, `key "K\x00"`, "NUL byte"}},
		{name: "NUL in env value", task: `{"command": "a", "env": {"K": "\u0000v"}}`, want: []string{`"env"`, `"K"`, "NUL byte"}},
		{name: "NUL in dir", task: `{"command": "a", "dir": "/tmp\u0000"}`, want: []string{`"dir"`, "NUL byte"}},
		{name: "key given twice", task: `{"command": "a", "command": "b"}`, want: []string{`"command"`, "more than once"}},
		{name: "key given twice, once escaped", task: `{"command": "a", "comm\u0061nd": "b"}`, want: []string{`"command"`, "more than once"}},
		{name: "meta given twice", task: `{"command": "a", "meta": 1, "args": [], "meta": 2}`, want: []string{`"meta"`, "more than once"}},
		{name: "identifier given twice", task: `{"identifier": "x", "command": "a", "identifier": "y"}`, want: []string{`"identifier"`, "more than once"}},
		{name: "null given twice", task: `{"command": "a", "stdin": null, "stdin": "x"}`, want: []string{`"stdin"`, "more than once"}},
		{name: "unknown key given twice", task: `{"command": "a", "arg": 1, "arg": 2}`, want: []string{`"arg"`}},
	}
	for _, tt := range tests {
		for _, framing := range []string{"NDJSON", "array"} {
			if framing == "array" && tt.ndjsonOnly {
				continue
			}
			t.Run(framing+"/"+tt.name, func(t *testing.T) {
				good1 := `{"identifier": "first", "command": "one", "args": ["1"]}`
				good3 := `{"command": "three", "args": ["3"], "meta": {"m": 3}}`
				input, where := good1+"\n"+tt.task+"\n"+good3+"\n", "line 2"
				if framing == "array" {
					input, where = "["+good1+",\n"+tt.task+",\n"+good3+"]", "element 2"
				}
				tasks, err := decodeString(t, input)
				require.NoError(t, err)
				require.Len(t, tasks, 3)
				requireSeq(t, tasks)

				require.NoError(t, tasks[0].Err)
				require.Equal(t, "first", tasks[0].Identifier)
				require.Equal(t, "one", tasks[0].Command)
				require.Equal(t, []string{"1"}, tasks[0].Args)

				bad := tasks[1]
				require.Error(t, bad.Err)
				require.Equal(t, "2", bad.Identifier)
				require.True(t, strings.HasPrefix(bad.Err.Error(), `task "2" (`+where+`): `), "error %q must name the task and where it was read", bad.Err)
				for _, want := range tt.want {
					require.Contains(t, bad.Err.Error(), want)
				}

				require.NoError(t, tasks[2].Err)
				require.Equal(t, "3", tasks[2].Identifier)
				require.Equal(t, "three", tasks[2].Command)
				require.Equal(t, []string{"3"}, tasks[2].Args)
				require.JSONEq(t, `{"m": 3}`, string(tasks[2].Meta))
			})
		}
	}
}

// TestBadTaskNamesItsIdentifier: the error names the task by the identifier
// the user gave it, whatever the order of the keys.
func TestBadTaskNamesItsIdentifier(t *testing.T) {
	tests := []struct{ name, input, want string }{
		{
			name:  "identifier first",
			input: `{"command": "a"}` + "\n\n" + `{"identifier": "job 3", "command": "php", "arg": ["x"]}`,
			want:  `task "job 3" (line 3): unknown field "arg"`,
		},
		{
			name:  "identifier last",
			input: `{"arg": ["x"], "command": "php", "identifier": "job 3"}`,
			want:  `task "job 3" (line 1): unknown field "arg"`,
		},
		{
			name:  "number identifier",
			input: `{"identifier": 7, "command": 1}`,
			want:  `task "7" (line 1): "command" must be a string`,
		},
		{
			name:  "array element",
			input: `[{"command": "a"}, {"command": "b"}, {"identifier": "x", "args": []}]`,
			want:  `task "x" (element 3): "command" is required`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tasks, err := decodeString(t, tt.input)
			require.NoError(t, err)
			require.NotEmpty(t, tasks)
			last := tasks[len(tasks)-1].Err
			require.Error(t, last)
			require.True(t, strings.HasPrefix(last.Error(), tt.want), "error %q must start with %q", last, tt.want)
		})
	}
}

// TestSeqAndWhere: Seq counts tasks, 1-based and contiguous, while Where
// counts the input's lines (blank lines included) or the array's elements.
func TestSeqAndWhere(t *testing.T) {
	t.Run("NDJSON", func(t *testing.T) {
		input := `{"command": "a"}` + "\n\n   \n" + `{"command": "b"}` + "\r\n" + `not json` + "\n" + `{"command": "d"}`
		tasks, err := decodeString(t, input)
		require.NoError(t, err)
		require.Len(t, tasks, 4)
		requireSeq(t, tasks)
		var where, ids []string
		for _, task := range tasks {
			where, ids = append(where, task.Where), append(ids, task.Identifier)
		}
		require.Equal(t, []string{"line 1", "line 4", "line 5", "line 6"}, where)
		require.Equal(t, []string{"1", "2", "3", "4"}, ids)
		require.ErrorContains(t, tasks[2].Err, `task "3" (line 5): invalid JSON`)
	})
	t.Run("array", func(t *testing.T) {
		tasks, err := decodeString(t, `[{"command": "a"}, 1, {"command": "c", "identifier": "x"}, {"command": "d"}]`)
		require.NoError(t, err)
		require.Len(t, tasks, 4)
		requireSeq(t, tasks)
		var where, ids []string
		for _, task := range tasks {
			where, ids = append(where, task.Where), append(ids, task.Identifier)
		}
		require.Equal(t, []string{"element 1", "element 2", "element 3", "element 4"}, where)
		require.Equal(t, []string{"1", "2", "x", "4"}, ids)
	})
	t.Run("many tasks", func(t *testing.T) {
		var b strings.Builder
		const n = 5000
		for i := range n {
			if i%7 == 3 {
				b.WriteString("\n")
			}
			if i%11 == 5 {
				b.WriteString("{oops}\n")
				continue
			}
			fmt.Fprintf(&b, "{\"command\": \"c%d\"}\n", i)
		}
		tasks, err := decodeString(t, b.String())
		require.NoError(t, err)
		require.Len(t, tasks, n)
		requireSeq(t, tasks)
		for i, task := range tasks {
			require.Equal(t, strconv.Itoa(i+1), task.Identifier)
			require.Equal(t, i%11 == 5, task.Err != nil, "task %d: %v", i+1, task.Err)
		}
	})
}

// TestLineNumbersCountLeadingBlankLines: the blank lines before the first
// task are lines of the input too, so an error points at the line where
// the user's editor shows the task.
func TestLineNumbersCountLeadingBlankLines(t *testing.T) {
	tests := []struct{ name, input, where string }{
		{name: "one blank line", input: "\n" + `{"command": "a", "arg": ["x"]}`, where: "line 2"},
		{name: "several blank lines", input: "\n  \n\t\r\n\n" + `{"command": "a", "arg": ["x"]}`, where: "line 5"},
		{name: "spaces on the first line", input: "   " + `{"command": "a", "arg": ["x"]}`, where: "line 1"},
		{name: "byte-order mark", input: "\xef\xbb\xbf" + `{"command": "a", "arg": ["x"]}`, where: "line 1"},
		{name: "byte-order mark and blank lines", input: "\xef\xbb\xbf\n\n" + `{"command": "a", "arg": ["x"]}`, where: "line 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tasks, err := decodeString(t, tt.input)
			require.NoError(t, err)
			require.Len(t, tasks, 1)
			require.Equal(t, tt.where, tasks[0].Where)
			require.ErrorContains(t, tasks[0].Err, `task "1" (`+tt.where+`): unknown field "arg"`)
		})
	}
}

// TestLongLine: a task of 10 MB on one line is read whole, with no 64 KiB
// line limit, in both framings.
func TestLongLine(t *testing.T) {
	long := strings.Repeat("x", 10<<20)
	task := `{"command": "echo", "args": ["` + long + `"], "stdin": "` + long + `"}`
	for _, tt := range []struct{ name, input string }{
		{name: "NDJSON", input: `{"command": "before"}` + "\n" + task + "\n" + `{"command": "after"}` + "\n"},
		{name: "array", input: `[{"command": "before"},` + task + `,{"command": "after"}]`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tasks, err := decodeString(t, tt.input)
			require.NoError(t, err)
			require.Equal(t, []string{"before", "echo", "after"}, commands(tasks))
			require.NoError(t, tasks[1].Err)
			require.Len(t, tasks[1].Args, 1)
			require.True(t, tasks[1].Args[0] == long, "the long argument must come through whole")
			require.True(t, tasks[1].Stdin == long, "the long stdin must come through whole")
		})
	}
}

// TestTemplateItemTooLong: in template mode an item longer than MaxItem
// is read past, and its task carries an error instead of a command; the
// items around it are read as usual, and one of MaxItem bytes is taken
// whole.
func TestTemplateItemTooLong(t *testing.T) {
	long := strings.Repeat("x", MaxItem+1)
	most := strings.Repeat("y", MaxItem)
	for _, tt := range []struct {
		name string
		opts Options
		sep  string
		unit string
	}{
		{name: "lines", opts: Options{Template: []string{"echo", "{}"}}, sep: "\n", unit: "line"},
		{name: "NUL-separated", opts: Options{Template: []string{"echo", "{}"}, Null: true}, sep: "\x00", unit: "item"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The last item is too long and ends the input without a separator.
			input := strings.Join([]string{"before", long, most, "after", long}, tt.sep)
			tasks, err := decodeAll(t, strings.NewReader(input), tt.opts)
			require.NoError(t, err)
			requireSeq(t, tasks)
			require.Len(t, tasks, 5, "one task per item, the long ones included")
			for _, i := range []int{1, 4} {
				where := fmt.Sprintf("%s %d", tt.unit, i+1)
				require.Equal(t, where, tasks[i].Where)
				require.EqualError(t, tasks[i].Err, fmt.Sprintf(`task "%s..." (%s): the %s is longer than 1 MiB: items become arguments, which cannot be that long`,
					long[:40], where, tt.unit))
				require.Equal(t, long[:40]+"...", tasks[i].Identifier)
				require.Empty(t, tasks[i].Command)
				require.Empty(t, tasks[i].Args)
			}
			for i, item := range map[int]string{0: "before", 2: most, 3: "after"} {
				require.NoError(t, tasks[i].Err)
				require.Equal(t, []string{item}, tasks[i].Args, "task %d", i+1)
				require.True(t, tasks[i].Identifier == item, "task %d keeps its item as its identifier", i+1)
			}
		})
	}
	t.Run("carriage returns before the line end are not counted", func(t *testing.T) {
		input := most + strings.Repeat("\r", 100<<10) + "\nafter\n"
		tasks, err := decodeAll(t, strings.NewReader(input), Options{Template: []string{"echo"}})
		require.NoError(t, err)
		require.Len(t, tasks, 2)
		require.NoError(t, tasks[0].Err)
		require.True(t, tasks[0].Args[0] == most, "the line, without its carriage returns, is MaxItem bytes")
		require.Equal(t, []string{"after"}, tasks[1].Args)
	})
	t.Run("a line of white space that long is no blank line", func(t *testing.T) {
		tasks, err := decodeAll(t, strings.NewReader(strings.Repeat(" ", MaxItem+1)+"\n"), Options{Template: []string{"echo"}})
		require.NoError(t, err)
		require.Len(t, tasks, 1)
		require.ErrorContains(t, tasks[0].Err, "the line is longer than 1 MiB")
	})
}

// TestTemplateItemTooLongIsNotKept reads one item of 64 MiB and checks that
// the decoder did not hold it: what it allocates is bounded by MaxItem, not
// by the item.
func TestTemplateItemTooLongIsNotKept(t *testing.T) {
	const size = 64 << 20
	input := io.MultiReader(strings.NewReader("before\n"), &repeatReader{b: 'x', n: size}, strings.NewReader("\nafter\n"))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	tasks, err := decodeAll(t, input, Options{Template: []string{"echo"}})
	runtime.ReadMemStats(&after)
	require.NoError(t, err)
	require.Len(t, tasks, 3)
	require.NoError(t, tasks[0].Err)
	require.ErrorContains(t, tasks[1].Err, "the line is longer than 1 MiB")
	require.Equal(t, []string{"after"}, tasks[2].Args)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d KiB to read a line of %d MiB", allocated>>10, size>>20)
	require.Less(t, allocated, uint64(16<<20), "bytes allocated to read past a line of %d MiB", size>>20)
}

// repeatReader reads as n bytes b, without holding them.
type repeatReader struct {
	b byte
	n int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	p = p[:min(len(p), r.n)]
	for i := range p {
		p[i] = r.b
	}
	r.n -= len(p)
	return len(p), nil
}

func TestCRLF(t *testing.T) {
	t.Run("NDJSON", func(t *testing.T) {
		input := "{\"command\": \"a\", \"args\": [\"x\"]}\r\n\r\n{\"command\": \"b\"}\r\n"
		tasks, err := decodeString(t, input)
		require.NoError(t, err)
		require.Equal(t, []string{"a", "b"}, commands(tasks))
		require.Equal(t, []string{"x"}, tasks[0].Args)
		require.Equal(t, "line 3", tasks[1].Where)
		for _, task := range tasks {
			require.NoError(t, task.Err)
		}
	})
	t.Run("array", func(t *testing.T) {
		tasks, err := decodeString(t, "[\r\n{\"command\": \"a\"},\r\n{\"command\": \"b\"}\r\n]\r\n")
		require.NoError(t, err)
		require.Equal(t, []string{"a", "b"}, commands(tasks))
	})
	t.Run("template", func(t *testing.T) {
		tasks, err := decodeAll(t, strings.NewReader("one\r\ntwo\r\n\r\n"), Options{Template: []string{"echo"}})
		require.NoError(t, err)
		require.Len(t, tasks, 2)
		require.Equal(t, []string{"one"}, tasks[0].Args)
		require.Equal(t, "two", tasks[1].Identifier)
	})
}

func TestTemplate(t *testing.T) {
	type want struct {
		identifier, command string
		args                []string
	}
	tests := []struct {
		name     string
		template []string
		input    string
		want     []want
	}{
		{
			name:     "placeholder replaced",
			template: []string{"convert", "{}", "{}.png"},
			input:    "a.jpg\nb.jpg\n",
			want: []want{
				{"a.jpg", "convert", []string{"a.jpg", "a.jpg.png"}},
				{"b.jpg", "convert", []string{"b.jpg", "b.jpg.png"}},
			},
		},
		{
			name:     "number placeholder",
			template: []string{"echo", "{#}:{}"},
			input:    "a\nb\nc",
			want: []want{
				{"a", "echo", []string{"1:a"}},
				{"b", "echo", []string{"2:b"}},
				{"c", "echo", []string{"3:c"}},
			},
		},
		{
			name:     "line appended without placeholder",
			template: []string{"gzip", "-9"},
			input:    "x y.txt\n",
			want:     []want{{"x y.txt", "gzip", []string{"-9", "x y.txt"}}},
		},
		{
			name:     "any replacement string keeps the line from being appended, as in GNU parallel",
			template: []string{"echo", "{#}"},
			input:    "x\n",
			want:     []want{{"x", "echo", []string{"1"}}},
		},
		{
			name:     "command alone",
			template: []string{"rm"},
			input:    "f1\nf2\n",
			want: []want{
				{"f1", "rm", []string{"f1"}},
				{"f2", "rm", []string{"f2"}},
			},
		},
		{
			name:     "line as the command",
			template: []string{"{}", "--version"},
			input:    "php\n",
			want:     []want{{"php", "php", []string{"--version"}}},
		},
		{
			name:     "blank lines skipped and not numbered",
			template: []string{"echo", "{#}", "{}"},
			input:    "\n\na\n  \n\t\nb\n\n",
			want: []want{
				{"a", "echo", []string{"1", "a"}},
				{"b", "echo", []string{"2", "b"}},
			},
		},
		{
			name:     "placeholders in the line are not expanded",
			template: []string{"echo", "{}"},
			input:    "{#} and {}\n",
			want:     []want{{"{#} and {}", "echo", []string{"{#} and {}"}}},
		},
		{
			name:     "JSON lines are plain text",
			template: []string{"echo"},
			input:    `{"command": "rm", "args": ["-rf", "/"]}` + "\n",
			want:     []want{{`{"command": "rm", "args": ["-rf", "/"]}`, "echo", []string{`{"command": "rm", "args": ["-rf", "/"]}`}}},
		},
		{
			name:     "text that is neither array nor NDJSON",
			template: []string{"echo"},
			input:    "[not json\nhello",
			want: []want{
				{"[not json", "echo", []string{"[not json"}},
				{"hello", "echo", []string{"hello"}},
			},
		},
		{name: "empty input", template: []string{"echo"}, input: "", want: []want{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tasks, err := decodeAll(t, strings.NewReader(tt.input), Options{Template: tt.template})
			require.NoError(t, err)
			requireSeq(t, tasks)
			got := make([]want, 0, len(tasks))
			for _, task := range tasks {
				require.NoError(t, task.Err)
				require.False(t, task.HasStdin)
				got = append(got, want{task.Identifier, task.Command, task.Args})
			}
			require.Equal(t, tt.want, got)
		})
	}
	t.Run("byte-order mark skipped", func(t *testing.T) {
		tasks, err := decodeAll(t, strings.NewReader("\xef\xbb\xbfa.jpg\nb.jpg\n"), Options{Template: []string{"echo"}})
		require.NoError(t, err)
		require.Len(t, tasks, 2)
		require.Equal(t, "a.jpg", tasks[0].Identifier)
		require.Equal(t, []string{"a.jpg"}, tasks[0].Args)
		require.Equal(t, "line 2", tasks[1].Where)
	})
	t.Run("only a leading byte-order mark is skipped", func(t *testing.T) {
		tasks, err := decodeAll(t, strings.NewReader("a\n\xef\xbb\xbfb\n"), Options{Template: []string{"echo"}})
		require.NoError(t, err)
		require.Len(t, tasks, 2)
		require.Equal(t, "\ufeffb", tasks[1].Identifier)
	})
	t.Run("NUL byte in a line", func(t *testing.T) {
		tasks, err := decodeAll(t, strings.NewReader("a\nb\x00c\nd\n"), Options{Template: []string{"echo", "{}"}})
		require.NoError(t, err)
		require.Equal(t, []string{"echo", "echo", "echo"}, commands(tasks))
		require.NoError(t, tasks[0].Err)
		require.ErrorContains(t, tasks[1].Err, `task "b\x00c" (line 2): "args" element 1 holds a NUL byte`)
		require.NoError(t, tasks[2].Err)
	})
	t.Run("template is not changed", func(t *testing.T) {
		template := []string{"echo", "{}"}
		_, err := decodeAll(t, strings.NewReader("a\nb\n"), Options{Template: template})
		require.NoError(t, err)
		require.Equal(t, []string{"echo", "{}"}, template)
	})
}

// countingReader counts the bytes its reader has returned.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// taskSource makes a large input a task at a time, so that the test holds
// none of it whole.
type taskSource struct {
	array bool
	n     int // tasks still to write
	seq   int
	state int // 0 start, 1 tasks, 2 end, 3 done
	buf   []byte
}

func (s *taskSource) Read(p []byte) (int, error) {
	for len(s.buf) == 0 {
		switch s.state {
		case 0:
			if s.array {
				s.buf = append(s.buf, "[\n"...)
			}
			s.state = 1
		case 1:
			if s.n == 0 {
				s.state = 2
				continue
			}
			s.seq++
			s.n--
			s.buf = fmt.Appendf(s.buf, `{"identifier": "t%d", "command": "echo", "args": ["%s"]}`, s.seq, strings.Repeat("p", 60))
			if s.array && s.n > 0 {
				s.buf = append(s.buf, ',')
			}
			s.buf = append(s.buf, '\n')
		case 2:
			if s.array {
				s.buf = append(s.buf, "]\n"...)
			}
			s.state = 3
		default:
			return 0, io.EOF
		}
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	return n, nil
}

// TestStreamsWithoutReadingAhead: the decoder reads only a little ahead of
// the tasks received, so a large input is never held whole and a task
// starts before the input is all read.
func TestStreamsWithoutReadingAhead(t *testing.T) {
	const (
		tasks   = 500_000 // about 50 MB
		bounded = 1 << 20 // read ahead allowed: buffers, not the input
	)
	for _, array := range []bool{true, false} {
		name := map[bool]string{true: "array", false: "NDJSON"}[array]
		t.Run(name, func(t *testing.T) {
			src := &countingReader{r: &taskSource{array: array, n: tasks}}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			dec := New(src, Options{})
			out := dec.Stream(ctx)

			for i := 1; i <= 100; i++ {
				task := receive(t, out)
				require.NoError(t, task.Err)
				require.Equal(t, "t"+strconv.Itoa(i), task.Identifier)
			}
			// Give the decoder time to read ahead as far as it would.
			time.Sleep(50 * time.Millisecond)
			read := src.n.Load()
			require.Less(t, read, int64(bounded), "bytes read after 100 of %d tasks", tasks)

			cancel()
			requireClosed(t, out)
			require.ErrorIs(t, dec.Err(), context.Canceled)
			require.Less(t, src.n.Load(), int64(bounded))
		})
	}
}

func receive(t testing.TB, out <-chan job.Task) job.Task {
	t.Helper()
	select {
	case task, ok := <-out:
		require.True(t, ok, "channel closed early")
		return task
	case <-time.After(waitLimit):
		require.FailNow(t, "no task received in time")
	}
	return job.Task{}
}

// requireClosed waits for out to be closed, dropping what is still sent.
func requireClosed(t testing.TB, out <-chan job.Task) {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		select {
		case _, ok := <-out:
			if !ok {
				return
			}
		case <-deadline:
			require.FailNow(t, "channel not closed in time")
		}
	}
}

// requireClosedNow checks that out is closed without a task being sent on it.
func requireClosedNow(t testing.TB, out <-chan job.Task) {
	t.Helper()
	select {
	case task, ok := <-out:
		require.False(t, ok, "task %d sent after the stop", task.Seq)
	case <-time.After(waitLimit):
		require.FailNow(t, "channel not closed in time")
	}
}

// TestStreamStopsOnCancel: when the context is done while nobody receives,
// the decoder stops and closes its channel instead of blocking on a send.
func TestStreamStopsOnCancel(t *testing.T) {
	many := strings.Repeat(`{"command": "a"}`+"\n", 1000)
	tests := []struct {
		name  string
		input string
		opts  Options
	}{
		{name: "NDJSON", input: many},
		{name: "array", input: "[" + strings.TrimSuffix(strings.ReplaceAll(many, "\n", ","), ",") + "]"},
		{name: "template", input: strings.Repeat("line\n", 1000), opts: Options{Template: []string{"echo"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Run("before any receive", func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				dec := New(strings.NewReader(tt.input), tt.opts)
				out := dec.Stream(ctx)
				time.Sleep(10 * time.Millisecond) // let it block on the first send
				cancel()
				// The first task may already be on its way; the decoder
				// then sees the context done at its next send.
				select {
				case <-out:
				case <-time.After(waitLimit):
					require.FailNow(t, "channel not closed in time")
				}
				requireClosedNow(t, out)
				require.ErrorIs(t, dec.Err(), context.Canceled)
				require.Less(t, dec.Count(), int64(3))
			})
			t.Run("after some receives", func(t *testing.T) {
				ctx, cancel := context.WithCancelCause(context.Background())
				dec := New(strings.NewReader(tt.input), tt.opts)
				out := dec.Stream(ctx)
				for range 10 {
					receive(t, out)
				}
				stop := errors.New("stopped by the test")
				cancel(stop)
				select {
				case <-out:
				case <-time.After(waitLimit):
					require.FailNow(t, "channel not closed in time")
				}
				requireClosedNow(t, out)
				require.ErrorIs(t, dec.Err(), stop, "Err reports the context's cause")
				require.Less(t, dec.Count(), int64(13))
			})
		})
	}
}

// failingReader returns its data, then err.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

// TestReadErrorIsReported: when the reader fails, the tasks read before are
// delivered and Err is the reader's own error, not a framing error.
func TestReadErrorIsReported(t *testing.T) {
	broken := errors.New("disk on fire")
	tests := []struct {
		name, input string
		opts        Options
		commands    []string
	}{
		{name: "before anything", input: "", commands: []string{}},
		{name: "after blank lines", input: "\n\n  ", commands: []string{}},
		{name: "NDJSON", input: "{\"command\": \"a\"}\n{\"command\": \"b\"}\n", commands: []string{"a", "b"}},
		{name: "array between elements", input: `[{"command": "a"}, {"command": "b"}`, commands: []string{"a", "b"}},
		{name: "array inside an element", input: `[{"command": "a"}, {"command": "b"}, {"comm`, commands: []string{"a", "b"}},
		{name: "array after the opening bracket", input: `[`, commands: []string{}},
		{name: "template", input: "x\ny\n", opts: Options{Template: []string{"a"}}, commands: []string{"a", "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tasks, err := decodeAll(t, &failingReader{data: []byte(tt.input), err: broken}, tt.opts)
			require.Equal(t, tt.commands, commands(tasks))
			require.ErrorIs(t, err, broken)
			var framing *FramingError
			require.False(t, errors.As(err, &framing), "a read error is not a framing error: %v", err)
		})
	}
}

// TestSameTaskInEitherFraming: a task reads the same from an NDJSON line
// and from an array element.
func TestSameTaskInEitherFraming(t *testing.T) {
	ndjson := "{\"identifier\": 1, \"command\": \"a\", \"args\": [1, \"two\"], \"env\": {\"K\": \"V\"}, \"dir\": \"/tmp\", \"stdin\": \"in\", \"timeout\": \"1s\", \"meta\": {\"k\": [1, 2]}}\n" +
		"{\"command\": \"b\"}\n"
	array := "[" + strings.Replace(strings.TrimSpace(ndjson), "\n", ",", 1) + "]"
	a, err := decodeString(t, ndjson)
	require.NoError(t, err)
	b, err := decodeString(t, array)
	require.NoError(t, err)
	require.Len(t, a, 2)
	require.Len(t, b, 2)
	for i := range a {
		a[i].Where, b[i].Where = "", ""
		require.Equal(t, a[i], b[i], "the same task in either framing decodes the same")
	}
	require.True(t, bytes.Equal([]byte(`{"k": [1, 2]}`), a[0].Meta))
}
