package dispatch

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/job"
)

// TestWithoutPidfd runs a wide pool as on a kernel without pidfds, where
// each waiting child is waited for on a thread: every task still gets its
// own result, and a time limit still stops its task.
func TestWithoutPidfd(t *testing.T) {
	usePidfd = false
	t.Cleanup(func() { usePidfd = true })
	l, err := NewLocal(LocalOptions{ProcessOptions: ProcessOptions{Grace: 100 * time.Millisecond}})
	require.NoError(t, err)
	defer l.Close()
	const n = 60
	tasks := make(chan job.Task)
	go func() {
		defer close(tasks)
		for i := 1; i <= n; i++ {
			task := job.Task{Seq: int64(i), Identifier: strconv.Itoa(i), Command: "sh", Args: []string{"-c", "sleep 0.3; echo $0", strconv.Itoa(i)}}
			if i%10 == 0 {
				task.Args[1] = "sleep 30"
				task.Timeout, task.HasTimeout = 200*time.Millisecond, true
			}
			tasks <- task
		}
	}()
	seen := 0
	for r := range runAll(NewPool(l, Options{Workers: n}), tasks) {
		seen++
		if r.Seq%10 == 0 {
			require.True(t, r.TimedOut, "task %d: %+v", r.Seq, r)
			continue
		}
		require.Equal(t, 0, r.ExitCode, "task %d: %v", r.Seq, r.Err)
		require.Equal(t, r.Identifier+"\n", r.Stdout.String())
		require.NoError(t, r.Close())
	}
	require.Equal(t, n, seen)
}
