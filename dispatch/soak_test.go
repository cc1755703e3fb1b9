//go:build linux

package dispatch

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/job"
)

// TestSoak runs a few thousand short tasks with a mix of exits, signals,
// timeouts, large outputs (spilled to files) and lingering grandchildren at high parallelism,
// and checks that every task has exactly one result of the right kind, and
// that no file descriptor and no child process outlives the run.
func TestSoak(t *testing.T) {
	n := 1500
	if testing.Short() {
		n = 300
	}
	kinds := []struct {
		args  []string
		check func(r job.Result) bool
	}{
		{[]string{"-c", "exit 0"}, func(r job.Result) bool { return r.ExitCode == 0 }},
		{[]string{"-c", "echo out; echo err >&2; exit 7"}, func(r job.Result) bool {
			return r.ExitCode == 7 && r.Stdout.String() == "out\n" && r.Stderr.String() == "err\n"
		}},
		{[]string{"-c", "kill -KILL $$"}, func(r job.Result) bool { return r.ExitCode == 137 && r.Signal == "SIGKILL" }},
		{[]string{"-c", "sleep 5"}, func(r job.Result) bool { return r.TimedOut && r.ExitCode == job.ExitTimedOut }},
		{[]string{"-c", "head -c 3000000 /dev/zero"}, func(r job.Result) bool { return r.Stdout.Len() == 3_000_000 }},
		{[]string{"-c", "sleep 5 & echo bg"}, func(r job.Result) bool { return r.ExitCode == 0 && r.Stdout.String() == "bg\n" }},
	}

	fdsBefore := openFDs(t)
	l, err := NewLocal(LocalOptions{ProcessOptions: ProcessOptions{Grace: 200 * time.Millisecond}})
	require.NoError(t, err)
	p := NewPool(l, Options{Workers: 32})
	tasks := make(chan job.Task)
	go func() {
		defer close(tasks)
		for i := 1; i <= n; i++ {
			k := kinds[i%len(kinds)]
			task := job.Task{Seq: int64(i), Identifier: strconv.Itoa(i), Command: "sh", Args: k.args}
			if i%len(kinds) == 3 {
				task.Timeout, task.HasTimeout = 50*time.Millisecond, true
			}
			tasks <- task
		}
	}()
	seen := make(map[int64]bool, n)
	for r := range runAll(p, tasks) {
		require.False(t, seen[r.Seq], "two results for task %d", r.Seq)
		seen[r.Seq] = true
		require.True(t, kinds[r.Seq%int64(len(kinds))].check(r), "task %d: exit %d signal %q err %v stdout %q stderr %q", r.Seq, r.ExitCode, r.Signal, r.Err, r.Stdout.Head(), r.Stderr.Head())
		require.NoError(t, r.Close())
	}
	require.Len(t, seen, n)
	require.NoError(t, l.Close())

	require.Empty(t, children(os.Getpid()), "no child of the test is left, zombie or alive")
	require.Equal(t, fdsBefore, openFDs(t), "open file descriptors")
}

func openFDs(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(entries)
}

// TestNotStartedClosesNothing runs tasks that are stopped before they
// start: releasing a group that never got a pidfd must not close a
// descriptor of the pool's (its zero value is descriptor 0).
func TestNotStartedClosesNothing(t *testing.T) {
	l, err := NewLocal(LocalOptions{})
	require.NoError(t, err)
	defer l.Close()
	before := openFDs(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 3 {
		r := l.Execute(ctx, &job.Task{Seq: 1, Identifier: "1", Command: "true"})
		require.ErrorIs(t, r.Err, job.ErrCancelled)
		require.False(t, r.Started)
	}
	require.Equal(t, before, openFDs(t), "open file descriptors")
}
