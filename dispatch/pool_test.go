package dispatch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/dispatch/dispatchtest"
	"github.com/workerpool/workerpool/internal/spool"
	"github.com/workerpool/workerpool/job"
)

// feed sends tasks with the given commands, numbered from 1, and closes.
func feed(commands ...string) <-chan job.Task {
	ch := make(chan job.Task)
	go func() {
		defer close(ch)
		for i, c := range commands {
			ch <- job.Task{Seq: int64(i + 1), Identifier: fmt.Sprint(i + 1), Command: c}
		}
	}()
	return ch
}

// runAll runs tasks on p, stopped by nothing.
func runAll(p *Pool, tasks <-chan job.Task) <-chan job.Result {
	return p.Run(context.Background(), context.Background(), tasks)
}

func collect(results <-chan job.Result) map[int64]job.Result {
	got := map[int64]job.Result{}
	for r := range results {
		got[r.Seq] = r
	}
	return got
}

func TestPoolOneResultPerTask(t *testing.T) {
	f := dispatchtest.New()
	p := NewPool(f, Options{Workers: 4})
	tasks := make(chan job.Task)
	go func() {
		defer close(tasks)
		for i := int64(1); i <= 500; i++ {
			task := job.Task{Seq: i, Command: "sleep"}
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
	for r := range runAll(p, tasks) {
		require.False(t, seen[r.Seq], "two results for task %d", r.Seq)
		seen[r.Seq] = true
		count++
		switch r.Seq % 5 {
		case 1:
			require.Equal(t, job.ExitNeverStarted, r.ExitCode)
			require.EqualError(t, r.Err, "invalid")
		case 2:
			require.Equal(t, 1, r.ExitCode)
		default:
			require.Equal(t, 0, r.ExitCode)
		}
	}
	require.Equal(t, 500, count)
	require.LessOrEqual(t, f.Peak(), int64(4))
	require.Equal(t, int64(4), f.Peak(), "four workers should have run at once")
}

func TestPoolRetries(t *testing.T) {
	f := dispatchtest.New()
	p := NewPool(f, Options{Workers: 2, Retries: 2})
	got := collect(runAll(p, feed("fail", "fail-once", "true", "missing")))
	require.Equal(t, 3, got[1].Attempts)
	require.Equal(t, 1, got[1].ExitCode)
	require.Equal(t, 2, got[2].Attempts)
	require.Equal(t, 0, got[2].ExitCode)
	require.Equal(t, 1, got[3].Attempts)
	require.Equal(t, int64(1), f.Attempts(4), "a command that cannot start is not retried")
}

// spillExec fails every attempt with output spilled to a file of its own.
type spillExec struct{ spills []job.Spill }

func (s *spillExec) Execute(ctx context.Context, t *job.Task) job.Result {
	var b spool.Buffer // keeps every byte in a file
	defer b.Release()
	_, _ = b.ReadFrom(strings.NewReader("spilled"))
	out, _, err := b.Output("stdout")
	if err != nil || out.Spill() == nil {
		panic(fmt.Sprintf("no spill file: %v", err))
	}
	s.spills = append(s.spills, out.Spill())
	return job.Result{Seq: t.Seq, Started: true, ExitCode: 1, Stdout: out}
}

// recorder is an Observer that keeps what it is told, with the outputs
// the events' results held at the time.
type recorder struct {
	mu     sync.Mutex
	events []recorded
}

type recorded struct {
	kind    job.EventKind
	seq     int64
	attempt int
	host    string
	spill   job.Spill
}

func (r *recorder) Observe(ev job.Event) {
	rec := recorded{kind: ev.Kind, seq: ev.Task.Seq, attempt: ev.Attempt, host: ev.Host}
	if ev.Result != nil {
		rec.spill = ev.Result.Stdout.Spill()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, rec)
}

// hostEvents lists task seq's events as "kind attempt host".
func (r *recorder) hostEvents(seq int64) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if e.seq == seq {
			out = append(out, fmt.Sprintf("%s %d %s", e.kind, e.attempt, e.host))
		}
	}
	return out
}

func TestPoolRetryReleasesFailedAttempts(t *testing.T) {
	s := &spillExec{}
	obs := &recorder{}
	p := NewPool(s, Options{Workers: 1, Retries: 2, Observer: obs})
	got := collect(runAll(p, feed("fail")))
	require.Len(t, s.spills, 3)
	for _, sp := range s.spills[:2] {
		require.ErrorIs(t, sp.Close(), os.ErrClosed, "a failed attempt's output is released")
	}
	final := got[1]
	require.Same(t, s.spills[2], final.Stdout.Spill(), "the last attempt's output is the result's")
	require.NoError(t, final.Close())
	for _, ev := range obs.events {
		if ev.kind == job.Retrying {
			require.Nil(t, ev.spill, "a retrying event carries no output")
		}
	}
}

