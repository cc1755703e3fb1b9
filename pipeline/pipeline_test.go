package pipeline

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	json "github.com/goccy/go-json"
	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/dispatch/dispatchtest"
	"github.com/workerpool/workerpool/encode"
	"github.com/workerpool/workerpool/job"
)

// tasks returns NDJSON tasks, one per command, identified t1, t2, ...
func tasks(commands ...string) string {
	var b strings.Builder
	for i, c := range commands {
		fmt.Fprintf(&b, `{"identifier":"t%d","command":%q}`+"\n", i+1, c)
	}
	return b.String()
}

func repeat(c string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = c
	}
	return out
}

type result struct {
	Identifier string `json:"identifier"`
	ExitCode   int    `json:"exit_code"`
	Body       string `json:"result_body"`
	Seq        int64  `json:"seq"`
	Error      string `json:"error"`
	Event      string `json:"event"`
}

// lines decodes NDJSON output.
func lines(t *testing.T, out string) []result {
	t.Helper()
	var got []result
	for line := range strings.Lines(out) {
		var r result
		require.NoError(t, json.Unmarshal([]byte(line), &r), "line %q", line)
		got = append(got, r)
	}
	return got
}

func seqs(rs []result) []int64 {
	var s []int64
	for _, r := range rs {
		s = append(s, r.Seq)
	}
	return s
}

// runFake runs cfg over the given input with f, and returns what it wrote.
func runFake(t *testing.T, ctx context.Context, cfg Config, f *dispatchtest.Executor, input string) (string, Summary, error) {
	t.Helper()
	cfg.Executor = f
	var out strings.Builder
	sum, err := Run(ctx, cfg, strings.NewReader(input), &out)
	return out.String(), sum, err
}

func TestRunOutputModes(t *testing.T) {
	input := tasks("echo", "fail", "true")
	t.Run("array", func(t *testing.T) {
		out, sum, err := runFake(t, t.Context(), Config{}, dispatchtest.New(), input)
		require.NoError(t, err)
		require.Equal(t, Summary{Tasks: 3, Results: 3, Failed: 1}, sum)
		require.Equal(t, 1, strings.Count(out, "\n"), "one line")
		var array []result
		require.NoError(t, json.Unmarshal([]byte(out), &array))
		require.Equal(t, []int64{1, 2, 3}, seqs(array), "input order")
	})
	t.Run("no tasks", func(t *testing.T) {
		out, _, err := runFake(t, t.Context(), Config{}, dispatchtest.New(), "")
		require.NoError(t, err)
		require.Equal(t, "[]\n", out)
	})
	t.Run("ndjson", func(t *testing.T) {
		out, _, err := runFake(t, t.Context(), Config{Mode: encode.NDJSON{}, Workers: 3}, dispatchtest.New(), input)
		require.NoError(t, err)
		require.ElementsMatch(t, []int64{1, 2, 3}, seqs(lines(t, out)))
	})
}

// TestRunOrdered: with --ordered, a slow first task holds back the results
// of the others, which still come out, in input order, once it ends.
func TestRunOrdered(t *testing.T) {
	f := dispatchtest.New()
	cfg := Config{Mode: encode.NDJSON{}, Ordered: true, Workers: 4, Executor: f}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := Run(t.Context(), cfg, strings.NewReader(tasks(append([]string{"block"}, repeat("true", 20)...)...)), pw)
		pw.CloseWithError(err)
		done <- err
	}()
	for f.Started() < 21 {
		time.Sleep(time.Millisecond)
	}
	f.Release()
	out, err := io.ReadAll(pr)
	require.NoError(t, err)
	require.NoError(t, <-done)
	want := make([]int64, 21)
	for i := range want {
		want[i] = int64(i + 1)
	}
	require.Equal(t, want, seqs(lines(t, string(out))))
}

