package remote

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/job"
)

// TestConnectBackoff: a host that cannot be reached is down, at once, and
// is tried again after 1 s, then after twice as long each time, up to a
// minute; once Close has come it is not tried again, and the transport is
// closed.
func TestConnectBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := &unreachable{}
		start := time.Now()
		c, err := New(Options{Hosts: static(t, "h1"), Transport: tr})
		require.NoError(t, err)
		synctest.Wait()
		_, err = c.Acquire(context.Background(), job.Request{CPUs: 1})
		require.EqualError(t, err, "no host left to run on (h1: cannot start unreachable: h1: no route to host)")

		time.Sleep(210 * time.Second)
		require.NoError(t, c.Close())
		s := time.Second
		require.Equal(t, []time.Duration{0, 1 * s, 3 * s, 7 * s, 15 * s, 31 * s, 63 * s, 123 * s, 183 * s}, tr.triedAt("h1", start))
		require.Equal(t, 1, tr.closed)
	})
}

// TestClusterFollowsTheLoginFile: a host added to the login file is
// tried within a poll of the change, and one removed from it is not tried
// again.
func TestClusterFollowsTheLoginFile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "hosts")
		require.NoError(t, os.WriteFile(path, []byte("h1\n"), 0o644))
		file, err := LoginFile(path, 0)
		require.NoError(t, err)
		tr := &unreachable{}
		start := time.Now()
		c, err := New(Options{Hosts: file, Transport: tr})
		require.NoError(t, err)
		defer c.Close()

		// h1 is tried at 0, 1 and 3 s, and would be at 7 s; the file is
		// looked at every second, and changes at 4.5 s.
		time.Sleep(4500 * time.Millisecond)
		// Of another size: a rewrite within the file system's tick of the
		// first, as fast as this, may keep its time of change.
		require.NoError(t, os.WriteFile(path, []byte("1/h2\n"), 0o644))
		time.Sleep(loginPoll)
		s := time.Second
		require.Equal(t, []time.Duration{5 * s}, tr.triedAt("h2", start))
		time.Sleep(time.Minute)
		require.Equal(t, []time.Duration{0, 1 * s, 3 * s}, tr.triedAt("h1", start))
		_, err = c.Acquire(context.Background(), job.Request{CPUs: 1})
		require.ErrorContains(t, err, "no host left to run on (h2: ")
	})
}

// endedAlloc is an unreachable transport whose allocation has ended:
// its hosts are down for good.
type endedAlloc struct{ unreachable }

func (*endedAlloc) ended() error { return fmt.Errorf("%w: job 7 is CANCELLED", ErrAllocationEnded) }

// TestAllocationEnded: once the transport says the allocation has ended,
// its hosts are not tried again, and a task waiting for a slot is told
// that the allocation ended, and nothing else.
func TestAllocationEnded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := &endedAlloc{}
		start := time.Now()
		c, err := New(Options{Hosts: static(t, "n1,n2"), Transport: tr})
		require.NoError(t, err)
		synctest.Wait()
		res := c.Execute(context.Background(), &job.Task{Command: "true"})
		require.Equal(t, -1, res.ExitCode)
		require.EqualError(t, res.Err, "the Slurm allocation ended: job 7 is CANCELLED")
		require.ErrorIs(t, res.Err, ErrAllocationEnded)

		time.Sleep(5 * time.Minute)
		require.NoError(t, c.Close())
		require.Equal(t, []time.Duration{0}, tr.triedAt("n1", start))
		require.Equal(t, []time.Duration{0}, tr.triedAt("n2", start))
	})
}
