//go:build unix

package dispatch

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/job"
)

// TestLocalSpillFailure: output that cannot be kept makes the task fail
// with an error that says why; it is never cut silently. The child's own
// exit code stays.
func TestLocalSpillFailure(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	tests := []struct {
		name     string
		script   string
		exitCode int
		err      string // "" when every byte was kept
		stdout   int64  // bytes in result_body
	}{
		{"stdout past the memory part", "head -c 300000 /dev/zero", 0, "cannot keep stdout: open " + missing, 1024},
		{"stderr past the memory part", "head -c 300000 /dev/zero >&2; echo out", 0, "cannot keep stderr: open " + missing, 4},
		{"the child's exit code stays", "head -c 300000 /dev/zero; exit 3", 3, "cannot keep stdout: open " + missing, 1024},
		{"output that fits in memory", "head -c 1000 /dev/zero", 0, "", 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := newTestLocal(t, LocalOptions{ProcessOptions: ProcessOptions{TempDir: missing}, SpillAfter: 1024})
			r := l.Execute(context.Background(), &job.Task{Command: "sh", Args: []string{"-c", tt.script}})
			defer r.Close()
			require.Equal(t, tt.exitCode, r.ExitCode)
			require.Equal(t, tt.stdout, r.Stdout.Len())
			if tt.err == "" {
				require.NoError(t, r.Err)
				require.False(t, r.Failed())
				return
			}
			require.ErrorContains(t, r.Err, tt.err)
			require.ErrorContains(t, r.Err, "no such file or directory")
			require.True(t, r.Failed())
		})
	}
}

// TestLineSplitter: lines are emitted whole however the writes cut them,
// a line longer than job.MaxLine in pieces of that size, and the rest at
// flush.
func TestLineSplitter(t *testing.T) {
	var got []string
	s := &lineSplitter{emit: func(l []byte) { got = append(got, string(l)) }}
	for _, w := range []string{"a", "b\nc", "\n\nd", "e"} {
		n, err := s.Write([]byte(w))
		require.NoError(t, err)
		require.Equal(t, len(w), n)
	}
	require.Equal(t, []string{"ab\n", "c\n", "\n"}, got)
	s.flush()
	require.Equal(t, []string{"ab\n", "c\n", "\n", "de"}, got)

	got = nil
	long := strings.Repeat("x", job.MaxLine+10) + "\n"
	_, _ = s.Write([]byte(long[:100]))
	_, _ = s.Write([]byte(long[100:]))
	s.flush()
	require.Equal(t, []string{long[:job.MaxLine], long[job.MaxLine:]}, got)
}
