package pipeline

import (
	"slices"
	"strings"
	"testing"

	json "github.com/goccy/go-json"
	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/dispatch/dispatchtest"
	"github.com/workerpool/workerpool/encode"
	"github.com/workerpool/workerpool/job"
)

func TestParseHalt(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"now,fail=1", "now,fail=1"},
		{"soon,fail=3", "soon,fail=3"},
		{"now,fail=50%", "now,fail=50%"},
		{"soon,success=2", "soon,success=2"},
		{"never", "never"},
		{"0", "never"},
		{"1", "soon,fail=1"},
		{"2", "now,fail=1"},
		{"-1", "soon,success=1"},
		{"-2", "now,success=1"},
		{"10%", "soon,fail=10%"},
		{"now,fail=12.5%", "now,fail=12.5%"},
	} {
		h, err := ParseHalt(tc.in)
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, h.String(), tc.in)
	}
	for _, bad := range []string{"", "later,fail=1", "now", "now,fail", "now,done=1", "now,fail=0", "now,fail=x", "now,fail=0%", "now,fail=101%", "soon,success=-1"} {
		_, err := ParseHalt(bad)
		require.Error(t, err, bad)
	}
}

// TestRunHalt: which tasks run, are stopped or are skipped under each
// halt, on one worker so that the order is known: t1 succeeds, t2 and t3
// fail, t4 succeeds.
func TestRunHalt(t *testing.T) {
	for _, tc := range []struct {
		halt      string
		exitCodes []int // of t1..t4; -1 skipped
		onSuccess bool
	}{
		{"never", []int{0, 1, 1, 0}, false},
		{"soon,fail=1", []int{0, 1, -1, -1}, false},
		{"now,fail=2", []int{0, 1, 1, -1}, false},
		{"soon,success=1", []int{0, -1, -1, -1}, true},
		{"soon,success=2", []int{0, 1, 1, 0}, true},
		{"now,fail=50%", []int{0, 1, 1, -1}, false}, // 2 of 4
		{"now,fail=51%", []int{0, 1, 1, 0}, false},  // 3 of 4 never fail
	} {
		t.Run(tc.halt, func(t *testing.T) {
			h, err := ParseHalt(tc.halt)
			require.NoError(t, err)
			f := dispatchtest.New()
			out, sum, err := runFake(t, t.Context(), Config{Mode: encode.NDJSON{}, Ordered: true, Workers: 1, Halt: h}, f,
				tasks("true", "fail", "fail", "true"))
			require.NoError(t, err, "a halt is not a failure of the run")
			require.Equal(t, tc.onSuccess, sum.HaltedOnSuccess)
			got := lines(t, out)
			require.Equal(t, []int64{1, 2, 3, 4}, seqs(got))
			for i, r := range got {
				require.Equal(t, tc.exitCodes[i], r.ExitCode, "t%d", i+1)
				if r.ExitCode == -1 {
					require.True(t, strings.HasPrefix(r.Error, "skipped after "), r.Error)
					require.Contains(t, r.Error, "(--halt "+tc.halt+")")
				}
			}
		})
	}
}

// TestRunHaltNow: halting now stops the running task, which is reported
// as cancelled, and the run still ends without an error of its own.
func TestRunHaltNow(t *testing.T) {
	f := dispatchtest.New()
	out, sum, err := runFake(t, t.Context(), Config{Mode: encode.NDJSON{}, Ordered: true, Workers: 2, Halt: Halt{When: HaltNow, Count: 1}}, f,
		tasks("block", "fail-second", "true"))
	require.NoError(t, err)
	require.False(t, sum.HaltedOnSuccess)
	got := lines(t, out)
	require.Equal(t, []int64{1, 2, 3}, seqs(got))
	require.Equal(t, 143, got[0].ExitCode)
	require.Equal(t, job.ErrCancelled.Error(), got[0].Error)
	require.Equal(t, 1, got[1].ExitCode)
	require.Equal(t, job.ExitNeverStarted, got[2].ExitCode)
}

// TestRunShuffle: every task runs once, in some order; with Ordered the
// results come in the order the tasks ran, and the array keeps input
// order.
func TestRunShuffle(t *testing.T) {
	cmds := repeat("echo", 200)
	f := dispatchtest.New()
	out, _, err := runFake(t, t.Context(), Config{Mode: encode.NDJSON{}, Ordered: true, Workers: 1, Shuffle: true}, f, tasks(cmds...))
	require.NoError(t, err)
	got := seqs(lines(t, out))
	require.Len(t, got, 200)
	require.False(t, slices.IsSorted(got), "200 tasks in input order: not shuffled")
	sorted := slices.Sorted(slices.Values(got))
	for i, seq := range sorted {
		require.Equal(t, int64(i+1), seq)
	}

	f = dispatchtest.New()
	out, _, err = runFake(t, t.Context(), Config{Workers: 4, Shuffle: true}, f, tasks(cmds...))
	require.NoError(t, err)
	require.Contains(t, out, `"seq":1,`)
	var arr []result
	require.NoError(t, json.Unmarshal([]byte(out), &arr))
	for i, r := range arr {
		require.Equal(t, int64(i+1), r.Seq, "the array is in input order")
	}
}
