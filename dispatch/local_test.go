//go:build unix

package dispatch

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/job"
)

func newTestLocal(t *testing.T, opts LocalOptions) *Local {
	t.Helper()
	if opts.Grace == 0 {
		opts.Grace = time.Second
	}
	l, err := NewLocal(opts)
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	return l
}

func TestLocalExecute(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "script.txt")
	require.NoError(t, os.WriteFile(notExec, []byte("echo hi"), 0o644))
	chunked := filepath.Join(dir, "chunks.txt")
	require.NoError(t, os.WriteFile(chunked, []byte("one\ntwo\nthree\n"), 0o644))

	tests := []struct {
		name  string
		opts  LocalOptions
		task  job.Task
		check func(t *testing.T, r job.Result)
	}{
		{"stdout and stderr", LocalOptions{}, job.Task{Command: "sh", Args: []string{"-c", "echo out; echo err >&2; exit 3"}},
			func(t *testing.T, r job.Result) {
				require.Equal(t, 3, r.ExitCode)
				require.Equal(t, "out\n", r.Stdout.String())
				require.Equal(t, "err\n", r.Stderr.String())
				require.True(t, r.Started)
				require.NoError(t, r.Err)
			}},
		{"env is added to the pool's", LocalOptions{}, job.Task{Command: "sh", Args: []string{"-c", "echo $A-$HOME"}, Env: map[string]string{"A": "1"}},
			func(t *testing.T, r job.Result) {
				require.Equal(t, "1-"+os.Getenv("HOME")+"\n", r.Stdout.String())
			}},
		{"dir", LocalOptions{}, job.Task{Command: "pwd", Dir: dir},
			func(t *testing.T, r job.Result) { require.Equal(t, dir+"\n", r.Stdout.String()) }},
		{"stdin", LocalOptions{}, job.Task{Command: "cat", Stdin: "fed", HasStdin: true},
			func(t *testing.T, r job.Result) { require.Equal(t, "fed", r.Stdout.String()) }},
		{"stdin a chunk of a file", LocalOptions{}, job.Task{Command: "cat", HasStdin: true, Chunk: &job.Chunk{Path: chunked, Offset: 4, Length: 4}},
			func(t *testing.T, r job.Result) { require.Equal(t, "two\n", r.Stdout.String()) }},
		{"stdin a chunk of a file that is gone", LocalOptions{}, job.Task{Command: "cat", HasStdin: true, Chunk: &job.Chunk{Path: filepath.Join(dir, "gone"), Length: 4}},
			func(t *testing.T, r job.Result) {
				require.Equal(t, job.ExitNeverStarted, r.ExitCode, "the command is there")
				require.EqualError(t, r.Err, "cannot start cat: cannot read its chunk of "+filepath.Join(dir, "gone")+": no such file or directory")
			}},
		{"no stdin reads /dev/null", LocalOptions{}, job.Task{Command: "cat"},
			func(t *testing.T, r job.Result) { require.Equal(t, 0, r.ExitCode) }},
		{"not found", LocalOptions{}, job.Task{Command: "no-such-command-anywhere"},
			func(t *testing.T, r job.Result) {
				require.Equal(t, job.ExitNotFound, r.ExitCode)
				require.False(t, r.Started)
				require.ErrorContains(t, r.Err, "command not found: no-such-command-anywhere")
			}},
		{"path not found", LocalOptions{}, job.Task{Command: "./nope"},
			func(t *testing.T, r job.Result) { require.Equal(t, job.ExitNotFound, r.ExitCode) }},
		{"not executable", LocalOptions{}, job.Task{Command: notExec},
			func(t *testing.T, r job.Result) {
				require.Equal(t, job.ExitNotExecutable, r.ExitCode)
				require.ErrorContains(t, r.Err, "not executable")
			}},
		{"missing dir", LocalOptions{}, job.Task{Command: "true", Dir: filepath.Join(dir, "nope")},
			func(t *testing.T, r job.Result) {
				require.Equal(t, job.ExitNeverStarted, r.ExitCode)
				require.ErrorContains(t, r.Err, "no such file or directory")
			}},
		{"killed by a signal", LocalOptions{}, job.Task{Command: "sh", Args: []string{"-c", "kill -KILL $$"}},
			func(t *testing.T, r job.Result) {
				require.Equal(t, 137, r.ExitCode)
				require.Equal(t, "SIGKILL", r.Signal)
				require.False(t, r.TimedOut)
			}},
		{"max output", LocalOptions{ProcessOptions: ProcessOptions{MaxOutput: 4}}, job.Task{Command: "sh", Args: []string{"-c", "seq 1 100000; echo e >&2"}},
			func(t *testing.T, r job.Result) {
				require.Equal(t, "1\n2\n", r.Stdout.String())
				require.Equal(t, "e\n", r.Stderr.String())
				require.True(t, r.Truncated)
				require.Equal(t, 0, r.ExitCode)
			}},
		{"stderr discarded", LocalOptions{ProcessOptions: ProcessOptions{Stderr: StderrDiscard}}, job.Task{Command: "sh", Args: []string{"-c", "echo err >&2"}},
			func(t *testing.T, r job.Result) {
				require.Zero(t, r.Stderr.Len())
			}},
		{"timeout", LocalOptions{}, job.Task{Command: "sleep", Args: []string{"30"}, Timeout: 100 * time.Millisecond},
			func(t *testing.T, r job.Result) {
				require.Equal(t, job.ExitTimedOut, r.ExitCode)
				require.True(t, r.TimedOut)
				require.Equal(t, "SIGTERM", r.Signal)
				require.Less(t, r.Duration, 5*time.Second)
			}},
		{"SIGTERM ignored", LocalOptions{ProcessOptions: ProcessOptions{Grace: 300 * time.Millisecond}},
			job.Task{Command: "sh", Args: []string{"-c", "trap '' TERM; sleep 30; sleep 30"}, Timeout: 100 * time.Millisecond},
			func(t *testing.T, r job.Result) {
				require.Equal(t, job.ExitTimedOut, r.ExitCode)
				require.Equal(t, "SIGKILL", r.Signal)
				require.Less(t, r.Duration, 5*time.Second)
			}},
		{"grandchild holding the pipe", LocalOptions{}, job.Task{Command: "sh", Args: []string{"-c", "sleep 30 & echo hi"}},
			func(t *testing.T, r job.Result) {
				require.Equal(t, 0, r.ExitCode)
				require.Equal(t, "hi\n", r.Stdout.String())
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := newTestLocal(t, tt.opts)
			start := time.Now()
			r := l.Execute(context.Background(), &tt.task)
			end := time.Now()
			require.Less(t, end.Sub(start), 10*time.Second)
			requireTimes(t, &r, start, end)
			tt.check(t, r)
		})
	}
}

