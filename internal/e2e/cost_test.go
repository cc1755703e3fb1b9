//go:build linux

package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// costResult is what the tests read of a result: its cost and limit, and
// its times.
type costResult struct {
	Identifier string   `json:"identifier"`
	ExitCode   int      `json:"exit_code"`
	Attempts   int      `json:"attempts"`
	Body       string   `json:"result_body"`
	Stderr     string   `json:"stderr"`
	Signal     string   `json:"signal"`
	Limit      string   `json:"limit"`
	DurationMS float64  `json:"duration_ms"`
	UserMS     *float64 `json:"user_ms"`
	SysMS      *float64 `json:"sys_ms"`
	MaxRSSKB   *int64   `json:"max_rss_kb"`
	StartedAt  *string  `json:"started_at"`
	EndedAt    *string  `json:"ended_at"`
}

// runCost runs the built program with args on the NDJSON tasks and returns
// its results by identifier, and its stderr.
func runCost(t *testing.T, bin, tasks string, args ...string) (map[string]costResult, string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--ndjson"}, args...)...)
	cmd.Stdin = strings.NewReader(tasks)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	_ = cmd.Run() // a task that fails makes the pool exit 1
	got := map[string]costResult{}
	for line := range strings.Lines(stdout.String()) {
		var r costResult
		require.NoError(t, json.Unmarshal([]byte(line), &r), line)
		got[r.Identifier] = r
	}
	return got, stderr.String()
}

// TestLimits: each limit reaches the task's program before it starts, and
// the result says which limit ended it, where that is certain.
func TestLimits(t *testing.T) {
	bin := program
	big := filepath.Join(t.TempDir(), "big")
	tasks := strings.Join([]string{
		`{"identifier":"busy","command":"sh","args":["-c","while :; do :; done"]}`,
		`{"identifier":"fsize","command":"dd","args":["if=/dev/zero","of=` + big + `","bs=1M","count=3"]}`,
		`{"identifier":"memory","command":"dd","args":["if=/dev/zero","of=/dev/null","bs=500M","count=1"],"limits":{"memory":"100M"}}`,
		`{"identifier":"files","command":"sh","args":["-c","ulimit -n"]}`,
		`{"identifier":"own files","command":"sh","args":["-c","ulimit -n"],"limits":{"files":32}}`,
		`{"identifier":"touch 120M","command":"dd","args":["if=/dev/zero","of=/dev/null","bs=120M","count=1"]}`,
		`{"identifier":"not found","command":"no-such-program-anywhere"}`,
	}, "\n") + "\n"
	start := time.Now()
	got, stderr := runCost(t, bin, tasks, "-t", "7", "--limit-cpu", "1", "--limit-fsize", "1M", "--limit-files", "16", "-v")
	require.Len(t, got, 7, stderr)

	busy := got["busy"]
	require.Equal(t, "cpu", busy.Limit, "%+v", busy)
	require.Equal(t, "SIGXCPU", busy.Signal)
	require.Equal(t, 128+24, busy.ExitCode)
	// The limit bounds the task's CPU time; its rusage says about 1000 ms.
	// Loosely: the kernel checks the limit against CPU time sampled at
	// each tick, while rusage is scaled to the precise run time, and on a
	// busy machine the samples run ahead (785 ms reported at the limit,
	// seen once).
	require.InDelta(t, 1000, *busy.UserMS+*busy.SysMS, 500, "a 1 s busy loop's CPU time")
	require.Greater(t, *busy.UserMS, *busy.SysMS, "a busy loop's CPU time is mostly user time")
	require.Less(t, time.Since(start), 60*time.Second)

	fsize := got["fsize"]
	require.Equal(t, "fsize", fsize.Limit, "%+v", fsize)
	require.Equal(t, "SIGXFSZ", fsize.Signal)
	info, err := os.Stat(big)
	require.NoError(t, err)
	require.Equal(t, int64(1<<20), info.Size(), "the file stops at the limit")

	memory := got["memory"]
	require.NotEqual(t, 0, memory.ExitCode, "%+v", memory)
	require.Contains(t, memory.Stderr, "memory exhausted", "the program sees its allocation fail")
	require.Empty(t, memory.Limit, "a failed allocation is the program's to report")

	require.Equal(t, "16\n", got["files"].Body)
	require.Equal(t, "32\n", got["own files"].Body, "a task's own limit overrides the flag")
	require.GreaterOrEqual(t, *got["touch 120M"].MaxRSSKB, int64(100_000), "a task that touches 120 MiB")
	require.Equal(t, 127, got["not found"].ExitCode, "a command that cannot start fails as it does without limits")
	require.Nil(t, got["not found"].UserMS, "a task that did not start cost nothing")

	require.Contains(t, stderr, "task_max_rss_identifier=\"touch 120M\"", "the totals name the task with the largest peak memory")
}

// TestUsage: every task that started reports its CPU time and peak memory,
// limits or not.
func TestUsage(t *testing.T) {
	bin := program
	got, _ := runCost(t, bin, `{"identifier":"t","command":"true"}`+"\n"+`{"identifier":"sleep","command":"sleep","args":["0.2"]}`+"\n")
	for _, r := range got {
		require.NotNil(t, r.UserMS, "%+v", r)
		require.NotNil(t, r.SysMS, "%+v", r)
		require.NotNil(t, r.MaxRSSKB, "%+v", r)
		require.Positive(t, *r.MaxRSSKB)
		require.Empty(t, r.Limit)
	}
	require.Less(t, *got["sleep"].UserMS+*got["sleep"].SysMS, got["sleep"].DurationMS, "sleeping costs less CPU than its wall time")
}

// TestLimitsUsage: bad limits are usage errors, and --dry-run shows the
// limits each task would run with.
func TestLimitsUsage(t *testing.T) {
	bin := program
	for _, args := range [][]string{{"--limit-memory", "lots"}, {"--limit-cpu", "-1"}, {"--limit-files", "-3"}} {
		cmd := exec.Command(bin, append(args, `[{"command":"true"}]`)...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee, "%v: %s", args, out)
		require.Equal(t, 2, ee.ExitCode(), "%v: %s", args, out)
	}
	out, err := exec.Command(bin, "--dry-run", "--limit-memory", "1G", "--limit-cpu", "1.5",
		`[{"command":"true","limits":{"files":8}}]`).Output()
	require.NoError(t, err)
	require.Contains(t, string(out), `"limits":{"memory":1073741824,"cpu":"2s","files":8}`)
}
