package pipeline

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/internal/spool"
	"github.com/workerpool/workerpool/job"
)

// TestSequencerHoldsCheaply: results that wait for their turn behind a slow
// one hold a few KiB of memory each and, between them all, one file in the
// run's temporary directory; when there is nowhere to put their bytes they
// are held as they came. Either way every result comes out whole and in
// order, and no file stays open.
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
			t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "not-this-one"))
			before := openFiles(t)
			s := newSequencer(n, tt.tmpdir(t))
			in := make(chan job.Result)
			out := s.order(in)

			var want [n + 1]expected
			ownFiles, memory := 0, 0
			for seq := int64(2); seq <= n; seq++ {
				r, w := spillResult(t, files, seq)
				if r.Stdout.Spill() != nil {
					ownFiles++
				}
				memory += cap(r.Stdout.Head()) + cap(r.Stderr.Head())
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
		want.stdout = randomBytes(rng, 20<<10)
		r.Stdout = job.BytesOutput(bytes.Clone(want.stdout))
	case 1:
		want.stdout = randomBytes(rng, 32<<10+96<<10+int(seq))
		b := spool.Buffer{InMemory: 32 << 10, TempDir: dir}
		defer b.Release()
		_, err := b.ReadFrom(bytes.NewReader(want.stdout))
		require.NoError(t, err)
		r.Stdout, _, err = b.Output("stdout")
		require.NoError(t, err)
		require.NotNil(t, r.Stdout.Spill())
	default:
		want.stdout = randomBytes(rng, 100)
		r.Stdout = job.BytesOutput(bytes.Clone(want.stdout))
	}
	if seq%2 == 0 {
		want.stderr = randomBytes(rng, 10<<10)
		r.Stderr = job.BytesOutput(bytes.Clone(want.stderr))
	}
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
			sum += cap(r.Stdout.Head()) + cap(r.Stderr.Head())
		}
	}
	return sum
}
