package dispatch

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/dispatch/dispatchtest"
	"github.com/workerpool/workerpool/internal/sysstat"
	"github.com/workerpool/workerpool/job"
)

// stamping is a dispatchtest.Executor that notes when each attempt starts.
type stamping struct {
	*dispatchtest.Executor
	mu     sync.Mutex
	starts []time.Time
}

func newStamping() *stamping { return &stamping{Executor: dispatchtest.New()} }

func (s *stamping) Execute(ctx context.Context, t *job.Task) job.Result {
	s.mu.Lock()
	s.starts = append(s.starts, time.Now())
	s.mu.Unlock()
	return s.Executor.Execute(ctx, t)
}

// times returns the starts so far, in order.
func (s *stamping) times() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.starts)
}

// seen is an event as gateEvents keeps it.
type seen struct {
	kind     job.EventKind
	seq      int64
	attempt  int
	resource string
}

// gateEvents is an Observer that keeps the events it is told of, with
// the resource they name.
type gateEvents struct {
	mu     sync.Mutex
	events []seen
}

func (r *gateEvents) Observe(ev job.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, seen{ev.Kind, ev.Task.Seq, ev.Attempt, ev.Resource})
}

// of returns the events of the kind, in order.
func (r *gateEvents) of(kind job.EventKind) []seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []seen
	for _, ev := range r.events {
		if ev.kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

// commands returns n times the command c.
func commands(n int, c string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = c
	}
	return out
}

func TestGatesOffCostNothing(t *testing.T) {
	require.Nil(t, newGate(Gates{}), "no gate, no wait: a start pays one nil check")
	require.Nil(t, newMemGuard(Gates{Load: 1, Delay: time.Second}), "no memory watch without MemFree")
	exec := dispatchtest.New()
	require.Same(t, exec, Gated(exec, Gates{}).(*dispatchtest.Executor))
}

func TestDelaySpacesStarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		exec := newStamping()
		begin := time.Now()
		got := collect(runAll(NewPool(exec, Options{Workers: 4, Gates: Gates{Delay: 200 * time.Millisecond}}), feed(commands(10, "sleep")...)))
		require.Len(t, got, 10)
		starts := exec.times()
		require.Len(t, starts, 10)
		require.Equal(t, begin, starts[0], "the first start waits for nothing")
		for i := 1; i < len(starts); i++ {
			require.GreaterOrEqual(t, starts[i].Sub(starts[i-1]), 200*time.Millisecond, "starts %d and %d", i, i+1)
		}
	})
}

func TestRateBoundsStartsPerSecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		exec := newStamping()
		begin := time.Now()
		got := collect(runAll(NewPool(exec, Options{Workers: 8, Gates: Gates{Rate: 20}}), feed(commands(100, "sleep")...)))
		require.Len(t, got, 100)
		starts := exec.times()
		require.GreaterOrEqual(t, starts[len(starts)-1].Sub(begin), 4950*time.Millisecond)
		for i := range starts {
			in := 0
			for _, s := range starts[i:] {
				if s.Sub(starts[i]) <= time.Second {
					in++
				}
			}
			require.LessOrEqual(t, in, 21, "starts in the second from start %d", i+1)
		}
	})
}

func TestLoadHoldsStartsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var load atomic.Value
		load.Store(2.0)
		gates := Gates{Load: 1.5, LoadAverage: func() (float64, error) { return load.Load().(float64), nil }}
		exec, events := newStamping(), &gateEvents{}
		results := runAll(NewPool(exec, Options{Workers: 2, Observer: events, Gates: gates}), feed("sleep", "sleep", "sleep"))
		time.Sleep(3 * time.Second)
		require.Empty(t, exec.times(), "no task starts while the load is above --load")
		require.Empty(t, events.of(job.Started))
		waiting := events.of(job.Waiting)
		require.Len(t, waiting, 2, "each task that waits longer than a second says so once")
		for _, ev := range waiting {
			require.Equal(t, "load", ev.resource)
			require.Equal(t, 1, ev.attempt)
		}
		begin := time.Now()
		load.Store(1.0)
		require.Len(t, collect(results), 3)
		for _, s := range exec.times() {
			require.False(t, s.Before(begin))
		}
	})
}

