package encode

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"math"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	json "github.com/goccy/go-json"
	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/internal/spool"
	"github.com/workerpool/workerpool/job"
)

func result(seq int64, body string) job.Result {
	return job.Result{Seq: seq, Identifier: "t" + string(rune('0'+seq)), Stdout: job.BytesOutput([]byte(body)), Started: true, Duration: 1500 * time.Microsecond, Attempts: 1}
}

// timed returns r with a StartedAt that is not in UTC and has more than
// milliseconds.
func timed(r job.Result) job.Result {
	r.StartedAt = time.Date(2026, 12, 4, 23, 55, 1, 123_456_789, time.FixedZone("CET", 3600))
	return r
}

// send returns a closed channel holding items.
func send[T any](items ...T) <-chan T {
	ch := make(chan T, len(items))
	for _, it := range items {
		ch <- it
	}
	close(ch)
	return ch
}

func TestMarshalSchema(t *testing.T) {
	tests := []struct {
		name   string
		r      job.Result
		binary bool
		want   string
	}{
		{"ok", result(1, "out\n"), false,
			`{"identifier":"t1","exit_code":0,"result_body":"out\n","stderr":"","seq":1,"duration_ms":1.5}`},
		{"never started", job.Result{Seq: 2, Identifier: "x", ExitCode: -1, Err: errors.New("command not found: x"), Meta: json.RawMessage(`{"a":1}`)}, false,
			`{"identifier":"x","exit_code":-1,"result_body":"","seq":2,"error":"command not found: x","meta":{"a":1}}`},
		{"timed out", job.Result{Seq: 3, Identifier: "s", ExitCode: 124, TimedOut: true, Signal: "SIGTERM", Started: true, Attempts: 2, Truncated: true}, false,
			`{"identifier":"s","exit_code":124,"result_body":"","stderr":"","seq":3,"duration_ms":0,"signal":"SIGTERM","timed_out":true,"attempts":2,"truncated":true}`},
		{"escaping and invalid UTF-8", result(4, "<a&b> \"q\" \\ \x00 \xff é"), false,
			`{"identifier":"t4","exit_code":0,"result_body":"<a&b> \"q\" \\ \u0000 \ufffd é","stderr":"","seq":4,"duration_ms":1.5}`},
		{"binary", result(5, "a\xffb\x00"), true,
			`{"identifier":"t5","exit_code":0,"result_body":"Yf9iAA==","stderr":"","seq":5,"duration_ms":1.5,"encoding":"base64"}`},
		{"times", timed(result(7, "")), false,
			`{"identifier":"t7","exit_code":0,"result_body":"","stderr":"","seq":7,"duration_ms":1.5,"started_at":"2026-12-04T22:55:01.123Z","ended_at":"2026-12-04T22:55:01.124Z"}`},
		{"times, never started", timed(job.Result{Seq: 8, Identifier: "n", ExitCode: -1, Err: errors.New("cancelled")}), false,
			`{"identifier":"n","exit_code":-1,"result_body":"","seq":8,"error":"cancelled"}`},
		{"cost and limit", job.Result{Seq: 6, Identifier: "c", ExitCode: 152, Signal: "SIGXCPU", Started: true, Duration: time.Second,
			Usage: &job.Usage{User: 987654 * time.Microsecond, System: 12 * time.Millisecond, MaxRSS: 2048}, Limit: "cpu", Host: "b1"}, false,
			`{"identifier":"c","exit_code":152,"result_body":"","stderr":"","seq":6,"duration_ms":1000,"user_ms":987.654,"sys_ms":12,"max_rss_kb":2048,"limit":"cpu","signal":"SIGXCPU","host":"b1"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Marshal(&tt.r, tt.binary)
			require.NoError(t, err)
			require.Equal(t, tt.want, string(got))
			require.True(t, json.Valid(got))
		})
	}
}

// TestLargeTextMatchesWholeEncoding streams text across many chunks, with
// multi-byte and invalid sequences on chunk boundaries, and checks it
// decodes to what encoding the whole string at once gives.
func TestLargeTextMatchesWholeEncoding(t *testing.T) {
	var b strings.Builder
	for b.Len() < 3*textChunk {
		b.WriteString("ab€😀\xe2\x82x\xffé") // a euro sign cut short, a stray byte
	}
	for _, shift := range []int{0, 1, 2, 3} {
		body := strings.Repeat("z", shift) + b.String()
		r := result(1, body)
		got, err := Marshal(&r, false)
		require.NoError(t, err)
		whole, err := json.Marshal(body)
		require.NoError(t, err)
		var decoded, want struct {
			Body string `json:"result_body"`
		}
		require.NoError(t, json.Unmarshal(got, &decoded))
		require.NoError(t, json.Unmarshal([]byte(`{"result_body":`+string(whole)+`}`), &want))
		require.Equal(t, want.Body, decoded.Body, "shift %d", shift)
	}
}

func TestSpilledOutput(t *testing.T) {
	rest := strings.Repeat("0123456789", 50_000)
	b := spool.Buffer{InMemory: len("head-"), TempDir: t.TempDir()}
	defer b.Release()
	_, err := b.ReadFrom(strings.NewReader("head-" + rest))
	require.NoError(t, err)
	r := result(1, "")
	r.Stdout, _, err = b.Output("stdout")
	require.NoError(t, err)
	require.NotNil(t, r.Stdout.Spill())

	var out bytes.Buffer
	_, err = Write(&out, send(r), Options{Mode: NDJSON{}})
	require.NoError(t, err)
	var got struct {
		Body string `json:"result_body"`
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &got))
	require.Equal(t, "head-"+rest, got.Body)
	require.ErrorIs(t, r.Stdout.Close(), os.ErrClosed, "the writer closes a result's spill file")
}

// TestWriteModes: the array is one line, in the order given; NDJSON is a
// line per result; no results is an empty array.
func TestWriteModes(t *testing.T) {
	in := func() <-chan job.Result {
		failed := result(1, "")
		failed.ExitCode = 2
		return send(result(3, "c"), failed, result(2, "b"))
	}
	seqs := func(out string) []int64 {
		var got []int64
		dec := json.NewDecoder(strings.NewReader(out))
		for dec.More() {
			var r struct{ Seq int64 }
			require.NoError(t, dec.Decode(&r))
			got = append(got, r.Seq)
		}
		return got
	}

	var out bytes.Buffer
	sum, err := Write(&out, in(), Options{})
	require.NoError(t, err)
	require.Equal(t, Summary{Results: 3, Failed: 1}, sum)
	require.Equal(t, 1, strings.Count(out.String(), "\n"), "the array is one line")
	var array []struct{ Seq int64 }
	require.NoError(t, json.Unmarshal(out.Bytes(), &array))
	require.Equal(t, []struct{ Seq int64 }{{3}, {1}, {2}}, array)

	out.Reset()
	_, err = Write(&out, in(), Options{Mode: NDJSON{}})
	require.NoError(t, err)
	require.Equal(t, 3, strings.Count(out.String(), "\n"), "a line per result")
	require.Equal(t, []int64{3, 1, 2}, seqs(out.String()), "in the order given")

	out.Reset()
	_, err = Write(&out, send[job.Result](), Options{})
	require.NoError(t, err)
	require.Equal(t, "[]\n", out.String())
}

func TestEvents(t *testing.T) {
	task := &job.Task{Seq: 1, Identifier: "a"}
	var out bytes.Buffer
	e := NewEncoder(&out, Options{Mode: NDJSON{}, Events: true})
	require.NoError(t, e.Event(job.Event{Kind: job.Started, Task: task, Attempt: 1}))
	failed := job.Result{Seq: 1, ExitCode: 3, Err: errors.New("boom")}
	require.NoError(t, e.Event(job.Event{Kind: job.Retrying, Task: task, Attempt: 1, Result: &failed}))
	r := result(1, "x")
	require.NoError(t, e.Result(&r))
	require.NoError(t, e.Close())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 3)
	require.Equal(t, `{"event":"started","identifier":"a","seq":1,"attempt":1}`, lines[0])
	require.Equal(t, `{"event":"retrying","identifier":"a","seq":1,"attempt":1,"exit_code":3,"error":"boom"}`, lines[1])
	require.Contains(t, lines[2], `"event":"finished"`)

	out.Reset()
	_, err := Write(&out, send(result(1, "x")), Options{Mode: NDJSON{}})
	require.NoError(t, err)
	require.NotContains(t, out.String(), "event", "results are not marked unless events are asked for")
}

// TestTimes: every JSON mode writes started_at and ended_at after
// duration_ms, in UTC with three decimals; raw output is the same with
// them or without.
func TestTimes(t *testing.T) {
	const times = `"duration_ms":1.5,"started_at":"2026-12-04T22:55:01.123Z","ended_at":"2026-12-04T22:55:01.124Z"`
	on := timed(result(1, "x"))
	on.StartedAt = on.StartedAt.Add(-123 * time.Millisecond) // a whole second: .000
	for _, mode := range []Mode{Array{}, NDJSON{}} {
		var out bytes.Buffer
		_, err := Write(&out, send(timed(result(1, "x")), on), Options{Mode: mode})
		require.NoError(t, err)
		require.Equal(t, 1, strings.Count(out.String(), times), mode.String())
		require.Contains(t, out.String(), `"started_at":"2026-12-04T22:55:01.000Z","ended_at":"2026-12-04T22:55:01.001Z"`, mode.String())
	}
	for _, mode := range []Mode{Raw{}, Raw{Tag: true}} {
		var with, without bytes.Buffer
		_, err := Write(&with, send(timed(result(1, "x"))), Options{Mode: mode})
		require.NoError(t, err)
		_, err = Write(&without, send(result(1, "x")), Options{Mode: mode})
		require.NoError(t, err)
		require.Equal(t, without.String(), with.String(), mode.String())
	}
}

// TestOmitStderr: the stderr field is there only when it was captured.
func TestOmitStderr(t *testing.T) {
	var out bytes.Buffer
	_, err := Write(&out, send(result(1, "x")), Options{Mode: NDJSON{}, OmitStderr: true})
	require.NoError(t, err)
	require.NotContains(t, out.String(), `"stderr"`)
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteError(t *testing.T) {
	_, err := Write(failingWriter{}, send(result(1, "x")), Options{Mode: NDJSON{}})
	require.EqualError(t, err, "disk full")
}

// TestInvalidUTF8IsReplaced: whatever bytes a task's meta, identifier or
// error hold, every line the encoder writes is valid UTF-8 and valid JSON
// (PHP's json_decode rejects the whole array otherwise); an invalid byte
// becomes U+FFFD, as in the outputs, and valid text is kept as it is.
func TestInvalidUTF8IsReplaced(t *testing.T) {
	meta := json.RawMessage("{\"k\xff\": [\"a\xffb\", \"\xe2\x82\", \"é€😀\"], \"n\": 1.50}")
	const wantMeta = `{"k\ufffd":["a\ufffdb","\ufffd\ufffd","é€😀"],"n":1.50}`
	task := &job.Task{Seq: 1, Identifier: "id\xff", Command: "true", Meta: meta}
	failed := job.Result{Seq: 1, Identifier: "id\xff", ExitCode: 3, Err: errors.New("boom \xfe"), Meta: meta}
	tests := []struct {
		name  string
		write func(*bytes.Buffer) error
		// want holds the values each line must decode to, one per line.
		want []string
	}{
		{
			name: "result",
			write: func(out *bytes.Buffer) error {
				r := failed
				r.Stdout = job.BytesOutput([]byte("out\xff"))
				_, err := Write(out, send(r), Options{})
				return err
			},
			want: []string{`[{"identifier":"id\ufffd","exit_code":3,"result_body":"out\ufffd","seq":1,"error":"boom \ufffd","meta":` + wantMeta + `}]`},
		},
		{
			name: "events",
			write: func(out *bytes.Buffer) error {
				e := NewEncoder(out, Options{Mode: NDJSON{}, Events: true})
				if err := e.Event(job.Event{Kind: job.Started, Task: task, Attempt: 1}); err != nil {
					return err
				}
				return e.Event(job.Event{Kind: job.Retrying, Task: task, Attempt: 1, Result: &failed})
			},
			want: []string{
				`{"event":"started","identifier":"id\ufffd","seq":1,"attempt":1,"meta":` + wantMeta + `}`,
				`{"event":"retrying","identifier":"id\ufffd","seq":1,"attempt":1,"exit_code":3,"error":"boom \ufffd","meta":` + wantMeta + `}`,
			},
		},
		{
			name: "plan",
			write: func(out *bytes.Buffer) error {
				bad := *task
				bad.Err = errors.New("bad \xc3")
				_, err := WritePlan(out, send(*task, bad), func(*job.Task) (string, error) { return "/bin/true", nil }, nil)
				return err
			},
			want: []string{
				`{"seq":1,"identifier":"id\ufffd","command":"true","path":"/bin/true","cpus":1,"meta":` + wantMeta + `}`,
				`{"seq":1,"identifier":"id\ufffd","meta":` + wantMeta + `,"error":"bad \ufffd"}`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			require.NoError(t, tt.write(&out))
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			require.Len(t, lines, len(tt.want))
			for i, line := range lines {
				require.True(t, utf8.ValidString(line), "line %d is not valid UTF-8: %q", i+1, line)
				require.True(t, stdjson.Valid([]byte(line)), "line %d is not valid JSON: %q", i+1, line)
				require.JSONEq(t, tt.want[i], line)
			}
		})
	}
}

// TestPlanTimeout: the plan shows a task's own timeout whenever it has one,
// "0s" for a task that asked for no limit, and none when it follows
// --timeout.
func TestPlanTimeout(t *testing.T) {
	tests := []struct {
		name string
		task job.Task
		want string // the "timeout" shown; empty for none
	}{
		{name: "none given", task: job.Task{Command: "a"}},
		{name: "a limit", task: job.Task{Command: "a", Timeout: 1500 * time.Millisecond, HasTimeout: true}, want: "1.5s"},
		{name: "no limit", task: job.Task{Command: "a", HasTimeout: true}, want: "0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			_, err := WritePlan(&out, send(tt.task), func(*job.Task) (string, error) { return "/bin/a", nil }, nil)
			require.NoError(t, err)
			var got map[string]any
			require.NoError(t, json.Unmarshal(out.Bytes(), &got))
			if tt.want == "" {
				require.NotContains(t, got, "timeout")
				return
			}
			require.Equal(t, tt.want, got["timeout"])
		})
	}
}

// TestPlanLimits: the plan shows the limits a task would run with: its
// own, then the defaults, the CPU time in the kernel's whole seconds.
func TestPlanLimits(t *testing.T) {
	var out bytes.Buffer
	task := job.Task{Command: "a", Limits: job.Limits{CPU: 1500 * time.Millisecond, Files: 16}}
	job.Defaults{Limits: job.Limits{Memory: 1 << 20, Files: 64}}.Apply(&task)
	_, err := WritePlan(&out, send(task), func(*job.Task) (string, error) { return "/bin/a", nil }, nil)
	require.NoError(t, err)
	require.Contains(t, out.String(), `"limits":{"memory":1048576,"cpu":"2s","files":16}`, "the task's own, then the defaults; CPU in whole seconds")
}

// TestPlanLimitsExact: sizes are printed as the exact integers they are,
// up to the largest int64, never through a float64 (which would print 2^62
// as 4611686018427388000).
func TestPlanLimitsExact(t *testing.T) {
	var out bytes.Buffer
	task := job.Task{Command: "a", Limits: job.Limits{Memory: 1<<62 - 1, FSize: math.MaxInt64, Files: 1 << 62}}
	_, err := WritePlan(&out, send(task), func(*job.Task) (string, error) { return "/bin/a", nil }, nil)
	require.NoError(t, err)
	require.Contains(t, out.String(), `"limits":{"memory":4611686018427387903,"files":4611686018427387904,"fsize":9223372036854775807}`)
}
