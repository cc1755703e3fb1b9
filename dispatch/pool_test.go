package dispatch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeExec runs tasks without processes: the command names what happens.
type fakeExec struct {
	running, peak atomic.Int64
	calls         sync.Map // seq -> *atomic.Int64
	release       chan struct{}
}

func (f *fakeExec) Execute(ctx context.Context, t *Task) Result {
	n := f.running.Add(1)
	defer f.running.Add(-1)
	for {
		p := f.peak.Load()
		if n <= p || f.peak.CompareAndSwap(p, n) {
			break
		}
	}
	c, _ := f.calls.LoadOrStore(t.Seq, new(atomic.Int64))
	attempt := c.(*atomic.Int64).Add(1)
	r := Result{Seq: t.Seq, Identifier: t.Identifier, Started: true}
	switch t.Command {
	case "fail":
		r.ExitCode = 1
	case "fail-once":
		if attempt == 1 {
			r.ExitCode = 1
		}
	case "missing":
		r.ExitCode, r.Started, r.Err = ExitNotFound, false, errors.New("command not found")
	case "block":
		select {
		case <-f.release:
		case <-ctx.Done():
			r.ExitCode, r.Err = 143, ErrCancelled
		}
	case "sleep":
		time.Sleep(5 * time.Millisecond)
	}
	return r
}

func (f *fakeExec) attempts(seq int64) int64 {
	c, ok := f.calls.Load(seq)
	if !ok {
		return 0
	}
	return c.(*atomic.Int64).Load()
}

// feed sends tasks with the given commands, numbered from 1, and closes.
func feed(commands ...string) <-chan Task {
	ch := make(chan Task)
	go func() {
		defer close(ch)
		for i, c := range commands {
			ch <- Task{Seq: int64(i + 1), Identifier: fmt.Sprint(i + 1), Command: c}
		}
	}()
	return ch
}

func collect(results <-chan Result) map[int64]Result {
	got := map[int64]Result{}
	for r := range results {
		got[r.Seq] = r
	}
	return got
}

func repeat(c string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = c
	}
	return out
}

func TestPoolOneResultPerTask(t *testing.T) {
	f := &fakeExec{}
	p := NewPool(f, Options{Workers: 4})
	tasks := make(chan Task)
	go func() {
		defer close(tasks)
		for i := int64(1); i <= 500; i++ {
			task := Task{Seq: i, Command: "sleep"}
			switch i % 5 {
			case 1:
				task.Err = errors.New("invalid")
			case 2:
				task.Command = "fail"
			}
			tasks <- task
		}
	}()
	count := 0
	seen := map[int64]bool{}
	for r := range p.Run(context.Background(), tasks) {
		require.False(t, seen[r.Seq], "two results for task %d", r.Seq)
		seen[r.Seq] = true
		count++
		switch r.Seq % 5 {
		case 1:
			require.Equal(t, ExitNeverStarted, r.ExitCode)
			require.EqualError(t, r.Err, "invalid")
		case 2:
			require.Equal(t, 1, r.ExitCode)
		default:
			require.Equal(t, 0, r.ExitCode)
		}
	}
	require.Equal(t, 500, count)
	require.LessOrEqual(t, f.peak.Load(), int64(4))
	require.Equal(t, int64(4), f.peak.Load(), "four workers should have run at once")
}

func TestPoolWindowBoundsRunAhead(t *testing.T) {
	f := &fakeExec{release: make(chan struct{})}
	p := NewPool(f, Options{Workers: 4, Window: 8})
	results := p.Run(context.Background(), feed(append([]string{"block"}, repeat("true", 50)...)...))
	// While task 1 blocks, only tasks 2..8 can finish.
	var early []int64
	for len(early) < 7 {
		early = append(early, (<-results).Seq)
	}
	select {
	case r := <-results:
		t.Fatalf("task %d finished while the head of the window was still running", r.Seq)
	case <-time.After(200 * time.Millisecond):
	}
	require.ElementsMatch(t, []int64{2, 3, 4, 5, 6, 7, 8}, early)
	close(f.release)
	require.Len(t, collect(results), 51-7)
}