// TestPoolEvents: every attempted task is Started, Retrying before each
// further attempt, then Finished; a task never attempted is only Finished.
func TestPoolEvents(t *testing.T) {
	obs := &recorder{}
	p := NewPool(dispatchtest.New(), Options{Workers: 1, Retries: 1, Observer: obs})
	tasks := make(chan job.Task)
	go func() {
		defer close(tasks)
		tasks <- job.Task{Seq: 1, Command: "true"}
		tasks <- job.Task{Seq: 2, Command: "fail"}
		tasks <- job.Task{Seq: 3, Err: errors.New("invalid")}
	}()
	require.Len(t, collect(runAll(p, tasks)), 3)
	// Tasks run side by side; each one's own events come in order.
	perTask := map[int64][]string{}
	for _, ev := range obs.events {
		perTask[ev.seq] = append(perTask[ev.seq], fmt.Sprintf("%s %d", ev.kind, ev.attempt))
	}
	require.Equal(t, map[int64][]string{
		1: {"started 1", "finished 1"},
		2: {"started 1", "retrying 1", "finished 2"},
		3: {"finished 0"},
	}, perTask)
}

// TestPoolIntakeClosed: once the intake is closed, no task starts and the
// waiting ones are answered with its cause, while the running ones finish.
func TestPoolIntakeClosed(t *testing.T) {
	f := dispatchtest.New()
	p := NewPool(f, Options{Workers: 2})
	intake, closeIntake := context.WithCancelCause(context.Background())
	tasks := make(chan job.Task)
	results := p.Run(context.Background(), intake, tasks)
	go func() {
		defer close(tasks)
		for i := int64(1); i <= 5; i++ {
			tasks <- job.Task{Seq: i, Command: "block"}
			if i == 3 {
				closeIntake(job.ErrSkipped)
				f.Release()
			}
		}
	}()
	got := collect(results)
	require.Len(t, got, 5)
	for seq, r := range got {
		if f.Attempts(seq) > 0 {
			require.NoError(t, r.Err, "task %d ran to its end", seq)
			continue
		}
		require.ErrorIs(t, r.Err, job.ErrSkipped, "task %d", seq)
		require.Equal(t, job.ExitNeverStarted, r.ExitCode)
	}
	require.Zero(t, f.Attempts(4)+f.Attempts(5), "no task starts after the intake closed")
}

func TestPoolCancel(t *testing.T) {
	f := dispatchtest.New()
	p := NewPool(f, Options{Workers: 2})
	ctx, cancel := context.WithCancel(context.Background())
	tasks := make(chan job.Task)
	results := p.Run(ctx, ctx, tasks)
	go func() {
		defer close(tasks)
		for i := int64(1); i <= 5; i++ {
			tasks <- job.Task{Seq: i, Command: "block"}
			if i == 3 {
				cancel()
			}
		}
	}()
	got := collect(results)
	require.Len(t, got, 5)
	for _, r := range got {
		require.ErrorIs(t, r.Err, job.ErrCancelled, "task %d", r.Seq)
	}
	require.Equal(t, int64(0), f.Attempts(4)+f.Attempts(5), "no task starts after the cancel")
}

// countingExec answers every task at once and tells calls of each.
type countingExec struct{ calls chan struct{} }

func (c countingExec) Execute(_ context.Context, t *job.Task) job.Result {
	c.calls <- struct{}{}
	return job.Result{Seq: t.Seq, Identifier: t.Identifier, Started: true}
}

// TestPoolSlowReaderHoldsNoWorker checks that a worker whose result the
// caller has not taken yet goes on to its next task: results wait in a
// buffer, so a slot is free once its task has ended, not once its result
// has been written out.
func TestPoolSlowReaderHoldsNoWorker(t *testing.T) {
	const workers = 2
	exec := countingExec{calls: make(chan struct{}, 100)}
	tasks := make(chan job.Task)
	go func() {
		defer close(tasks)
		for i := 1; i <= 10; i++ {
			tasks <- job.Task{Seq: int64(i), Identifier: strconv.Itoa(i), Command: "true"}
		}
	}()
	results := runAll(NewPool(exec, Options{Workers: workers}), tasks)
	// Nothing is received yet: each worker's first result waits in the
	// buffer, and each worker runs a second task.
	for i := range 2 * workers {
		select {
		case <-exec.calls:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d tasks ran while no result was taken; want %d", i, 2*workers)
		}
	}
	require.Len(t, collect(results), 10)
}
