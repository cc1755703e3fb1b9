//go:build linux

package e2e

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"
	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/internal/slurmtest"
)

// readmeSlurmBlocks returns the code blocks of the README's section "On a
// Slurm cluster", in order.
func readmeSlurmBlocks(t *testing.T) []string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(readme), "\n## On a Slurm cluster\n")
	require.True(t, ok, "the README has a section On a Slurm cluster")
	section, _, _ = strings.Cut(section, "\n## ")
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(section, -1) {
		blocks = append(blocks, m[1])
	}
	return blocks
}

// TestSlurmReadme runs the README's Slurm examples as they are written,
// against the lab: the salloc line, the sbatch script, and --slurm-alloc.
// Each runs the tasks of tasks.ndjson on the three nodes and writes their
// results to results.ndjson.
func TestSlurmReadme(t *testing.T) {
	blocks := readmeSlurmBlocks(t)
	require.Len(t, blocks, 3, "the salloc line, the sbatch script and the --slurm-alloc line")
	lab := slurmtest.Start(t, 3)
	env := append(lab.Env(), "PATH="+filepath.Dir(program)+":"+os.Getenv("PATH"))
	tasks := strings.Repeat(`{"command":"sh","args":["-c","printf %s \"$SLURMD_NODENAME\""]}`+"\n", 30)
	for i, name := range []string{"salloc", "sbatch", "slurm-alloc"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, "tasks.ndjson"), []byte(tasks), 0o644))
			cmd := lab.Command(t.Context(), "sh", "-c", blocks[i])
			if name == "sbatch" {
				require.NoError(t, os.WriteFile(filepath.Join(dir, "job.sh"), []byte(blocks[i]), 0o755))
				cmd = lab.Command(t.Context(), "sbatch", "--parsable", "job.sh")
			}
			cmd.Dir = dir
			cmd.Env = append(cmd.Env, env...)
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s", out)
			if name == "sbatch" {
				job := strings.TrimSpace(string(out))
				require.Eventually(t, func() bool {
					return strings.TrimSpace(lab.Run(t, "squeue", "-h", "-t", "all", "-j", job, "-o", "%T")) == "COMPLETED"
				}, time.Minute, 50*time.Millisecond, "the batch job completes")
			}
			checkNodeResults(t, filepath.Join(dir, "results.ndjson"), 30)
		})
	}
	deadline := time.Now().Add(20 * time.Second)
	for strings.Contains(lab.Run(t, "squeue", "-h", "-o", "%T"), "RUNNING") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	require.NotContains(t, lab.Run(t, "squeue", "-h", "-o", "%i %j %T"), "RUNNING", "every allocation is given back")
}

// checkNodeResults checks the file of n results, each of a task that
// printed the node it ran on: all of them exited 0, on a node of the lab,
// each where its host says.
func checkNodeResults(t *testing.T, path string, n int) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	nodes := map[string]int{}
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		var r remoteResult
		require.NoError(t, json.Unmarshal(lines.Bytes(), &r), lines.Text())
		require.Equal(t, 0, r.ExitCode, lines.Text())
		require.Equal(t, r.Host, r.Body, lines.Text())
		nodes[r.Host]++
	}
	require.Equal(t, n, nodes["n1"]+nodes["n2"]+nodes["n3"], "%v", nodes)
}