func TestPoolRetries(t *testing.T) {
	f := &fakeExec{}
	p := NewPool(f, Options{Workers: 2, Retries: 2})
	got := collect(p.Run(context.Background(), feed("fail", "fail-once", "true", "missing")))
	require.Equal(t, 3, got[1].Attempts)
	require.Equal(t, 1, got[1].ExitCode)
	require.Equal(t, 2, got[2].Attempts)
	require.Equal(t, 0, got[2].ExitCode)
	require.Equal(t, 1, got[3].Attempts)
	require.Equal(t, int64(1), f.attempts(4), "a command that cannot start is not retried")
}

// spillExec fails every attempt with output spilled to a file of its own.
type spillExec struct{ files []*os.File }

func (s *spillExec) Execute(ctx context.Context, t *Task) Result {
	f, err := os.CreateTemp("", "spill")
	if err != nil {
		panic(err)
	}
	os.Remove(f.Name())
	s.files = append(s.files, f)
	return Result{Seq: t.Seq, Started: true, ExitCode: 1, Stdout: Output{Spill: f}}
}

func TestPoolRetryReleasesFailedAttempts(t *testing.T) {
	for _, events := range []bool{false, true} {
		s := &spillExec{}
		p := NewPool(s, Options{Workers: 1, Retries: 2, Events: events})
		var final Result
		for r := range p.Run(context.Background(), feed("fail")) {
			if r.IsResult() {
				final = r
			} else {
				require.Nil(t, r.Stdout.Spill, "an event carries no output")
			}
		}
		require.Len(t, s.files, 3)
		for _, f := range s.files[:2] {
			_, err := f.Stat()
			require.ErrorIs(t, err, os.ErrClosed, "a failed attempt's output is released")
		}
		require.Same(t, s.files[2], final.Stdout.Spill, "the last attempt's output is the result's")
		require.NoError(t, final.Close())
	}
}

func TestPoolFailFast(t *testing.T) {
	f := &fakeExec{}
	p := NewPool(f, Options{Workers: 1, FailFast: true})
	got := collect(p.Run(context.Background(), feed("true", "fail", "true", "true")))
	require.Len(t, got, 4)
	require.Equal(t, 0, got[1].ExitCode)
	require.Equal(t, 1, got[2].ExitCode)
	for _, seq := range []int64{3, 4} {
		require.ErrorIs(t, got[seq].Err, ErrSkipped)
		require.Equal(t, ExitNeverStarted, got[seq].ExitCode)
		require.Zero(t, f.attempts(seq))
	}
}

func TestPoolCancel(t *testing.T) {
	f := &fakeExec{release: make(chan struct{})}
	p := NewPool(f, Options{Workers: 2})
	ctx, cancel := context.WithCancel(context.Background())
	tasks := make(chan Task)
	results := p.Run(ctx, tasks)
	go func() {
		defer close(tasks)
		for i := int64(1); i <= 5; i++ {
			tasks <- Task{Seq: i, Command: "block"}
			if i == 3 {
				cancel()
			}
		}
	}()
	got := collect(results)
	require.Len(t, got, 5)
	for _, r := range got {
		require.ErrorIs(t, r.Err, ErrCancelled, "task %d", r.Seq)
	}
	require.Equal(t, int64(0), f.attempts(4)+f.attempts(5), "no task starts after the cancel")
	select {
	case <-p.Stopped():
	default:
		t.Fatal("a cancelled pool reports that it stopped")
	}
}

func TestPoolRecorded(t *testing.T) {
	f := &fakeExec{}
	p := NewPool(f, Options{Workers: 2, Window: 4, Recorded: func(t *Task) bool { return t.Seq%2 == 0 }})
	got := collect(p.Run(context.Background(), feed(repeat("true", 20)...)))
	require.Len(t, got, 20)
	for seq, r := range got {
		require.Equal(t, seq%2 == 0, r.Recorded)
		require.Equal(t, seq%2 == 0, f.attempts(seq) == 0)
	}
}
