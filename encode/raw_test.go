package encode

import (
	"bytes"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/job"
)

// TestRaw: each task's stdout is written as it is, its stderr goes to
// RawStderr, and with Tag every line of either starts with the identifier
// and a tab.
func TestRaw(t *testing.T) {
	results := func() <-chan job.Result {
		first := result(1, "one\ntwo\n")
		first.Stderr = job.BytesOutput([]byte("warn\n"))
		return send(first, result(2, "three"))
	}
	tests := []struct {
		name           string
		mode           Raw
		stdout, stderr string
	}{
		{"as it is", Raw{}, "one\ntwo\nthree", "warn\n"},
		{"tagged", Raw{Tag: true}, "t1\tone\nt1\ttwo\nt2\tthree", "t1\twarn\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			sum, err := Write(&stdout, results(), Options{Mode: tt.mode, RawStderr: &stderr})
			require.NoError(t, err)
			require.Equal(t, Summary{Results: 2}, sum)
			require.Equal(t, tt.stdout, stdout.String())
			require.Equal(t, tt.stderr, stderr.String())
		})
	}
}

// TestRawFailure: after a failed task's stderr comes one line that says
// why, when the reason is not the task's own exit status: the pool's
// error, or the signal that killed it. It starts a line of its own, and
// is valid UTF-8 on one line whatever the identifier and the error hold.
func TestRawFailure(t *testing.T) {
	failed := func(id string, edit func(*job.Result)) job.Result {
		r := job.Result{Seq: 1, Identifier: id, ExitCode: 1, Started: true}
		edit(&r)
		return r
	}
	tests := []struct {
		name   string
		mode   Raw
		r      job.Result
		stderr string
	}{
		{"command not found", Raw{Tag: true}, failed("a", func(r *job.Result) {
			r.ExitCode, r.Started, r.Err = job.ExitNotFound, false, errors.New("command not found: no-such-cmd")
		}), "workerpool: task \"a\": command not found: no-such-cmd\n"},
		{"timed out", Raw{}, failed("sleep 5", func(r *job.Result) {
			r.ExitCode, r.TimedOut, r.Signal, r.Err = job.ExitTimedOut, true, "SIGTERM", errors.New("timed out after 1s")
		}), "workerpool: task \"sleep 5\": timed out after 1s\n"},
		{"killed", Raw{}, failed("k", func(r *job.Result) {
			r.ExitCode, r.Signal = 137, "SIGKILL"
		}), "workerpool: task \"k\": killed by SIGKILL\n"},
		{"over a limit", Raw{}, failed("cpu", func(r *job.Result) {
			r.ExitCode, r.Signal, r.Limit = 152, "SIGXCPU", job.LimitCPU
		}), "workerpool: task \"cpu\": killed by SIGXCPU (the cpu limit)\n"},
		{"after the task's stderr, tagged", Raw{Tag: true}, failed("k", func(r *job.Result) {
			r.ExitCode, r.Signal, r.Stderr = 137, "SIGKILL", job.BytesOutput([]byte("one\ntwo\n"))
		}), "k\tone\nk\ttwo\nworkerpool: task \"k\": killed by SIGKILL\n"},
		{"on a line of its own", Raw{}, failed("k", func(r *job.Result) {
			r.ExitCode, r.Signal, r.Stderr = 137, "SIGKILL", job.BytesOutput([]byte("half a line"))
		}), "half a line\nworkerpool: task \"k\": killed by SIGKILL\n"},
		{"one line of valid UTF-8", Raw{}, failed("a\nb\xff\"é", func(r *job.Result) {
			r.ExitCode, r.Err = -1, errors.New("cannot start x: dir \"/a\nb\xfe\": no such file or directory")
		}), "workerpool: task \"a\\nb\uFFFD\\\"é\": cannot start x: dir \"/a\\nb\uFFFD\": no such file or directory\n"},
		{"its own exit status", Raw{Tag: true}, failed("e", func(r *job.Result) {
			r.ExitCode, r.Stderr = 3, job.BytesOutput([]byte("oops\n"))
		}), "e\toops\n"},
		{"cancelled", Raw{}, failed("c", func(r *job.Result) {
			r.ExitCode, r.Signal, r.Err = 143, "SIGTERM", job.ErrCancelled
		}), ""},
		{"skipped", Raw{}, failed("s", func(r *job.Result) {
			r.ExitCode, r.Started, r.Err = job.ExitNeverStarted, false, job.ErrSkipped
		}), ""},
		{"succeeded", Raw{}, result(1, "out"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			_, err := Write(&stdout, send(tt.r), Options{Mode: tt.mode, RawStderr: &stderr})
			require.NoError(t, err)
			require.Equal(t, tt.stderr, stderr.String())
			require.True(t, utf8.Valid(stderr.Bytes()))
		})
	}

	// Without RawStderr, nothing is said.
	var stdout bytes.Buffer
	_, err := Write(&stdout, send(tests[0].r), Options{Mode: Raw{}})
	require.NoError(t, err)
	require.Empty(t, stdout.String())
}
