//go:build unix

package dispatch

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/job"
)

// TestResolveAsExecute: what a dry run says of a task (Resolve) is what
// running it does: a task it says cannot run fails, with the same error
// and the exit code that error means, and one it says can run starts the
// program it names. A relative path is found from the task's directory,
// with limits or without.
func TestResolveAsExecute(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	require.NoError(t, os.Mkdir(sub, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(sub, "run.sh"), []byte("#!/bin/sh\necho ran\n"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(sub, "text"), []byte("echo hi\n"), 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(sub, "adir"), 0o755))
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	t.Chdir(dir) // so that "sub" is a relative directory, and ./run.sh is not found from here

	limits := job.Limits{Files: 64}
	tests := []struct {
		name string
		task job.Task
		path string // what Resolve names, when the task can run
		exit int    // the exit code when it cannot
		err  string // the error when it cannot
	}{
		{"a name in PATH", job.Task{Command: "true"}, "", 0, ""},
		{"a name not in PATH", job.Task{Command: "no-such-command-anywhere"}, "", job.ExitNotFound, "command not found: no-such-command-anywhere"},
		{"no command", job.Task{}, "", job.ExitNotFound, "command not found: "},
		{"a path in the task's directory", job.Task{Command: "./run.sh", Dir: "sub"}, "sub/run.sh", 0, ""},
		{"a path in the task's directory, with limits", job.Task{Command: "./run.sh", Dir: "sub", Limits: limits}, "sub/run.sh", 0, ""},
		{"a path not in the task's directory", job.Task{Command: "./run.sh"}, "", job.ExitNotFound, "command not found: ./run.sh"},
		{"a path not in the task's directory, with limits", job.Task{Command: "./run.sh", Limits: limits}, "", job.ExitNotFound, "command not found: ./run.sh"},
		{"not executable", job.Task{Command: "./text", Dir: "sub"}, "", job.ExitNotExecutable, "command not executable: ./text: permission denied"},
		{"not executable, with limits", job.Task{Command: "./text", Dir: "sub", Limits: limits}, "", job.ExitNotExecutable, "command not executable: ./text: permission denied"},
		{"a directory", job.Task{Command: "./adir", Dir: "sub"}, "", job.ExitNotExecutable, "command not executable: ./adir: is a directory"},
		{"a missing directory", job.Task{Command: "true", Dir: "nope"}, "", job.ExitNeverStarted, `cannot start true: dir "nope": no such file or directory`},
		{"a file as the directory", job.Task{Command: "true", Dir: file}, "", job.ExitNeverStarted, `cannot start true: dir "` + file + `": not a directory`},
		{"limits no program can start under", job.Task{Command: "true", Limits: job.Limits{Memory: 1}}, "", job.ExitNeverStarted, "limit memory 1 is below the smallest memory limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newTestLocal(t, LocalOptions{})
			path, rerr := l.Resolve(&tt.task)
			r := l.Execute(context.Background(), &tt.task)
			defer r.Close()
			if tt.err == "" {
				require.NoError(t, rerr)
				if tt.path != "" {
					require.Equal(t, tt.path, path)
				}
				require.NoError(t, r.Err)
				require.Equal(t, 0, r.ExitCode)
				return
			}
			require.ErrorContains(t, rerr, tt.err)
			require.False(t, r.Started)
			require.Equal(t, tt.exit, r.ExitCode)
			require.Equal(t, rerr.Error(), r.Err.Error(), "the run fails as the dry run said")
		})
	}
}
