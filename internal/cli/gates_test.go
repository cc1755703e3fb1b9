package cli

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRateFlag: --rate reads N/s, N/m, N/h and a plain N (a second), as
// starts a second.
func TestRateFlag(t *testing.T) {
	for text, want := range map[string]startRate{"20/s": 20, "20": 20, "0.5/s": 0.5, "120/m": 2, " 36 / h ": 0.01} {
		var r startRate
		require.NoError(t, r.UnmarshalText([]byte(text)), text)
		require.InDelta(t, float64(want), float64(r), 1e-12, text)
	}
	for _, text := range []string{"", "/s", "0/s", "-1/s", "ten/s", "5/d", "NaN", "Inf/s", "5/s/s"} {
		var r startRate
		require.ErrorContains(t, r.UnmarshalText([]byte(text)), "is not a rate such as 10/s or 100/m", text)
	}
}

// TestGateFlags: the gates' usage errors, each a line and exit 2.
func TestGateFlags(t *testing.T) {
	dir := t.TempDir()
	meminfo := filepath.Join(dir, "meminfo")
	require.NoError(t, os.WriteFile(meminfo, []byte("MemTotal: 1048576 kB\nMemAvailable: 524288 kB\n"), 0o644))
	garbled := filepath.Join(dir, "garbled")
	require.NoError(t, os.WriteFile(garbled, []byte("MemTotal: lots\n"), 0o644))
	tests := []struct {
		args   []string
		stderr string
	}{
		{[]string{"--rate", "fast"}, `workerpool: --rate: "fast" is not a rate such as 10/s or 100/m` + "\n"},
		{[]string{"--load=-1"}, "workerpool: --load must be a load average, 0 (none) or more, not -1\n"},
		{[]string{"--load", "NaN"}, "workerpool: --load must be a load average, 0 (none) or more, not NaN\n"},
		{[]string{"--delay", "soon"}, `workerpool: --delay: "soon" is not a duration such as "30s" or a number of seconds` + "\n"},
		{[]string{"--memfree", "2G", "--meminfo", meminfo}, "workerpool: --memfree is 2.0 GiB, more than the memory of this machine, 1.0 GiB: no task would ever start\n"},
		{[]string{"--memfree", "2G", "--meminfo", garbled}, "workerpool: --memfree: " + garbled + ": MemTotal: \"lots\" is not a size\n"},
		{[]string{"--load", "1", "--loadavg", filepath.Join(dir, "none")}, "workerpool: --load: open " + filepath.Join(dir, "none") + ": no such file or directory\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stderr bytes.Buffer
			code := exitCode(&stderr, run(t.Context(), append(tt.args, "[]"), strings.NewReader(""), io.Discard, &stderr))
			require.Equal(t, ExitUsage, code)
			require.Equal(t, tt.stderr, stderr.String())
		})
	}
	// With hosts, each host checks its own memory.
	var c cli
	_, err := c.parse([]string{"--memfree", "2G", "--meminfo", meminfo, "-S", "h1", "[]"}, io.Discard, io.Discard)
	require.NoError(t, err)
	require.Equal(t, int64(2<<30), c.gates().Host().MemFree)
	require.Zero(t, c.poolGates().MemFree, "the pool leaves --memfree to the hosts")
}
