package decode

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/job"
)

// decodeOne decodes a single NDJSON task.
func decodeOne(t *testing.T, line string) job.Task {
	t.Helper()
	tasks, err := decodeString(t, line+"\n")
	require.NoError(t, err)
	require.Len(t, tasks, 1)
	return tasks[0]
}

// TestTaskFields: the SPEC's example task, as an NDJSON line and, spread
// over lines as it is printed there, as an array element.
func TestTaskFields(t *testing.T) {
	spec := `{"identifier": "job 1", "command": "php", "args": ["worker.php", "x"],
 "env": {"KEY": "value"}, "dir": "/srv/app", "stdin": "text fed to the child",
 "timeout": "30s", "meta": {"anything": "copied verbatim into the result"}}`
	want := job.Task{
		Seq:        1,
		Identifier: "job 1",
		Command:    "php",
		Args:       []string{"worker.php", "x"},
		Env:        map[string]string{"KEY": "value"},
		Dir:        "/srv/app",
		Stdin:      "text fed to the child",
		HasStdin:   true,
		Timeout:    30 * time.Second,
		HasTimeout: true,
		Meta:       []byte(`{"anything": "copied verbatim into the result"}`),
	}

	task := decodeOne(t, strings.ReplaceAll(spec, "\n", ""))
	require.NoError(t, task.Err)
	want.Where = "line 1"
	require.Equal(t, want, task)

	tasks, err := decodeString(t, "[\n"+spec+"\n]\n")
	require.NoError(t, err)
	require.Len(t, tasks, 1)
	want.Where = "element 1"
	require.Equal(t, want, tasks[0])
}