func TestMemFreeRequeuesTheYoungest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var avail atomic.Int64
		avail.Store(8 << 30)
		gates := Gates{MemFree: 2 << 30, Memory: func() (sysstat.Memory, error) {
			return sysstat.Memory{Available: avail.Load(), Total: 16 << 30}, nil
		}}
		exec, events := dispatchtest.New(), &gateEvents{}
		tasks := make(chan job.Task)
		results := runAll(NewPool(exec, Options{Workers: 2, Observer: events, Gates: gates}), tasks)
		for seq := int64(1); seq <= 2; seq++ {
			tasks <- job.Task{Seq: seq, Command: "block"}
			synctest.Wait() // it runs before the next comes
		}
		close(tasks)
		require.Equal(t, int64(2), exec.Started())
		// The guard looks every gatePoll from the start; this test looks
		// half way between, so that the two never look at once.
		time.Sleep(gatePoll / 2)

		avail.Store(1 << 30) // at half of MemFree: not yet low
		time.Sleep(2 * gatePoll)
		synctest.Wait()
		require.Empty(t, events.of(job.Requeued))

		avail.Store(1<<30 - 1) // low for one look
		time.Sleep(gatePoll)
		synctest.Wait()
		require.Equal(t, []seen{{job.Requeued, 2, 1, "memfree"}}, events.of(job.Requeued), "only the youngest is stopped")
		require.Equal(t, int64(2), exec.Started(), "it does not start again while memory is short")
		time.Sleep(2 * gatePoll)
		synctest.Wait()
		require.Len(t, events.of(job.Requeued), 1, "the memory has a second to come back before another task is stopped")

		avail.Store(4 << 30)
		time.Sleep(2 * gatePoll)
		synctest.Wait()
		require.Equal(t, int64(3), exec.Started())
		exec.Release()
		got := map[int64]job.Result{}
		for r := range results {
			require.NotContains(t, got, r.Seq, "one result per task")
			got[r.Seq] = r
		}
		require.Len(t, got, 2)
		require.Equal(t, 0, got[1].ExitCode)
		require.Equal(t, 1, got[1].Attempts)
		require.Equal(t, 0, got[2].ExitCode)
		require.NoError(t, got[2].Err)
		require.Equal(t, 2, got[2].Attempts, "the stopped attempt counts, without spending retries (0 here)")
		require.Len(t, events.of(job.Started), 2, "a requeued task is started once")
	})
}

func TestMemFreeAboveTotal(t *testing.T) {
	gates := Gates{MemFree: 32 << 30, Memory: func() (sysstat.Memory, error) {
		return sysstat.Memory{Available: 15 << 30, Total: 15<<30 + 512<<20}, nil
	}}
	exec := dispatchtest.New()
	res := Gated(exec, gates).Execute(context.Background(), &job.Task{Seq: 1})
	require.Equal(t, job.ExitNeverStarted, res.ExitCode)
	require.EqualError(t, res.Err, "--memfree 32G is more than the memory of the machine, 15.5G")
	require.Zero(t, exec.Started())

	got := collect(runAll(NewPool(exec, Options{Gates: gates}), feed("true")))
	require.EqualError(t, got[1].Err, "--memfree 32G is more than the memory of the machine, 15.5G", "not a hang")
}

func TestGateWaitEndsWithTheIntake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gates := Gates{Load: 1, LoadAverage: func() (float64, error) { return 9, nil }}
		exec, events := dispatchtest.New(), &gateEvents{}
		intake, stop := context.WithCancel(context.Background())
		results := NewPool(exec, Options{Workers: 2, Observer: events, Gates: gates}).Run(context.Background(), intake, feed("true", "true", "true"))
		time.Sleep(5 * time.Second)
		stop()
		got := collect(results)
		require.Len(t, got, 3)
		for _, r := range got {
			require.ErrorIs(t, r.Err, job.ErrCancelled)
			require.Zero(t, r.Attempts)
		}
		require.Zero(t, exec.Started())
		require.Empty(t, events.of(job.Started))
	})
}
