package remote

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/dispatch"
	"github.com/workerpool/workerpool/internal/sysstat"
	"github.com/workerpool/workerpool/job"
)

// TestAgentArgvGates: the agents are given the gates of their hosts,
// --memfree and --load, and not those of the pool.
func TestAgentArgvGates(t *testing.T) {
	c := &Cluster{opts: Options{Gates: dispatch.Gates{MemFree: 2 << 30, Load: 0.5, Delay: time.Second, Rate: 3}}}
	argv := c.agentArgv("/opt/workerpool")
	require.Subset(t, argv, []string{"--memfree", "2147483648", "--load", "0.5"})
	require.NotContains(t, argv, "--delay")
	require.NotContains(t, argv, "--rate")

	c = &Cluster{opts: Options{}}
	require.NotContains(t, c.agentArgv("/opt/workerpool"), "--load", "no gate, no flag")
}

// TestAgentHoldsStartsBack: an agent starts no task while its host's load
// is at --load or more, and starts it once the load falls; a task that
// waits can be cancelled.
func TestAgentHoldsStartsBack(t *testing.T) {
	var load atomic.Int64
	load.Store(4)
	in, out, done := agentPipeWith(t, dispatch.Gates{Load: 2, LoadAverage: func() (float64, error) { return float64(load.Load()), nil }})
	replies := make(chan reply, 2)
	go func() {
		for range 2 {
			rep, _, _ := receiveReply(t, out)
			replies <- rep
		}
	}()
	require.NoError(t, writeLine(in, request{ID: 1, Command: "true"}))
	require.NoError(t, writeLine(in, request{ID: 2, Command: "true"}))
	select {
	case rep := <-replies:
		t.Fatalf("task %d ran while the host was loaded: %+v", rep.ID, rep)
	case <-time.After(time.Second):
	}
	next := func() reply {
		select {
		case rep := <-replies:
			return rep
		case <-time.After(30 * time.Second):
			t.Fatal("no reply")
			return reply{}
		}
	}
	require.NoError(t, writeLine(in, request{ID: 2, Cancel: true}))
	rep := next()
	require.Equal(t, uint64(2), rep.ID)
	require.True(t, rep.Cancelled, "a task cancelled while it waits: %+v", rep)
	require.False(t, rep.Started)

	load.Store(1)
	rep = next()
	require.Equal(t, uint64(1), rep.ID)
	require.True(t, rep.Started)
	require.Equal(t, 0, rep.ExitCode)
	in.Close()
	require.NoError(t, <-done)
}

// TestAgentMemFreeAboveTotal: a host with less memory than --memfree
// answers each task with why, rather than holding it for ever.
func TestAgentMemFreeAboveTotal(t *testing.T) {
	in, out, done := agentPipeWith(t, dispatch.Gates{MemFree: 8 << 30, Memory: func() (sysstat.Memory, error) {
		return sysstat.Memory{Available: 1 << 30, Total: 4 << 30}, nil
	}})
	require.NoError(t, writeLine(in, request{ID: 1, Command: "true"}))
	rep, _, _ := receiveReply(t, out)
	require.False(t, rep.Started)
	require.Contains(t, rep.Error, "--memfree 8G is more than the memory of the machine, 4G")
	in.Close()
	require.NoError(t, <-done)
}

// TestAgentHeldPastTimeLimit: a task's time limit counts from its arrival
// at the host, its wait at the host's gates included, so that the host
// answers within it, as the pool expects: one held back for all of it has
// timed out without starting.
func TestAgentHeldPastTimeLimit(t *testing.T) {
	in, out, done := agentPipeWith(t, dispatch.Gates{Load: 2, LoadAverage: func() (float64, error) { return 4, nil }})
	start := time.Now()
	require.NoError(t, writeLine(in, request{ID: 1, Command: "true", Timeout: int64(300 * time.Millisecond)}))
	rep, _, _ := receiveReply(t, out)
	require.Less(t, time.Since(start), 10*time.Second)
	require.False(t, rep.Started)
	require.True(t, rep.TimedOut)
	require.Equal(t, job.ExitTimedOut, rep.ExitCode)
	require.EqualValues(t, "timed out after 300ms without starting: --load held it back", rep.Error)
	in.Close()
	require.NoError(t, <-done)
}