func TestTaskOptionalFields(t *testing.T) {
	tests := []struct {
		name string
		line string
		want job.Task
	}{
		{
			name: "command alone",
			line: `{"command": "true"}`,
			want: job.Task{Identifier: "1", Command: "true"},
		},
		{
			name: "nulls are absent values",
			line: `{"command": "true", "args": null, "env": null, "dir": null, "stdin": null, "timeout": null, "meta": null}`,
			want: job.Task{Identifier: "1", Command: "true"},
		},
		{
			name: "number identifier keeps its text",
			line: `{"identifier": 12.50, "command": "true"}`,
			want: job.Task{Identifier: "12.50", Command: "true"},
		},
		{
			name: "big number identifier keeps its text",
			line: `{"identifier": 123456789012345678901234567890, "command": "true"}`,
			want: job.Task{Identifier: "123456789012345678901234567890", Command: "true"},
		},
		{
			name: "exponent identifier keeps its text",
			line: `{"identifier": -1e3, "command": "true"}`,
			want: job.Task{Identifier: "-1e3", Command: "true"},
		},
		{
			name: "empty identifier",
			line: `{"identifier": "", "command": "true"}`,
			want: job.Task{Identifier: "", Command: "true"},
		},
		{
			name: "numbers in args keep their text",
			line: `{"command": "seq", "args": [1, 2.50, -3e2, 10000000000000000000001, "4"]}`,
			want: job.Task{Identifier: "1", Command: "seq", Args: []string{"1", "2.50", "-3e2", "10000000000000000000001", "4"}},
		},
		{
			name: "empty args",
			line: `{"command": "true", "args": []}`,
			want: job.Task{Identifier: "1", Command: "true", Args: []string{}},
		},
		{
			name: "escapes in strings",
			line: `{"command": "echo", "args": ["a\"b", "tab\there", "\u00e9\n", "\\"]}`,
			want: job.Task{Identifier: "1", Command: "echo", Args: []string{`a"b`, "tab\there", "é\n", `\`}},
		},
		{
			name: "numbers in env keep their text",
			line: `{"command": "true", "env": {"N": 3, "F": 0.10, "S": "x", "EMPTY": ""}}`,
			want: job.Task{Identifier: "1", Command: "true", Env: map[string]string{"N": "3", "F": "0.10", "S": "x", "EMPTY": ""}},
		},
		{
			name: "empty stdin is still stdin",
			line: `{"command": "cat", "stdin": ""}`,
			want: job.Task{Identifier: "1", Command: "cat", HasStdin: true},
		},
		{
			name: "meta kept verbatim",
			line: `{"command": "true", "meta": {"b": [1, 2.50, "x"],   "a": {"nested": null}}}`,
			want: job.Task{Identifier: "1", Command: "true", Meta: []byte(`{"b": [1, 2.50, "x"],   "a": {"nested": null}}`)},
		},
		{
			name: "meta a string",
			line: `{"command": "true", "meta": "row 7"}`,
			want: job.Task{Identifier: "1", Command: "true", Meta: []byte(`"row 7"`)},
		},
		{
			name: "meta a number",
			line: `{"command": "true", "meta": 1.0}`,
			want: job.Task{Identifier: "1", Command: "true", Meta: []byte(`1.0`)},
		},
		{
			name: "keys in any order",
			line: `{"meta": 1, "timeout": 2, "stdin": "s", "identifier": "id", "env": {"A": "B"}, "dir": "d", "command": "c", "args": ["x"]}`,
			want: job.Task{Identifier: "id", Command: "c", Args: []string{"x"}, Env: map[string]string{"A": "B"}, Dir: "d", Stdin: "s", HasStdin: true, Timeout: 2 * time.Second, HasTimeout: true, Meta: []byte(`1`)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			task := decodeOne(t, tt.line)
			require.NoError(t, task.Err)
			tt.want.Seq, tt.want.Where = 1, "line 1"
			require.Equal(t, tt.want, task)
		})
	}
}

// TestTaskTimeout: a timeout given replaces --timeout for the task, 0
// meaning no limit at all; null is no timeout given.
func TestTaskTimeout(t *testing.T) {
	tests := []struct {
		timeout string
		want    time.Duration
	}{
		{`"1.5s"`, 1500 * time.Millisecond},
		{`"30s"`, 30 * time.Second},
		{`"1m30s"`, 90 * time.Second},
		{`"250ms"`, 250 * time.Millisecond},
		{`"2h"`, 2 * time.Hour},
		{`2`, 2 * time.Second},
		{`0.5`, 500 * time.Millisecond},
		{`1e1`, 10 * time.Second},
		{`"2"`, 2 * time.Second},
		{`"0.25"`, 250 * time.Millisecond},
		{`0`, 0},
		{`"0"`, 0},
		{`0.0`, 0},
		{`-0`, 0},
		{`0e5`, 0},
		{`"0s"`, 0},
		{`"0ms"`, 0},
		{`"0h0m0.000s"`, 0},
		{`"0.000"`, 0},
		{`0.001`, time.Millisecond},
		{`"1ms"`, time.Millisecond},
		{`"1000us"`, time.Millisecond},
		{`null`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.timeout, func(t *testing.T) {
			task := decodeOne(t, `{"command": "sleep", "timeout": `+tt.timeout+`}`)
			require.NoError(t, task.Err)
			require.Equal(t, tt.want, task.Timeout)
			require.Equal(t, tt.timeout != `null`, task.HasTimeout, "a timeout given, 0 included, replaces --timeout")

			got, err := parseTimeout([]byte(tt.timeout))
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestParseTimeoutErrors(t *testing.T) {
	for _, raw := range []string{`"soon"`, `""`, `-1`, `-0.5`, `"-1s"`, `"-2"`, `true`, `[]`, `{}`, `"NaN"`, `1s`} {
		t.Run(raw, func(t *testing.T) {
			_, err := parseTimeout([]byte(raw))
			require.Error(t, err)
		})
	}
}

// TestParseTimeoutTooShort: a limit above 0 but under a millisecond is a
// mistake (1e-12 would otherwise round to 0, no limit at all); the error
// says what is allowed.
func TestParseTimeoutTooShort(t *testing.T) {
	for _, raw := range []string{`1e-12`, `"1e-12"`, `1e-300`, `0.0005`, `"0.0009"`, `"1ns"`, `"999us"`, `"999µs"`, `"0.0000000001s"`, `"0s1ns"`} {
		t.Run(raw, func(t *testing.T) {
			_, err := parseTimeout([]byte(raw))
			require.ErrorContains(t, err, "under 1ms")
			require.ErrorContains(t, err, "0 for no limit")

			task := decodeOne(t, `{"command": "sleep", "timeout": `+raw+`}`)
			require.ErrorContains(t, task.Err, `task "1" (line 1): "timeout": `)
			require.ErrorContains(t, task.Err, "under 1ms")
		})
	}
}

// TestParseTimeoutTooLarge: a limit too long for a time.Duration must not
// turn into a negative one (which the pool reads as "no limit", and which
// depends on the CPU's float conversion); it is an error or the longest
// limit there is.
func TestParseTimeoutTooLarge(t *testing.T) {
	for _, raw := range []string{`1e10`, `1e300`, `"1e10"`, `"inf"`, `"+Inf"`, `9300000000`} {
		t.Run(raw, func(t *testing.T) {
			d, err := parseTimeout([]byte(raw))
			if err == nil {
				require.Positive(t, d, "timeout %s", raw)
			}
		})
	}
}

// TestErrorMessages: the messages read as the STYLE asks: lower case, no
// trailing punctuation, and long values shortened.
func TestErrorMessages(t *testing.T) {
	for _, line := range []string{
		`{"command": "a", "args": [` + strings.Repeat("1", 200) + `, {}]}`,
		`{"command": "a", "args": "` + strings.Repeat("b", 200) + `"}`,
		`{"command": "a", "arg": []}`,
		`{"command": 1}`,
		`{oops`,
	} {
		task := decodeOne(t, line)
		require.Error(t, task.Err)
		msg := task.Err.Error()
		require.True(t, strings.HasPrefix(msg, `task "1" (line 1): `), msg)
		require.NotRegexp(t, `[^.][.!]$`, msg, "an ellipsis is fine, a full stop is not")
		require.Less(t, len(msg), 200, "error %q", msg)
	}
}

// TestTaskLimits: "limits" takes sizes with suffixes or in bytes, a CPU
// time as a timeout, and a number of files; any other key, or a value
// that is none of these, makes the task invalid.
func TestTaskLimits(t *testing.T) {
	task := decodeOne(t, `{"command": "x", "limits": {"memory": "512M", "cpu": "30s", "files": 1024, "fsize": "1G"}}`)
	require.NoError(t, task.Err)
	require.Equal(t, job.Limits{Memory: 512 << 20, CPU: 30 * time.Second, Files: 1024, FSize: 1 << 30}, task.Limits)

	task = decodeOne(t, `{"command": "x", "limits": {"memory": 1048576, "cpu": 2.5, "fsize": "64k"}}`)
	require.NoError(t, task.Err)
	require.Equal(t, job.Limits{Memory: 1 << 20, CPU: 2500 * time.Millisecond, FSize: 64 << 10}, task.Limits)

	for _, bad := range []string{
		`{"mem": "1G"}`, `{"memory": "lots"}`, `{"memory": -1}`, `{"files": "many"}`, `{"files": 1.5}`,
		`{"cpu": "soon"}`, `{"cpu": -1}`, `[]`, `"1G"`, `{"files": 1, "files": 2}`, `{"fsize": true}`,
	} {
		task := decodeOne(t, `{"command": "x", "limits": `+bad+`}`)
		require.ErrorContains(t, task.Err, `"limits"`, bad)
	}
	task = decodeOne(t, `{"command": "x", "limits": {"nproc": 10}}`)
	require.EqualError(t, task.Err, `task "1" (line 1): "limits": unknown limit "nproc": use memory, cpu, files or fsize`)
}

// TestTaskRequest: "cpus" is a whole number from 1 and "memory" a size of
// at least 4M, as a number or a string; anything else makes the task
// invalid, naming the field.
func TestTaskRequest(t *testing.T) {
	task := decodeOne(t, `{"command": "x", "cpus": 4, "memory": "6G"}`)
	require.NoError(t, task.Err)
	require.Equal(t, job.Request{CPUs: 4, Memory: 6 << 30}, task.Request)
	require.Equal(t, int64(6<<30), task.Limits.Memory, "the request is the memory limit too")

	task = decodeOne(t, `{"command": "x", "cpus": "2", "memory": 8388608}`)
	require.NoError(t, task.Err)
	require.Equal(t, job.Request{CPUs: 2, Memory: 8 << 20}, task.Request)

	task = decodeOne(t, `{"command": "x", "cpus": null, "memory": null}`)
	require.NoError(t, task.Err)
	require.Equal(t, job.Request{}, task.Request)

	for _, bad := range []string{`"cpus": 0`, `"cpus": -1`, `"cpus": 1.5`, `"cpus": "many"`, `"cpus": true`, `"cpus": 2000000`,
		`"memory": "1k"`, `"memory": "lots"`, `"memory": [1]`, `"memory": -5`} {
		task := decodeOne(t, `{"command": "x", `+bad+`}`)
		field, _, _ := strings.Cut(bad, ":")
		require.ErrorContains(t, task.Err, field, bad)
	}
}
