package pipeline

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/encode"
)

// TestOpenJournalCompactsLocked: a resumed journal with lines to drop is
// replaced by its compacted copy, which is locked before it has the
// journal's name: a second pool is refused, and the old file, though
// free to lock now, is no longer the journal (openLocked looks again).
// A compact journal is left as it is.
func TestOpenJournalCompactsLocked(t *testing.T) {
	if !replacesOpenFiles {
		t.Skip("journals are not compacted here")
	}
	path := filepath.Join(t.TempDir(), "j.ndjson")
	require.NoError(t, os.WriteFile(path, []byte(`{"identifier":"a","exit_code":1}
{"identifier":"a","exit_code":0}
{"identifier":"b","exit_code":`), 0o640))
	old, err := os.Open(path)
	require.NoError(t, err)
	defer old.Close()
	oldInfo, err := old.Stat()
	require.NoError(t, err)

	c := &Config{Mode: encode.NDJSON{}, Resume: true, Outfile: path}
	out, journal, err := c.openJournal()
	require.NoError(t, err)
	require.Equal(t, encode.Journal{"a": 1}, journal)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, `{"identifier":"a","exit_code":0}`+"\n", string(data))
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.False(t, os.SameFile(oldInfo, info), "compacted into a new file")
	require.Equal(t, os.FileMode(0o640), info.Mode().Perm(), "with the journal's permissions")

	_, err = openLocked(path, os.O_WRONLY|os.O_APPEND)
	require.ErrorIs(t, err, errLocked, "a second pool on the compacted journal")
	require.NoError(t, lockFile(old), "the old file is no one's")

	_, err = out.w.Write([]byte(`{"identifier":"b","exit_code":0}` + "\n"))
	require.NoError(t, err)
	require.NoError(t, out.finish(true))
	data, err = os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, `{"identifier":"a","exit_code":0}`+"\n"+`{"identifier":"b","exit_code":0}`+"\n", string(data))

	// Compact now: resumed in place.
	info, err = os.Stat(path)
	require.NoError(t, err)
	out, journal, err = c.openJournal()
	require.NoError(t, err)
	require.NoError(t, out.finish(true))
	require.Equal(t, encode.Journal{"a": 1, "b": 1}, journal)
	again, err := os.Stat(path)
	require.NoError(t, err)
	require.True(t, os.SameFile(info, again), "a compact journal is not rewritten")
	require.Equal(t, info.ModTime(), again.ModTime(), "a compact journal is not written")
}
