//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"
	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/internal/slurmtest"
)

// meetNodeTask prints the node it ran on, once a task has run on each of
// the $2 nodes: each marks its node in the folder $1, then waits, a
// minute at most, for the others, so that the node whose agent is up
// first cannot run every task before the other's is.
const meetNodeTask = `{"command":"sh","args":["-c",` +
	`"d=$1 n=$2; : > \"$d/$SLURMD_NODENAME\"; i=0; ` +
	`while set -- \"$d\"/*; [ $# -lt $n ] && [ $i -lt 6000 ]; do i=$((i+1)); sleep 0.01; done; ` +
	`printf %%s \"$SLURMD_NODENAME\"","sh",%q,"2"]}`

// TestSlurm: inside an allocation of two nodes, --slurm runs one agent
// per node through srun, and the tasks on both; no agent's step is left
// once the run is over. Outside an allocation, --slurm is a usage error.
func TestSlurm(t *testing.T) {
	lab := slurmtest.Start(t, 2)
	job := lab.Alloc(t, 2, "-c2")
	input := strings.Repeat(fmt.Sprintf(meetNodeTask, t.TempDir())+"\n", 300)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := lab.Command(ctx, program, "--ndjson", "--slurm")
	cmd.Env = append(cmd.Env, lab.JobEnv(t, job)...)
	cmd.Stdin = strings.NewReader(input)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "stderr: %s", stderr.String())

	used := map[string]int{}
	lines := bufio.NewScanner(&stdout)
	for lines.Scan() {
		var r struct {
			ExitCode int    `json:"exit_code"`
			Host     string `json:"host"`
			Body     string `json:"result_body"`
		}
		require.NoError(t, json.Unmarshal(lines.Bytes(), &r), lines.Text())
		require.Equal(t, 0, r.ExitCode, lines.Text())
		require.Equal(t, r.Host, r.Body, "the task ran on the node its result names")
		used[r.Host]++
	}
	require.Equal(t, 300, used["n1"]+used["n2"], "every task has one result: %v", used)
	require.Positive(t, used["n1"], "%v", used)
	require.Positive(t, used["n2"], "%v", used)

	steps := func() string {
		return strings.TrimSpace(lab.Run(t, "squeue", "-h", "-s", "-j", job, "-o", "%j"))
	}
	deadline := time.Now().Add(20 * time.Second)
	for strings.Contains(steps(), "workerpool-agent") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	require.NotContains(t, steps(), "workerpool-agent", "no agent's step is left")

	out := lab.Command(ctx, program, "--slurm", "--", "true")
	out.Stdin = strings.NewReader("x\n")
	msg, err := out.CombinedOutput()
	require.Error(t, err)
	require.Equal(t, 2, out.ProcessState.ExitCode())
	require.Equal(t, "workerpool: --slurm: not inside a Slurm allocation: run it under salloc or sbatch, or use --slurm-alloc\n", string(msg))
}
