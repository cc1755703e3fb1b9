package spool

import (
	"bytes"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/job"
)

// TestHeldFileReusesSpace: the shared file takes each output's bytes past
// heldHead, uses the space of closed outputs again, gives back unused
// space at its end, and is closed once finished and every output closed.
func TestHeldFileReusesSpace(t *testing.T) {
	const k = 1 << 10
	steps := []struct {
		keep  string // keep an output of size bytes past heldHead, by this name
		size  int64
		close string // or close the output of this name
		end   int64  // the file's length after the step
		free  int    // unused parts before the end
	}{
		{keep: "a", size: 10 * k, end: 10 * k},
		{keep: "b", size: 20 * k, end: 30 * k},
		{keep: "c", size: 10 * k, end: 40 * k},
		{close: "b", end: 40 * k, free: 1},
		{keep: "d", size: 5 * k, end: 40 * k, free: 1},  // in b's space
		{keep: "e", size: 30 * k, end: 70 * k, free: 1}, // too large for what is left of it
		{close: "e", end: 40 * k, free: 1},              // the end is given back
		{close: "c", end: 15 * k},                       // with what is left of b's space
		{close: "a", end: 15 * k, free: 1},
		{close: "d", end: 0},
		{keep: "f", size: 1, end: 1},
	}
	dir := t.TempDir()
	h := NewHeld(dir)
	outputs := map[string]job.Output{}
	want := map[string][]byte{}
	rng := rand.New(rand.NewPCG(1, 2))
	for i, st := range steps {
		if st.keep != "" {
			o := job.BytesOutput(randomBytes(rng, heldHead+int(st.size)))
			want[st.keep] = bytes.Clone(o.Head())
			h.Keep(&o)
			require.IsType(t, &section{}, o.Spill(), "step %d", i)
			require.Len(t, o.Head(), heldHead, "step %d", i)
			outputs[st.keep] = o
		} else {
			require.NoError(t, outputs[st.close].Close(), "step %d", i)
			require.NoError(t, outputs[st.close].Close(), "step %d: closing again does nothing", i)
			delete(outputs, st.close)
		}
		require.Equal(t, st.end, h.end, "step %d", i)
		require.Len(t, h.free, st.free, "step %d", i)
		info, err := h.f.Stat()
		require.NoError(t, err)
		require.Equal(t, st.end, info.Size(), "step %d: the file's length on disk", i)
		for name, o := range outputs {
			require.Equal(t, want[name], o.Bytes(), "step %d: output %s", i, name)
		}
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "the file is made in the directory given, and unlinked at once")
	h.Finish()
	require.NotNil(t, h.f, "open while an output is")
	require.NoError(t, outputs["f"].Close())
	require.Nil(t, h.f, "closed after the last output")
}

// TestHeldKeep: an output kept in the shared file reads as it did, whatever
// its shape; its own spill file is closed; what is short, already shared,
// or cannot be moved stays as it was.
func TestHeldKeep(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	data := randomBytes(rng, 3*heldHead)
	spilled := func(inMemory int) job.Output {
		t.Helper()
		b := Buffer{InMemory: inMemory, TempDir: t.TempDir()}
		defer b.Release()
		_, err := b.ReadFrom(bytes.NewReader(data))
		require.NoError(t, err)
		o, _, err := b.Output("stdout")
		require.NoError(t, err)
		return o
	}
	tests := []struct {
		name   string
		dir    string
		out    job.Output
		want   []byte
		moved  bool // its bytes past heldHead go to the shared file
		closed bool // its own spill file is closed
	}{
		{"in memory", t.TempDir(), job.BytesOutput(bytes.Clone(data)), data, true, false},
		{"spilled past a long head", t.TempDir(), spilled(2 * heldHead), data, true, true},
		{"spilled past a short head", t.TempDir(), spilled(10), data, true, true},
		{"no longer than heldHead", t.TempDir(), job.BytesOutput(data[:heldHead]), data[:heldHead], false, false},
		{"the zero output", t.TempDir(), job.Output{}, nil, false, false},
		{"no file can be made", t.TempDir() + "/missing", spilled(10), data, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHeld(tt.dir)
			defer h.Finish()
			o := tt.out
			own := o.Spill()
			h.Keep(&o)
			require.Equal(t, tt.want, o.Bytes())
			if tt.moved {
				require.IsType(t, &section{}, o.Spill())
				require.LessOrEqual(t, len(o.Head()), heldHead)
				kept := o
				h.Keep(&kept)
				require.Equal(t, o, kept, "an output in the shared file stays there")
			} else {
				require.Equal(t, own, o.Spill())
			}
			if own != nil && tt.closed {
				require.ErrorIs(t, own.Close(), os.ErrClosed)
			}
			require.NoError(t, o.Close())
		})
	}
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}
