//go:build linux

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	json "github.com/goccy/go-json"
	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/internal/slurmtest"
)

// slurmResult is a result line of --ndjson, as the Slurm tests read it.
type slurmResult struct {
	Identifier string `json:"identifier"`
	ExitCode   int    `json:"exit_code"`
	Host       string `json:"host"`
	Body       string `json:"result_body"`
	Error      string `json:"error"`
}

// slurmPool is a workerpool run in the lab's environment, its results read
// as they come.
type slurmPool struct {
	cmd     *exec.Cmd
	results chan slurmResult
	stderr  lockedBuffer
	done    chan struct{} // closed once stdout has ended
}

// startSlurmPool starts the program with args and env added to the lab's
// environment, input as its stdin, and reads its results as they come.
func startSlurmPool(t *testing.T, lab *slurmtest.Cluster, env []string, input string, args ...string) *slurmPool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	p := &slurmPool{cmd: lab.Command(ctx, program, args...), results: make(chan slurmResult, 10000), done: make(chan struct{})}
	p.cmd.Env = append(p.cmd.Env, env...)
	p.cmd.Stdin = strings.NewReader(input)
	p.cmd.Stderr = &p.stderr
	stdout, err := p.cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start())
	go func() {
		defer close(p.done)
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			var r slurmResult
			if err := json.Unmarshal(lines.Bytes(), &r); err != nil {
				r = slurmResult{Error: fmt.Sprintf("not a result: %q", lines.Text())}
			}
			p.results <- r
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	return p
}

// wait waits for the run to end, and returns its exit status and the
// results not yet taken.
func (p *slurmPool) wait(t *testing.T) (int, []slurmResult) {
	t.Helper()
	<-p.done
	err := p.cmd.Wait()
	var exit *exec.ExitError
	if err != nil && !errorsAs(err, &exit) {
		t.Fatalf("workerpool: %v; stderr: %s", err, p.stderr.String())
	}
	close(p.results)
	var rest []slurmResult
	for r := range p.results {
		rest = append(rest, r)
	}
	return p.cmd.ProcessState.ExitCode(), rest
}

func errorsAs(err error, exit **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	*exit = e
	return ok
}

// waitFiles waits, 30 s at most, until the folder dir holds n files.
func waitFiles(t *testing.T, dir string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		names, _ := os.ReadDir(dir)
		if len(names) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d files in %s, not %d, after 30 s", len(names), dir, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leftOnNodes returns the names of the lab's processes other than its
// daemons: steps, agents and tasks.
func leftOnNodes(lab *slurmtest.Cluster) []string {
	var left []string
	for _, pid := range lab.Processes() {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		switch name := strings.TrimSpace(string(comm)); name {
		case "slurmctld", "slurmscriptd", "slurmd", "munged", "":
		default:
			left = append(left, name)
		}
	}
	return left
}

// allocations returns the states of the lab's jobs named as the pool
// names its own allocations.
func allocations(t *testing.T, lab *slurmtest.Cluster) []string {
	return strings.Fields(lab.Run(t, "squeue", "-h", "-t", "all", "-n", "workerpool-agent", "-o", "%T"))
}

// TestSlurmAlloc: --slurm-alloc takes an allocation of its own, runs the
// tasks on its nodes with -j of them at once on each, and gives the
// allocation back when the run ends. --push sends the agent to the nodes
// with sbcast, and removes it after.
func TestSlurmAlloc(t *testing.T) {
	lab := slurmtest.Start(t, 3)
	running := t.TempDir()
	// Each task marks itself running on its node, notes how many run
	// there with it, then waits a second; it prints its node, that count,
	// and the program its parent, the agent, runs.
	task := `m="$0/$SLURMD_NODENAME.$$"; : > "$m"; set -- "$0/$SLURMD_NODENAME".*; n=$#; sleep 1; rm "$m"; ` +
		`printf '%s %s %s' "$SLURMD_NODENAME" "$n" "$(readlink /proc/$PPID/exe)"`
	start := time.Now()
	p := startSlurmPool(t, lab, nil, strings.Repeat(running+"\n", 12),
		"--ndjson", "--slurm-alloc", "-N 3 -c 4", "-j", "2", "--push", "--", "sh", "-c", task)
	code, results := p.wait(t)
	elapsed := time.Since(start)
	require.Equal(t, 0, code, p.stderr.String())
	require.Len(t, results, 12)
	agent := fmt.Sprintf(`^/tmp/workerpool-\d+\.%d$`, p.cmd.Process.Pid)
	perNode := map[string]int{}
	for _, r := range results {
		require.Equal(t, 0, r.ExitCode, "%+v\n%s", r, p.stderr.String())
		var node, exe string
		var n int
		_, err := fmt.Sscan(r.Body, &node, &n, &exe)
		require.NoError(t, err, r.Body)
		require.Equal(t, r.Host, node, "the task ran on the node its result names")
		require.LessOrEqual(t, n, 2, "-j 2: two tasks at most at once on %s", node)
		require.Regexp(t, agent, exe, "--push: the agent runs from the copy in the node's /tmp")
		perNode[node]++
	}
	require.Len(t, perNode, 3, "every node ran tasks: %v", perNode)
	require.GreaterOrEqual(t, elapsed, 2*time.Second, "12 tasks of 1 s in 6 slots take two rounds")

	copies, err := filepath.Glob(fmt.Sprintf("/tmp/workerpool-*.%d", p.cmd.Process.Pid))
	require.NoError(t, err)
	require.Empty(t, copies, "--push removes its copies at the end")
	states := allocations(t, lab)
	require.Len(t, states, 1)
	require.NotEqual(t, "RUNNING", states[0], "the allocation is given back")
}

// TestSlurmAllocInterrupt: SIGINT ends a --slurm-alloc run with exit 130
// and gives the allocation back, its tasks and agents gone.
func TestSlurmAllocInterrupt(t *testing.T) {
	lab := slurmtest.Start(t, 2)
	running := t.TempDir()
	p := startSlurmPool(t, lab, nil, strings.Repeat(running+"\n", 6),
		"--ndjson", "--slurm-alloc", "-N 2 -c 2", "--", "sh", "-c", `: > "$0/$$"; exec sleep 300`)
	waitFiles(t, running, 4)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGINT))
	code, results := p.wait(t)
	require.Equal(t, 130, code, p.stderr.String())
	require.Len(t, results, 6, "every task has its result")
	states := allocations(t, lab)
	require.Len(t, states, 1)
	require.NotEqual(t, "RUNNING", states[0], "the allocation is given back")
	require.Eventually(t, func() bool { return len(leftOnNodes(lab)) == 0 }, 20*time.Second, 50*time.Millisecond,
		"no task or agent is left on the nodes: %v", leftOnNodes(lab))
}

