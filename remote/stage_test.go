//go:build unix

package remote

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestStagedPath: where a file of --transferfile or --return is here and
// on the host.
func TestStagedPath(t *testing.T) {
	tests := []struct {
		dir, p      string
		here, there string
		bad         bool
	}{
		{"", "a.txt", "a.txt", "a.txt", false},
		{"/w", "sub/a.txt", "/w/sub/a.txt", "sub/a.txt", false},
		{"/w", "./a.txt", "/w/a.txt", "a.txt", false},
		{"/w", "/data/./in/a.txt", "/data/./in/a.txt", "in/a.txt", false},
		{"/w", "sub/./in/a.txt", "/w/sub/in/a.txt", "in/a.txt", false},
		{"/w", "/data/a.txt", "", "", true},
		{"/w", "../a.txt", "", "", true},
		{"/w", "sub/../../a.txt", "", "", true},
		{"/w", "", "", "", true},
	}
	for _, tt := range tests {
		here, there, err := stagedPath(tt.dir, tt.p)
		if tt.bad {
			require.Error(t, err, "%q", tt.p)
			continue
		}
		require.NoError(t, err, "%q", tt.p)
		require.Equal(t, filepath.FromSlash(tt.here), here, "%q", tt.p)
		require.Equal(t, tt.there, there, "%q", tt.p)
	}
}

// readStaged reads the agent's lines up to a reply, skipping heartbeats,
// and returns the files returned before it, by path, with their modes.
func readStaged(t *testing.T, r *bufio.Reader) (reply, map[string][]byte, map[string]uint32) {
	t.Helper()
	files, modes := map[string][]byte{}, map[string]uint32{}
	var current string
	for {
		var rep reply
		require.NoError(t, readLine(r, &rep))
		switch {
		case rep.Heartbeat:
		case rep.File != "":
			current = string(rep.File)
			files[current], modes[current] = []byte{}, rep.Mode
		case len(rep.Data) > 0:
			require.NotEmpty(t, current, "data before a file")
			files[current] = append(files[current], rep.Data...)
		default:
			out := make([]byte, rep.Stdout+rep.Stderr+1)
			_, err := io.ReadFull(r, out)
			require.NoError(t, err)
			return rep, files, modes
		}
	}
}

// TestAgentStagesFiles: the agent writes the files put for a task, with
// their modes, in a directory of the task's own, runs the task there,
// sends back what it returns in chunks before its reply, says which file
// it could not return, and with Cleanup leaves nothing behind; files put
// for a task cancelled before it is sent are removed, and the run's
// directory goes when the agent ends.
func TestAgentStagesFiles(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	in, out, done := agentPipe(t)
	big := make([]byte, chunkSize*2+100)
	for i := range big {
		big[i] = byte(i * 7)
	}
	send := func(q request) { require.NoError(t, writeLine(in, q)) }
	send(request{ID: 1, Put: "sub/in.bin", Mode: 0o640})
	send(request{ID: 1, Data: big[:chunkSize]})
	send(request{ID: 1, Data: big[chunkSize:]})
	send(request{ID: 2, Put: "other.txt", Mode: 0o600, Data: nil})
	send(request{ID: 2, Data: []byte("never run")})
	send(request{ID: 2, Cancel: true})
	send(request{ID: 1, Command: "sh", Args: []string{"-c", `test -n "$(find sub/in.bin -perm 640)" && cat sub/in.bin sub/in.bin > out.bin && chmod 751 out.bin`},
		Staged: true, Return: []string{"out.bin", "none.txt"}, Cleanup: true})

	rep, files, modes := readStaged(t, out)
	require.Equal(t, 0, rep.ExitCode, "the file came whole, with its mode: %s", rep.Error)
	require.Contains(t, string(rep.Error), "none.txt", "the file it could not return is named")
	require.Equal(t, append(append([]byte{}, big...), big...), files["out.bin"])
	require.EqualValues(t, 0o751, modes["out.bin"])
	entries, err := filepath.Glob(filepath.Join(tmp, "workerpool-files-*", "*"))
	require.NoError(t, err)
	require.Empty(t, entries, "the task's files, and those put for the task cancelled, are gone")

	require.NoError(t, in.Close())
	require.NoError(t, <-done)
	left, err := os.ReadDir(tmp)
	require.NoError(t, err)
	require.Empty(t, left, "the run's directory goes with the agent")
}