// requireTimes checks that r, of a task run between before and after,
// has its process's times within them, or none when it did not start.
func requireTimes(t *testing.T, r *job.Result, before, after time.Time) {
	t.Helper()
	if !r.Started {
		require.True(t, r.StartedAt.IsZero(), "a task that did not start has no start: %v", r.StartedAt)
		return
	}
	require.False(t, r.StartedAt.Before(before), "started %v, before the call at %v", r.StartedAt, before)
	require.False(t, r.StartedAt.After(after), "started %v, after the call returned at %v", r.StartedAt, after)
	require.False(t, r.StartedAt.Add(r.Duration).After(after), "ended %v, after the call returned at %v", r.StartedAt.Add(r.Duration), after)
}

// TestLocalStartedAt: a task's process starts when it is called, and ends
// its Duration later, before the call returns; one cancelled before it
// starts has no start.
func TestLocalStartedAt(t *testing.T) {
	l := newTestLocal(t, LocalOptions{})
	before := time.Now()
	r := l.Execute(context.Background(), &job.Task{Command: "sleep", Args: []string{"0.05"}})
	after := time.Now()
	require.Equal(t, 0, r.ExitCode)
	require.True(t, r.Started)
	require.GreaterOrEqual(t, r.Duration, 50*time.Millisecond)
	requireTimes(t, &r, before, after)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r = l.Execute(ctx, &job.Task{Command: "true"})
	require.ErrorIs(t, r.Err, job.ErrCancelled)
	require.False(t, r.Started)
	require.True(t, r.StartedAt.IsZero())
}

func TestLocalCancel(t *testing.T) {
	l := newTestLocal(t, LocalOptions{ProcessOptions: ProcessOptions{Grace: 300 * time.Millisecond}})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	r := l.Execute(ctx, &job.Task{Command: "sleep", Args: []string{"30"}})
	require.ErrorIs(t, r.Err, job.ErrCancelled)
	require.False(t, r.TimedOut)
	require.Equal(t, 143, r.ExitCode)
	require.Equal(t, "SIGTERM", r.Signal)
}

func TestLocalLargeOutputSpills(t *testing.T) {
	tmp := t.TempDir()
	l := newTestLocal(t, LocalOptions{SpillAfter: 100_000, ProcessOptions: ProcessOptions{TempDir: tmp}})
	r := l.Execute(context.Background(), &job.Task{Command: "sh", Args: []string{"-c", "seq 1 1000000"}})
	defer r.Close()
	require.Equal(t, 0, r.ExitCode)
	require.False(t, r.Truncated)
	require.Len(t, r.Stdout.Head(), 100_000, "only the head stays in memory")
	require.NotNil(t, r.Stdout.Spill())
	want, err := exec.Command("seq", "1", "1000000").Output()
	require.NoError(t, err)
	require.Equal(t, int64(len(want)), r.Stdout.Len())
	require.Equal(t, string(want), r.Stdout.String())
	entries, err := os.ReadDir(tmp)
	require.NoError(t, err)
	require.Empty(t, entries, "the spill file is unlinked at once")
}

func TestLocalMaxOutputWithSpill(t *testing.T) {
	l := newTestLocal(t, LocalOptions{SpillAfter: 1000, ProcessOptions: ProcessOptions{MaxOutput: 250_000, TempDir: t.TempDir()}})
	r := l.Execute(context.Background(), &job.Task{Command: "head", Args: []string{"-c", "10000000", "/dev/zero"}})
	defer r.Close()
	require.Equal(t, 0, r.ExitCode)
	require.True(t, r.Truncated)
	require.Equal(t, int64(250_000), r.Stdout.Len())
	require.Equal(t, strings.Repeat("\x00", 250_000), r.Stdout.String())
}