// TestSlurmAllocationEnds: when a node of an allocation made without
// --no-kill goes down, Slurm ends the whole job. The results written are
// kept, every other task gets one result that says the allocation ended,
// and the run exits 1, at once.
func TestSlurmAllocationEnds(t *testing.T) {
	lab := slurmtest.Start(t, 2)
	out := lab.Run(t, "sh", "-c", "salloc --no-shell -N 2 -J plain 2>&1")
	var job string
	_, err := fmt.Sscanf(out[strings.Index(out, "Granted job allocation "):], "Granted job allocation %s", &job)
	require.NoError(t, err, out)
	running := t.TempDir()
	input := strings.Repeat(`{"identifier":"quick","command":"true"}`+"\n", 4) +
		strings.Repeat(fmt.Sprintf(`{"identifier":"slow","command":"sh","args":["-c",": > \"$0/$$\"; exec sleep 300",%q]}`, running)+"\n", 10)
	p := startSlurmPool(t, lab, lab.JobEnv(t, job), input, "--ndjson", "--slurm", "-j", "1")
	for range 4 {
		r := <-p.results
		require.Equal(t, "quick", r.Identifier, "%+v", r)
		require.Equal(t, 0, r.ExitCode, "%+v", r)
	}
	waitFiles(t, running, 2)
	lab.Down(t, "n2")
	code, results := p.wait(t)
	require.Equal(t, 1, code, p.stderr.String())
	require.Len(t, results, 10, "every task has one result")
	for _, r := range results {
		require.Equal(t, -1, r.ExitCode, "%+v", r)
		require.Contains(t, r.Error, "the Slurm allocation ended", "%+v", r)
	}
}

// TestSlurmAllocKilled: a pool killed by SIGKILL leaves no agent, step or
// task behind, since each agent's input ends; its allocation stays, and
// scancel --me --name workerpool-agent, as the README says, ends it.
func TestSlurmAllocKilled(t *testing.T) {
	lab := slurmtest.Start(t, 2)
	running := t.TempDir()
	p := startSlurmPool(t, lab, nil, strings.Repeat(running+"\n", 6),
		"--ndjson", "--slurm-alloc", "-N 2 -c 2", "--", "sh", "-c", `: > "$0/$$"; exec sleep 300`)
	waitFiles(t, running, 4)
	require.NoError(t, p.cmd.Process.Kill())
	code, _ := p.wait(t)
	require.Equal(t, -1, code, "killed")
	require.Eventually(t, func() bool { return len(leftOnNodes(lab)) == 0 }, 30*time.Second, 50*time.Millisecond,
		"no task or agent is left on the nodes: %v", leftOnNodes(lab))
	require.Equal(t, []string{"RUNNING"}, allocations(t, lab), "the allocation outlives a killed pool")
	lab.Run(t, "scancel", "--me", "--name", "workerpool-agent")
	require.Eventually(t, func() bool {
		states := allocations(t, lab)
		return len(states) == 1 && states[0] != "RUNNING"
	}, 20*time.Second, 50*time.Millisecond, "scancel by name ends it")
}
