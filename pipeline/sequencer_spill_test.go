package pipeline

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/job"
)

// TestSequencerHoldsCheaply: results that wait for their turn behind a slow
// one hold a few KiB of memory each and, between them all, one file; when
// there is nowhere to put their bytes they are held as they came. Either
// way every result comes out whole and in order, and no file stays open.
func TestSequencerHoldsCheaply(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("needs /proc/self/fd to count open files")
	}
	const n = 150
	tests := []struct {
		name    string
		tmpdir  func(t *testing.T) string
		shared  bool // the held bytes go to one shared file
		maxHeld int  // bytes of memory the held results may keep, at most
	}{
		{"in one shared file", func(t *testing.T) string { return t.TempDir() }, true, (n - 1) * 2 * 4 << 10},
		{"kept as they came when no file can be made", func(t *testing.T) string { return filepath.Join(t.TempDir(), "missing") }, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := t.TempDir() // the results' own spill files
			t.Setenv("TMPDIR", tt.tmpdir(t))
			before := openFiles(t)
			s := newSequencer(n)
			in := make(chan job.Result)
			out := s.order(in)

			var want [n + 1]expected
			ownFiles, memory := 0, 0
			for seq := int64(2); seq <= n; seq++ {
				r, w := spillResult(t, files, seq)
				if r.Stdout.Spill != nil {
					ownFiles++
				}
				memory += cap(r.Stdout.Head) + cap(r.Stderr.Head)
				want[seq] = w
				in <- r
			}
			require.Eventually(t, func() bool { return s.heldCount() == n-1 }, 10*time.Second, time.Millisecond)

			held, opened := s.heldMemory(), openFiles(t)-before
			if tt.shared {
				require.LessOrEqual(t, held, tt.maxHeld, "memory held by %d waiting results", n-1)
				require.LessOrEqual(t, opened, 1, "files held by %d waiting results", n-1)
			} else {
				require.Equal(t, memory, held, "results held as they came")
				require.Equal(t, ownFiles, opened, "results held as they came")
			}

			r, w := spillResult(t, files, 1)
			want[1] = w
			in <- r
			close(in)
			seq := int64(0)
			for r := range out {
				seq++
				require.Equal(t, seq, r.Seq)
				require.Equal(t, want[seq].stdout, r.Stdout.Bytes(), "stdout of %d", seq)
				require.Equal(t, want[seq].stderr, r.Stderr.Bytes(), "stderr of %d", seq)
				require.NoError(t, r.Close())
			}
			require.EqualValues(t, n, seq)
			require.Equal(t, before, openFiles(t), "files left open")
		})
	}
}

// expected is what a result's outputs must read back as.
type expected struct{ stdout, stderr []byte }

// spillResult returns a result for seq, and what it holds, whose outputs
// take one of the shapes an executor makes: bytes in memory past the small
// part a held result keeps, some of them in a spill file of its own (made
// in dir), or a few bytes only.
func spillResult(t *testing.T, dir string, seq int64) (job.Result, expected) {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(seq), 7))
	r := job.Result{Seq: seq, Started: true}
	var want expected
	switch seq % 3 {
	case 0:
		r.Stdout.Head = randomBytes(rng, 20<<10)
	case 1:
		r.Stdout.Head = randomBytes(rng, 32<<10)
		rest := randomBytes(rng, 96<<10+int(seq))
		f, err := os.CreateTemp(dir, "spill-*")
		require.NoError(t, err)
		_, err = f.Write(rest)
		require.NoError(t, err)
		r.Stdout.Spill, r.Stdout.SpillSize = f, int64(len(rest))
		want.stdout = append(want.stdout, r.Stdout.Head...)
		want.stdout = append(want.stdout, rest...)
	default:
		r.Stdout.Head = randomBytes(rng, 100)
	}
	if want.stdout == nil {
		want.stdout = append([]byte(nil), r.Stdout.Head...)
	}
	if seq%2 == 0 {
		r.Stderr.Head = randomBytes(rng, 10<<10)
	}
	want.stderr = append([]byte(nil), r.Stderr.Head...)
	return r, want
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// openFiles counts the file descriptors the process has open.
func openFiles(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(entries)
}

// heldCount is how many results the sequencer holds.
func (s *sequencer) heldCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.held)
}

// heldMemory is how many bytes of memory the held results keep.
func (s *sequencer) heldMemory() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	sum := 0
	for _, r := range s.held {
		if r != nil {
			sum += cap(r.Stdout.Head) + cap(r.Stderr.Head)
		}
	}
	return sum
}

// TestHeldFileReusesSpace: the shared file takes each output's bytes past
// heldHead, uses the space of closed outputs again, gives back unused
// space at its end, and is closed once finished and every output closed.
func TestHeldFileReusesSpace(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
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
	var h heldFile
	outputs := map[string]job.Output{}
	want := map[string][]byte{}
	rng := rand.New(rand.NewPCG(1, 2))
	for i, st := range steps {
		if st.keep != "" {
			o := job.Output{Head: randomBytes(rng, heldHead+int(st.size))}
			want[st.keep] = bytes.Clone(o.Head)
			h.keep(&o)
			require.NotNil(t, o.Shared, "step %d", i)
			require.Len(t, o.Head, heldHead, "step %d", i)
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
	h.finish()
	require.NotNil(t, h.f, "open while an output is")
	require.NoError(t, outputs["f"].Close())
	require.Nil(t, h.f, "closed after the last output")
}