// TestRunWindowBoundsRunAhead: while the first task runs, the pool starts
// no task more than the reorder window ahead of it, so the results held
// for their turn stay bounded.
func TestRunWindowBoundsRunAhead(t *testing.T) {
	const workers = 4
	window := int64(max(128, 16*workers))
	f := dispatchtest.New()
	cfg := Config{Mode: encode.NDJSON{}, Ordered: true, Workers: workers}
	done := make(chan error, 1)
	var out string
	go func() {
		var err error
		out, _, err = runFake(t, t.Context(), cfg, f, tasks(append([]string{"block"}, repeat("true", 300)...)...))
		done <- err
	}()
	for f.Started() < window {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // room to run ahead, if it would
	require.Equal(t, window, f.Started(), "tasks started while the first one runs")
	f.Release()
	require.NoError(t, <-done)
	require.Len(t, lines(t, out), 301)
}

// TestRunFailFast: after the first failure no task starts; the tasks
// already read are skipped, and each still has its result.
func TestRunFailFast(t *testing.T) {
	f := dispatchtest.New()
	out, sum, err := runFake(t, t.Context(), Config{Mode: encode.NDJSON{}, Ordered: true, Workers: 1, FailFast: true}, f,
		tasks("true", "fail", "true", "true"))
	require.NoError(t, err, "a fail-fast stop is not a failure of the run")
	require.Equal(t, int64(3), sum.Failed)
	got := lines(t, out)
	require.Equal(t, []int64{1, 2, 3, 4}, seqs(got))
	require.Equal(t, 0, got[0].ExitCode)
	require.Equal(t, 1, got[1].ExitCode)
	for _, r := range got[2:] {
		require.Equal(t, job.ExitNeverStarted, r.ExitCode)
		require.Equal(t, "skipped after an earlier failure (--halt soon,fail=1)", r.Error)
		require.Zero(t, f.Attempts(r.Seq))
	}
}

// TestRunSignalAfterFailFast: a fail-fast stop lets the running task go
// on, but a signal after it still stops that task.
func TestRunSignalAfterFailFast(t *testing.T) {
	f := dispatchtest.New()
	ctx, cancel := context.WithCancelCause(t.Context())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, Config{Mode: encode.NDJSON{}, Workers: 2, FailFast: true, Executor: f}, strings.NewReader(tasks("block", "fail-second", "true")), pw)
		pw.CloseWithError(err)
		done <- err
	}()
	lines := bufio.NewScanner(pr)
	var rest []string
	for lines.Scan() && !strings.Contains(lines.Text(), `"identifier":"t2","exit_code":1`) {
		rest = append(rest, lines.Text()) // t3, skipped, may come first
	}
	// The failure's result is out, so the intake is closed; t1 still runs.
	require.Zero(t, f.Attempts(3))
	sigterm := errors.New("received terminated")
	cancel(sigterm)
	for lines.Scan() {
		rest = append(rest, lines.Text())
	}
	err := <-done
	require.ErrorIs(t, err, sigterm, "the run ends with the stop's cause")
	require.Len(t, rest, 2)
	require.Contains(t, strings.Join(rest, "\n"), `"identifier":"t1","exit_code":143`)
	require.Contains(t, strings.Join(rest, "\n"), `"identifier":"t3","exit_code":-1`)
	require.Zero(t, f.Attempts(3))
}

// TestRunStops: a run stopped through its context ends with the cause,
// and every task read still has its result.
func TestRunStops(t *testing.T) {
	tests := []struct {
		name  string
		cause error
	}{
		{"a signal", errors.New("received interrupt")},
		{"cancelled", context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := dispatchtest.New()
			ctx, cancel := context.WithCancelCause(t.Context())
			go func() {
				for f.Started() < 2 {
					time.Sleep(time.Millisecond)
				}
				cancel(tt.cause)
			}()
			out, sum, err := runFake(t, ctx, Config{Mode: encode.NDJSON{}, Workers: 2}, f, tasks(repeat("block", 5)...))
			require.ErrorIs(t, err, tt.cause)
			got := lines(t, out)
			require.Len(t, got, 5)
			require.Equal(t, int64(5), sum.Results)
			for _, r := range got {
				require.Equal(t, "cancelled", r.Error, "task %d", r.Seq)
			}
			require.Equal(t, int64(2), f.Started(), "no task starts after the stop")
		})
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

// TestRunWriteError: a broken output stops the run and says why; a closed
// pipe says that the reader went away.
func TestRunWriteError(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{errors.New("disk full"), "cannot write results: disk full"},
		{syscall.EPIPE, ErrReaderGone.Error()},
	} {
		t.Run(tt.err.Error(), func(t *testing.T) {
			f := dispatchtest.New()
			_, err := Run(t.Context(), Config{Mode: encode.NDJSON{}, Executor: f}, strings.NewReader(tasks(repeat("true", 50)...)), failingWriter{tt.err})
			require.EqualError(t, err, tt.want)
			require.Less(t, f.Started(), int64(50), "the run stops")
		})
	}
}

// TestRunEvents: each task's started line comes before its result, which
// says "event":"finished".
func TestRunEvents(t *testing.T) {
	out, _, err := runFake(t, t.Context(), Config{Mode: encode.NDJSON{}, Events: true, Workers: 4}, dispatchtest.New(), tasks(repeat("true", 30)...))
	require.NoError(t, err)
	started := map[int64]bool{}
	for _, r := range lines(t, out) {
		switch r.Event {
		case "started":
			started[r.Seq] = true
		case "finished":
			require.True(t, started[r.Seq], "task %d finished before it started", r.Seq)
		default:
			t.Fatalf("unexpected line %+v", r)
		}
	}
	require.Len(t, started, 30)
}

// TestRunResume: the tasks the journal records as done are not run and
// have no new line; the others run and are appended, in order.
func TestRunResume(t *testing.T) {
	journal := filepath.Join(t.TempDir(), "j.ndjson")
	var old strings.Builder
	for i := 2; i <= 20; i += 2 {
		fmt.Fprintf(&old, `{"identifier":"t%d","exit_code":0}`+"\n", i)
	}
	require.NoError(t, os.WriteFile(journal, []byte(old.String()), 0o644))
	f := dispatchtest.New()
	_, sum, err := runFake(t, t.Context(), Config{Mode: encode.NDJSON{}, Ordered: true, Resume: true, Outfile: journal, Workers: 3}, f, tasks(repeat("true", 20)...))
	require.NoError(t, err)
	require.Equal(t, Summary{Tasks: 20, Recorded: 10, Results: 10}, sum)
	data, err := os.ReadFile(journal)
	require.NoError(t, err)
	appended := lines(t, strings.TrimPrefix(string(data), old.String()))
	require.Equal(t, []int64{1, 3, 5, 7, 9, 11, 13, 15, 17, 19}, seqs(appended))
	for i := 1; i <= 20; i++ {
		require.Equal(t, int64(i%2), f.Attempts(int64(i)), "task t%d", i)
	}
}
