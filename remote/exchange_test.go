package remote

import (
	"bufio"
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/job"
)

// fakeAgent is a conn to an agent played by the test: it answers each
// request with the reply its answer function gives, after pause, and
// records when each request came.
type fakeAgent struct {
	c    *conn
	came chan time.Time
}

func newFakeAgent(t *testing.T, pause time.Duration, answer func(q request) reply) *fakeAgent {
	t.Helper()
	inR, inW, err := os.Pipe()
	require.NoError(t, err)
	outR, outW, err := os.Pipe()
	require.NoError(t, err)
	t.Cleanup(func() { inW.Close(); outR.Close() })
	a := &fakeAgent{came: make(chan time.Time, 16)}
	go func() {
		defer inR.Close()
		defer outW.Close()
		in := bufio.NewReader(inR)
		for {
			var q request
			if readLine(in, &q) != nil {
				return
			}
			a.came <- time.Now()
			time.Sleep(pause)
			if writeLine(outW, answer(q)) != nil {
				return
			}
			if _, err := outW.Write([]byte("\n")); err != nil { // the empty outputs, and their line break
				return
			}
		}
	}()
	a.c = &conn{host: "h1", stdin: inW, w: bufio.NewWriter(inW), stdout: bufio.NewReader(outR), beat: time.Second,
		tempDir: t.TempDir(), pending: map[uint64]chan delivery{}, dead: make(chan struct{})}
	go func() { _ = a.c.readReplies() }()
	return a
}

// TestStartedAtOnThePoolsClock: a remote task's start is on the pool's
// clock, whatever the host's: its Duration before its reply arrived, and
// never before the pool sent it, even when the host's clock says it ran
// for longer than the exchange took. A task that did not start has none.
func TestStartedAtOnThePoolsClock(t *testing.T) {
	const pause = 100 * time.Millisecond
	for _, tc := range []struct {
		name     string
		duration time.Duration // what the host says
		started  bool
	}{
		{"within the exchange", 20 * time.Millisecond, true},
		{"longer than the exchange", time.Hour, true},
		{"not started", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newFakeAgent(t, pause, func(q request) reply {
				rep := reply{ID: q.ID, ExitCode: job.ExitNeverStarted}
				if tc.started {
					rep.ExitCode, rep.Started, rep.Duration = 0, true, clamped(tc.duration)
				}
				return rep
			})
			before := time.Now()
			r := a.c.run(context.Background(), &job.Task{Seq: 1, Identifier: "one", Command: "true"})
			after := time.Now()
			came := <-a.came
			require.Equal(t, tc.started, r.Started)
			if !tc.started {
				require.True(t, r.StartedAt.IsZero(), "%v", r.StartedAt)
				return
			}
			require.Equal(t, tc.duration, r.Duration, "the host's duration stands")
			require.False(t, r.StartedAt.Before(before), "started %v, before the pool sent it at %v", r.StartedAt, before)
			if tc.duration < pause {
				// Its reply came pause after the request, and the
				// duration before that.
				require.False(t, r.StartedAt.Before(came.Add(pause-tc.duration)), "started %v, the request came at %v", r.StartedAt, came)
				require.False(t, r.StartedAt.Add(r.Duration).After(after), "ended %v, after its reply was taken at %v", r.StartedAt.Add(r.Duration), after)
			} else {
				require.False(t, r.StartedAt.After(came), "started %v, after the request came at %v: not when it was sent", r.StartedAt, came)
			}
		})
	}
}
