//go:build unix

package dispatch

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/job"
)

// TestLocalLimits: a task starts under the run's limits and its own,
// which win; a task without limits starts without the trampoline.
func TestLocalLimits(t *testing.T) {
	l := newTestLocal(t, LocalOptions{})
	task := job.Task{Command: "sh", Args: []string{"-c", "ulimit -n; ulimit -f"}, Limits: job.Limits{Files: 20}}
	job.Defaults{Limits: job.Limits{Files: 16, FSize: 1 << 20}}.Apply(&task)
	r := l.Execute(context.Background(), &task)
	require.NoError(t, r.Err)
	require.Equal(t, "20\n2048\n", r.Stdout.String(), "files from the task, fsize (in 512-byte blocks) from the run")
	require.NotNil(t, r.Usage)

	plain := newTestLocal(t, LocalOptions{})
	r = plain.Execute(context.Background(), &job.Task{Command: "sh", Args: []string{"-c", "echo $0"}})
	require.Equal(t, "sh\n", r.Stdout.String(), "argv[0] is the command's, with or without limits")
	r = l.Execute(context.Background(), &job.Task{Command: "sh", Args: []string{"-c", "echo $0"}, Limits: job.Limits{Files: 16}})
	require.Equal(t, "sh\n", r.Stdout.String(), "argv[0] is the command's, with or without limits")
}

// TestLocalMemoryFloor: a task whose memory limit is below the smallest
// is not started, rather than left to die of SIGSEGV as it is loaded.
func TestLocalMemoryFloor(t *testing.T) {
	l := newTestLocal(t, LocalOptions{})
	r := l.Execute(context.Background(), &job.Task{Command: "true", Limits: job.Limits{Memory: 1}})
	require.ErrorContains(t, r.Err, "limit memory 1 is below the smallest memory limit, 4M")
	require.Equal(t, job.ExitNeverStarted, r.ExitCode)
	_, err := l.Resolve(&job.Task{Command: "true", Limits: job.Limits{Memory: job.MinMemory - 1}})
	require.ErrorContains(t, err, "below the smallest memory limit", "--dry-run says so too")
}

func TestLimitsRoundTrip(t *testing.T) {
	l := job.Limits{Memory: 1 << 30, CPU: 1500 * time.Millisecond, Files: 64, FSize: 4096}
	got, err := decodeLimits(encodeLimits(l))
	require.NoError(t, err)
	require.Equal(t, job.Limits{Memory: 1 << 30, CPU: 2 * time.Second, Files: 64, FSize: 4096}, got, "CPU in whole seconds, rounded up")
	for _, bad := range []string{"", "cpu", "cpu=x", "cpu=0", "nproc=3"} {
		_, err := decodeLimits(bad)
		require.Error(t, err, bad)
	}
}

func TestLimitOf(t *testing.T) {
	cpu := job.Limits{CPU: time.Second}
	spent := &job.Usage{User: 900 * time.Millisecond, System: 150 * time.Millisecond}
	require.Equal(t, "cpu", limitOf(cpu, "SIGXCPU", nil))
	require.Equal(t, "cpu", limitOf(cpu, "SIGKILL", spent), "killed at the hard bound, its CPU time spent")
	require.Empty(t, limitOf(cpu, "SIGKILL", &job.Usage{User: time.Millisecond}), "killed by someone else")
	require.Empty(t, limitOf(job.Limits{}, "SIGXCPU", nil), "no limit was set: the signal came from elsewhere")
	require.Equal(t, "fsize", limitOf(job.Limits{FSize: 1}, "SIGXFSZ", nil))
	require.Empty(t, limitOf(job.Limits{Memory: 1}, "SIGSEGV", nil), "memory is never certain")
}
