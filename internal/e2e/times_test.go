//go:build linux

package e2e

import (
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestStartAndEndTimes: every result of a task that started has
// started_at and ended_at, RFC 3339 in UTC with milliseconds, within the
// run and duration_ms apart, those of its last attempt when it ran again;
// a task that never started has neither.
func TestStartAndEndTimes(t *testing.T) {
	mark := filepath.Join(t.TempDir(), "mark")
	tasks := strings.Join([]string{
		`{"identifier":"quick","command":"true"}`,
		`{"identifier":"slow","command":"sleep","args":["0.2"]}`,
		`{"identifier":"fails","command":"sh","args":["-c","exit 3"]}`,
		`{"identifier":"unknown","command":"no-such-cmd-xyz"}`,
		`{"identifier":"invalid"}`,
		// Fails slowly at first, then succeeds at once.
		`{"identifier":"retried","command":"sh","args":["-c","[ -e \"$0\" ] && exit 0; : > \"$0\"; sleep 0.3; exit 1","` + mark + `"]}`,
	}, "\n") + "\n"
	before := time.Now().Truncate(time.Millisecond)
	got, stderr := runCost(t, program, tasks, "-t", "4", "--retries", "1")
	after := time.Now()
	require.Len(t, got, 6, stderr)

	for _, id := range []string{"quick", "slow", "fails", "retried"} {
		r := got[id]
		require.NotNil(t, r.StartedAt, "%s has started_at", id)
		require.NotNil(t, r.EndedAt, "%s has ended_at", id)
		for _, at := range []string{*r.StartedAt, *r.EndedAt} {
			require.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`, at, id)
		}
		started, err := time.Parse(time.RFC3339, *r.StartedAt)
		require.NoError(t, err, id)
		ended, err := time.Parse(time.RFC3339, *r.EndedAt)
		require.NoError(t, err, id)
		require.False(t, ended.Before(started), "%s: ended %s before it started %s", id, *r.EndedAt, *r.StartedAt)
		require.False(t, started.Before(before), "%s: started %s, before the run at %s", id, *r.StartedAt, before)
		require.False(t, ended.After(after), "%s: ended %s, after the run at %s", id, *r.EndedAt, after)
		// Each is cut to the millisecond, so they are duration_ms apart,
		// give or take one.
		apart := float64(ended.Sub(started)) / float64(time.Millisecond)
		require.LessOrEqual(t, math.Abs(apart-r.DurationMS), 2.0, "%s: %s to %s, and duration_ms %v", id, *r.StartedAt, *r.EndedAt, r.DurationMS)
	}
	require.GreaterOrEqual(t, got["slow"].DurationMS, 200.0)
	retried := got["retried"]
	require.Equal(t, 0, retried.ExitCode)
	require.Equal(t, 2, retried.Attempts)
	require.Less(t, retried.DurationMS, 300.0, "the duration of the last attempt")
	started, err := time.Parse(time.RFC3339, *retried.StartedAt)
	require.NoError(t, err)
	require.False(t, started.Before(before.Add(300*time.Millisecond)), "started %s, in a run from %s: that is the first attempt's start", *retried.StartedAt, before)

	for _, id := range []string{"unknown", "invalid"} {
		r := got[id]
		require.Nil(t, r.StartedAt, "%s never started: no started_at", id)
		require.Nil(t, r.EndedAt, "%s never started: no ended_at", id)
		require.Zero(t, r.DurationMS, id)
	}
	require.Equal(t, 127, got["unknown"].ExitCode)
	require.Equal(t, -1, got["invalid"].ExitCode)
}
