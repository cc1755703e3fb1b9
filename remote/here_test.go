package remote

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/dispatch"
	"github.com/workerpool/workerpool/dispatch/dispatchtest"
	"github.com/workerpool/workerpool/job"
)

// TestClusterHere: the slots of ":" run their tasks on Here, at most as
// many at once as the login gives, and what Here reports is the result.
func TestClusterHere(t *testing.T) {
	here := dispatchtest.New()
	c, err := New(Options{Hosts: static(t, "3/:"), Transport: &unreachable{}, Here: here})
	require.NoError(t, err)
	defer c.Close()
	require.Equal(t, 3, c.Capacity())
	pool := dispatch.NewPool(c, dispatch.Options{Workers: c.Capacity()})

	const n = 40
	tasks := make(chan job.Task)
	go func() {
		defer close(tasks)
		for i := range n {
			command := "sleep"
			if i%4 == 0 {
				command = "fail"
			}
			tasks <- job.Task{Seq: int64(i + 1), Command: command}
		}
	}()
	failed := 0
	for res := range pool.Run(context.Background(), context.Background(), tasks) {
		require.Equal(t, ":", res.Host, "task %d", res.Seq)
		require.Equal(t, int64(1), here.Attempts(res.Seq), "task %d", res.Seq)
		if res.ExitCode == 1 {
			failed++
		}
	}
	require.Equal(t, n/4, failed)
	require.Equal(t, int64(n), here.Started())
	require.LessOrEqual(t, here.Peak(), int64(3), "no more at once than the slots of :")
}
