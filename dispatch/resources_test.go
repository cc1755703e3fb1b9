package dispatch

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/dispatch/dispatchtest"
	"github.com/workerpool/workerpool/job"
)

// requests sends a task for each request, numbered from 1, with command,
// and closes.
func requests(command string, reqs ...job.Request) <-chan job.Task {
	ch := make(chan job.Task)
	go func() {
		defer close(ch)
		for i, r := range reqs {
			ch <- job.Task{Seq: int64(i + 1), Command: command, Request: r}
		}
	}()
	return ch
}

// TestPoolRequests: tasks take as many slots and as much memory as they
// ask for, so that fewer run at once; a task larger than the machine is
// answered with ErrTooLarge, and the others run.
func TestPoolRequests(t *testing.T) {
	two := job.Request{CPUs: 2}
	f := dispatchtest.New()
	got := collect(runAll(NewPool(f, Options{Workers: 4}), requests("sleep", two, two, two, two, two, two)))
	require.Len(t, got, 6)
	require.LessOrEqual(t, f.Peak(), int64(2), "no more than two tasks of 2 slots at once in 4")

	half := job.Request{Memory: 400 << 20}
	f = dispatchtest.New()
	got = collect(runAll(NewPool(f, Options{Workers: 4, Memory: 1 << 30}), requests("sleep", half, half, half, half)))
	require.Len(t, got, 4)
	require.LessOrEqual(t, f.Peak(), int64(2), "no more than two tasks of 400M at once in 1G")

	f = dispatchtest.New()
	got = collect(runAll(NewPool(f, Options{Workers: 2, Memory: 1 << 30}),
		requests("sleep", job.Request{CPUs: 3}, job.Request{Memory: 2 << 30}, job.Request{})))
	require.Len(t, got, 3)
	for _, seq := range []int64{1, 2} {
		require.ErrorIs(t, got[seq].Err, ErrTooLarge)
		require.Equal(t, job.ExitNeverStarted, got[seq].ExitCode)
	}
	require.EqualError(t, got[1].Err, "no place can ever hold the task: it asks for 3 cpus; the largest place has 2 slots (this machine, -j) and 1.0 GiB of memory (this machine)")
	require.NoError(t, got[3].Err)
	require.Equal(t, int64(1), f.Started())
}
