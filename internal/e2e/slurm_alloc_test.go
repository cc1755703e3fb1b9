//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"
	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/internal/slurmtest"
)

// TestSlurmAlloc: --slurm-alloc takes an allocation of its own, runs the
// tasks on its nodes, and gives it back when the run ends; --push sends
// the agent to the nodes with sbcast, and removes it after.
func TestSlurmAlloc(t *testing.T) {
	lab := slurmtest.Start(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := lab.Command(ctx, program, "--ndjson", "--slurm-alloc", "-N 2 -c 2", "--push", "-v", "--", "sh", "-c", `printf '%s %s' "$SLURMD_NODENAME" "$0"; sleep 0.05`)
	cmd.Stdin = strings.NewReader(strings.Repeat("x\n", 40))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "stderr: %s", stderr.String())
	t.Log(stderr.String())
	n := 0
	lines := bufio.NewScanner(&stdout)
	for lines.Scan() {
		var r struct {
			ExitCode int    `json:"exit_code"`
			Host     string `json:"host"`
			Body     string `json:"result_body"`
		}
		require.NoError(t, json.Unmarshal(lines.Bytes(), &r), lines.Text())
		require.Equal(t, 0, r.ExitCode, lines.Text())
		require.True(t, strings.HasPrefix(r.Body, r.Host+" "), lines.Text())
		n++
	}
	require.Equal(t, 40, n)
	t.Log(lab.Run(t, "squeue", "-h", "-t", "all", "-o", "%i %j %T"))
}
