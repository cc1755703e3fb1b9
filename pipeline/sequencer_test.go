package pipeline

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/job"
)

func TestSequencerRestoresOrder(t *testing.T) {
	s := newSequencer(8, "")
	in := make(chan job.Result, 5)
	for _, seq := range []int64{3, 1, 5, 2} {
		in <- job.Result{Seq: seq}
	}
	s.skip(4)
	close(in)
	var got []int64
	for r := range s.order(in) {
		got = append(got, r.Seq)
	}
	require.Equal(t, []int64{1, 2, 3, 5}, got)
}

// TestSequencerWindow: a task is admitted only within the window of the
// oldest result not yet passed on.
func TestSequencerWindow(t *testing.T) {
	s := newSequencer(4, "")
	never := make(chan struct{})
	for seq := int64(1); seq <= 4; seq++ {
		s.admit(never, seq) // within the window: returns at once
	}
	admitted := make(chan struct{})
	go func() {
		s.admit(never, 5)
		close(admitted)
	}()
	for _, seq := range []int64{2, 3, 4} {
		require.Empty(t, s.ready(job.Result{Seq: seq}), "task %d waits for task 1", seq)
	}
	select {
	case <-admitted:
		t.Fatal("task 5 admitted while task 1 has no result")
	case <-time.After(50 * time.Millisecond):
	}
	require.Len(t, s.ready(job.Result{Seq: 1}), 4)
	<-admitted

	stop := make(chan struct{})
	close(stop)
	s.admit(stop, 100) // a stop lets every task through
}
