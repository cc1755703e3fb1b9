//go:build linux

package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRawFailureLine: in --raw and --tag modes a task that failed for a
// reason other than its own exit status gets one line on stderr that says
// why, after its own stderr; JSON modes keep the reason in the result.
func TestRawFailureLine(t *testing.T) {
	for _, tc := range []struct {
		name, input string
		args        []string
		stderr      string
	}{
		{"command not found", "a\n", []string{"--tag", "--", "no-such-cmd", "{}"},
			"workerpool: task \"a\": command not found: no-such-cmd\n"},
		{"timed out", "5\n", []string{"--tag", "--timeout", "300ms", "--", "sleep"},
			"workerpool: task \"5\": timed out after 300ms\n"},
		{"killed by a signal", "x\n", []string{"--raw", "--", "sh", "-c", "printf partial >&2; kill -9 $$"},
			"partial\nworkerpool: task \"x\": killed by SIGKILL\n"},
		{"could not start", `{"identifier":"d","command":"pwd","dir":"/no/such/dir"}`, []string{"--raw"},
			"workerpool: task \"d\": cannot start pwd: dir \"/no/such/dir\": no such file or directory\n"},
		{"its own exit status", "x\n", []string{"--tag", "--", "sh", "-c", "echo oops >&2; exit 3"},
			"x\toops\n"},
		{"JSON modes", "a\n", []string{"--ndjson", "--", "no-such-cmd", "{}"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runWith(t, tc.input, program, tc.args...)
			require.Equal(t, 1, code, stderr)
			require.Equal(t, tc.stderr, stderr)
		})
	}

	// Among the log lines of -v, each line comes whole.
	var input strings.Builder
	want := map[string]bool{}
	for i := range 50 {
		fmt.Fprintf(&input, "item %d\n", i)
		want[fmt.Sprintf("workerpool: task \"item %d\": command not found: no-such-cmd", i)] = true
	}
	code, stdout, stderr := runWith(t, input.String(), program, "--tag", "-v", "-t", "8", "--", "no-such-cmd")
	require.Equal(t, 1, code, stderr)
	require.Empty(t, stdout)
	for line := range strings.Lines(stderr) {
		line = strings.TrimSuffix(line, "\n")
		if strings.HasPrefix(line, "time=") {
			continue
		}
		require.True(t, want[line], "a line neither logged nor said once: %q", line)
		delete(want, line)
	}
	require.Empty(t, want, "the failures not said")
}
