package e2e

import (
	"bytes"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestVersionSetAtBuild checks that -V prints the version given at build
// time, as make build gives git describe's.
func TestVersionSetAtBuild(t *testing.T) {
	bin, err := build(t.TempDir(), "0", "-ldflags", "-X main.version=v1.2.3-test")
	require.NoError(t, err)
	out, err := exec.Command(bin, "-V").Output()
	require.NoError(t, err)
	require.Equal(t, "v1.2.3-test\n", string(out))
}

// peakRSS runs n tasks of `true` through bin at -t 8 in NDJSON mode and
// returns the pool's peak memory as it reports it.
func peakRSS(t *testing.T, bin string, n int) int64 {
	t.Helper()
	input := strings.Repeat(`{"command":"true"}`+"\n", n)
	cmd := exec.Command(bin, "--ndjson", "-t", "8", "-v")
	cmd.Stdin = strings.NewReader(input)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run())
	require.Equal(t, n, bytes.Count(stdout.Bytes(), []byte("\n")), "one result per task")
	m := regexp.MustCompile(`msg=done .*max_rss_kb=(\d+)`).FindSubmatch(stderr.Bytes())
	require.NotNil(t, m, "the verbose summary reports max_rss_kb")
	kb, err := strconv.ParseInt(string(m[1]), 10, 64)
	require.NoError(t, err)
	return kb
}

// TestMemoryDoesNotGrowWithTasks streams 20,000 tasks and checks that the
// pool's peak memory stays close to what 2,000 tasks need: the input is
// never held whole and results are not kept after they are written.
func TestMemoryDoesNotGrowWithTasks(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns 22,000 processes")
	}
	bin := program
	small := peakRSS(t, bin, 2000)
	large := peakRSS(t, bin, 20000)
	t.Logf("peak RSS: %d KiB for 2,000 tasks, %d KiB for 20,000", small, large)
	require.Less(t, float64(large), 1.5*float64(small), "peak memory grows with the number of tasks")
}
