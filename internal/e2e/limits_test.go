//go:build linux

package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	json "github.com/goccy/go-json"
	"github.com/stretchr/testify/require"
)

// TestProcessLimit runs more tasks at once than RLIMIT_NPROC lets the
// pool's user start, as an unprivileged user (root is exempt from the
// limit): forks that fail with EAGAIN are tried again, the runtime never
// aborts for want of a thread, and every task has its result.
func TestProcessLimit(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run the pool as another user with setpriv")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("needs setpriv (util-linux)")
	}
	// TestMain built the program in a directory the unprivileged user can
	// reach.
	bin := program

	tasks := strings.Repeat(`{"command":"sleep","args":["0.2"]}`+"\n", 200)
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
		"bash", "-c", `ulimit -u 48 && exec "$0" --ndjson -t 64`, bin)
	cmd.Stdin = strings.NewReader(tasks)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "stderr: %s", stderr.String())
	require.Empty(t, stderr.String())
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	require.Len(t, lines, 200, "one result per task")
	for _, line := range lines {
		var r struct {
			ExitCode int `json:"exit_code"`
		}
		require.NoError(t, json.Unmarshal([]byte(line), &r))
		require.Zero(t, r.ExitCode, line)
	}
}
