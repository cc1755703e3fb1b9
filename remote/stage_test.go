//go:build unix

package remote

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/job"
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
		case rep.Data > 0:
			require.NotEmpty(t, current, "data before a file")
			var data bytes.Buffer
			require.NoError(t, readData(r, rep.Data, &data))
			files[current] = append(files[current], data.Bytes()...)
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
	sendData := func(id uint64, data []byte) {
		require.NoError(t, writeData(in, request{ID: id, Data: int64(len(data))}, data))
	}
	send(request{ID: 1, Put: "sub/in.bin", Mode: 0o640, Size: int64(len(big))})
	sendData(1, big[:chunkSize])
	sendData(1, big[chunkSize:2*chunkSize])
	send(request{ID: 2, Put: "other.txt", Mode: 0o600, Size: 9})
	sendData(2, []byte("never run"))
	sendData(1, big[2*chunkSize:])
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

// TestReadDataFraming: a chunk longer than chunkSize, one cut short, and
// one not ended by a line break are errors of the stream.
func TestReadDataFraming(t *testing.T) {
	var sink bytes.Buffer
	require.NoError(t, readData(bufio.NewReader(strings.NewReader("abc\n")), 3, &sink))
	require.Equal(t, "abc", sink.String())
	require.ErrorContains(t, readData(bufio.NewReader(strings.NewReader("")), chunkSize+1, &sink), "past the most")
	require.ErrorIs(t, readData(bufio.NewReader(strings.NewReader("ab")), 3, &sink), io.ErrUnexpectedEOF)
	require.ErrorContains(t, readData(bufio.NewReader(strings.NewReader("abcd")), 3, &sink), "not a line break")
}

// TestAgentStagedFileCutShort: a file whose bytes do not make up the size
// its put gave fails its task, which does not start.
func TestAgentStagedFileCutShort(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	in, out, _ := agentPipe(t)
	require.NoError(t, writeLine(in, request{ID: 1, Put: "a.txt", Size: 10}))
	require.NoError(t, writeData(in, request{ID: 1, Data: 5}, []byte("12345")))
	require.NoError(t, writeLine(in, request{ID: 1, Command: "true", Staged: true}))
	rep, _, _ := readStaged(t, out)
	require.Equal(t, -1, rep.ExitCode)
	require.False(t, rep.Started)
	require.Contains(t, string(rep.Error), "5 of its 10 bytes came")
}

// TestReturnedFileCutShort: a returned file that does not come whole is
// not put in place, and its error says so; one that does is.
func TestReturnedFileCutShort(t *testing.T) {
	dir := t.TempDir()
	in := &incoming{}
	in.begin(filepath.Join(dir, "short"), 0o640, 10)
	_, err := in.tmp.Write([]byte("12345"))
	require.NoError(t, err)
	in.got = 5
	in.finish()
	in.begin(filepath.Join(dir, "sub", "whole"), 0o640, 0)
	in.finish()
	require.NoFileExists(t, filepath.Join(dir, "short"))
	require.Len(t, in.errs, 1)
	require.ErrorContains(t, in.errs[0], "5 of its 10 bytes came")
	info, err := os.Stat(filepath.Join(dir, "sub", "whole"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o640), info.Mode().Perm())
	left, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, left, 1, "no temporary file is left: %v", left)
}

// TestStageSendsAFileOnce: a file named twice, as --transfer and
// --transferfile {} both name the item, is sent once.
func TestStageSendsAFileOnce(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a"), []byte("x"), 0o644))
	s, err := stageOf(&job.Task{Dir: dir, Transfer: []string{"a", "a"}})
	require.NoError(t, err)
	defer s.close()
	require.Len(t, s.sends, 1)
	require.Equal(t, "a", s.sends[0].there)
}
