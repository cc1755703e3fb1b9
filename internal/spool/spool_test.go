package spool

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBuffer: a buffer keeps its first bytes in memory and the rest in an
// unlinked file of its own, up to its limit; bytes it drops, past the
// limit or because no file can be made, it reports, and says why when
// they could not be kept.
func TestBuffer(t *testing.T) {
	data := strings.Repeat("0123456789", 20_000) // more than a chunk
	tests := []struct {
		name     string
		buf      Buffer
		missing  bool   // TempDir does not exist
		kept     string // what the output holds
		head     int    // of which in memory
		dropped  bool
		keepErr  bool // the output says why it dropped bytes
		ownSpill bool
	}{
		{"in memory", Buffer{InMemory: len(data)}, false, data, len(data), false, false, false},
		{"spilled", Buffer{InMemory: 1000}, false, data, 1000, false, false, true},
		{"all spilled", Buffer{}, false, data, 0, false, false, true},
		{"cut at the limit, in memory", Buffer{InMemory: len(data), Limit: 500}, false, data[:500], 500, true, false, false},
		{"cut at the limit, spilled", Buffer{InMemory: 1000, Limit: 150_000}, false, data[:150_000], 1000, true, false, true},
		{"no file can be made", Buffer{InMemory: 1000}, true, data[:1000], 1000, true, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			b := tt.buf
			b.TempDir = dir
			if tt.missing {
				b.TempDir = filepath.Join(dir, "missing")
			}
			defer b.Release()
			n, err := b.ReadFrom(strings.NewReader(data))
			require.NoError(t, err)
			require.EqualValues(t, len(data), n, "read to the end")
			out, dropped, err := b.Output("stderr")
			defer func() { _ = out.Close() }() // what was kept, whether or not all was
			require.Equal(t, tt.dropped, dropped)
			if tt.keepErr {
				require.ErrorContains(t, err, "cannot keep stderr: open "+b.TempDir)
				require.ErrorIs(t, err, os.ErrNotExist)
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, tt.kept, out.String())
			require.Len(t, out.Head(), tt.head)
			require.Equal(t, tt.ownSpill, out.Spill() != nil)
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			require.Empty(t, entries, "the spill file is unlinked at once")
			if tt.ownSpill {
				require.NoError(t, out.Close())
				require.ErrorIs(t, out.Close(), os.ErrClosed, "closing the output closes its file")
			}
		})
	}
}

// failAfter reads from r, then fails once r ends.
type failAfter struct{ r io.Reader }

func (f failAfter) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		err = io.ErrClosedPipe
	}
	return n, err
}

// TestReadOutput: ReadOutput keeps a stream as a child's is kept, reads it
// to its end even when it cannot keep it, and returns a read error before
// a keep error.
func TestReadOutput(t *testing.T) {
	big := strings.Repeat("x", 2*DefaultSpillAfter+3)
	dir := t.TempDir()
	out, cut, err := ReadOutput(strings.NewReader(big), "stdout", dir)
	require.NoError(t, err)
	require.False(t, cut)
	require.Len(t, out.Head(), DefaultSpillAfter)
	require.NotNil(t, out.Spill())
	require.Equal(t, big, out.String())
	require.NoError(t, out.Close())

	missing := filepath.Join(dir, "missing")
	r := strings.NewReader(big + "rest")
	out, cut, err = ReadOutput(io.LimitReader(r, int64(len(big))), "stderr", missing)
	require.ErrorContains(t, err, "cannot keep stderr: ")
	require.True(t, cut)
	require.Equal(t, big[:DefaultSpillAfter], out.String())
	require.Equal(t, 4, r.Len(), "read to the end of its part of the stream")

	_, _, err = ReadOutput(failAfter{strings.NewReader(big)}, "stdout", missing)
	require.ErrorIs(t, err, io.ErrClosedPipe)
}

func ExampleReadOutput() {
	// Say an agent's reply announced 11 bytes of stdout, then a next reply.
	stream := bytes.NewBufferString("hello world{\"next\":1}")
	out, truncated, err := ReadOutput(io.LimitReader(stream, 11), "stdout", "")
	if err != nil {
		panic(err)
	}
	defer out.Close()
	fmt.Println(out.Len(), truncated, out.String())
	fmt.Println(stream.String())
	// Output:
	// 11 false hello world
	// {"next":1}
}
