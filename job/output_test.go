package job

import (
	"io"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestOutputSpilled: an output is its head, then its own spill file,
// however many times it is read; closing it closes the file.
func TestOutputSpilled(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "spill")
	require.NoError(t, err)
	_, err = f.WriteString("tail")
	require.NoError(t, err)
	o := Output{Head: []byte("head-"), Spill: f, SpillSize: 4}
	for range 2 {
		b, err := io.ReadAll(o.Reader())
		require.NoError(t, err)
		require.Equal(t, "head-tail", string(b))
	}
	require.NoError(t, o.Close())
	_, err = f.Stat()
	require.ErrorIs(t, err, os.ErrClosed)
}

// closeCounter counts how often it is closed.
type closeCounter struct{ closed int }

func (c *closeCounter) Close() error { c.closed++; return nil }

// TestOutputSharedSpill: an output whose bytes are a section of a file it
// shares reads that section only, and closing it tells the file's owner
// instead of closing the file.
func TestOutputSharedSpill(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "shared")
	require.NoError(t, err)
	defer f.Close()
	_, err = f.WriteString("someone-else|tail|more")
	require.NoError(t, err)

	owner := &closeCounter{}
	o := Output{Head: []byte("head-"), Spill: f, SpillOffset: 13, SpillSize: 4, Shared: owner}
	require.Equal(t, int64(9), o.Len())
	for range 2 {
		b, err := io.ReadAll(o.Reader())
		require.NoError(t, err)
		require.Equal(t, "head-tail", string(b))
	}
	require.Equal(t, "head-tail", o.String())

	require.NoError(t, o.Close())
	require.Equal(t, 1, owner.closed)
	_, err = f.Stat()
	require.NoError(t, err, "the shared file stays open")
}
