//go:build linux

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/internal/slurmtest"
)

// markedIn counts the files in dir.
func markedIn(t *testing.T, dir string) int {
	t.Helper()
	files, err := os.ReadDir(dir)
	require.NoError(t, err)
	return len(files)
}

// allocations returns the states of the lab's jobs named as the pool
// names its own allocations.
func allocations(t *testing.T, lab *slurmtest.Cluster) []string {
	t.Helper()
	return strings.Fields(lab.Run(t, "squeue", "-h", "-t", "all", "-n", "workerpool-agent", "-o", "%T"))
}

// givenBack checks that the lab's one allocation made by the pool has
// been given back.
func givenBack(t *testing.T, lab *slurmtest.Cluster) {
	t.Helper()
	states := allocations(t, lab)
	require.Len(t, states, 1)
	require.NotEqual(t, "RUNNING", states[0], "the allocation is given back")
}

// nothingLeft waits, 30 seconds at most, until no step, agent or task of
// the pool is left on the lab's nodes.
func nothingLeft(t *testing.T, lab *slurmtest.Cluster) {
	t.Helper()
	waitUntil(t, 30*time.Second, "no task or agent left on the nodes", func() bool {
		for _, n := range lab.Nodes() {
			if len(nodeLeft(lab, n)) > 0 {
				return false
			}
		}
		return true
	})
}

// TestSlurmAlloc: --slurm-alloc takes an allocation of its own, runs the
// tasks on its nodes with -j of them at once on each, and gives the
// allocation back when the run ends. --push sends the agent to the nodes
// with sbcast, and removes it after.
func TestSlurmAlloc(t *testing.T) {
	lab := slurmtest.Start(t, 3)
	logOnFailure(t, lab)
	// Each task marks itself running on its node, notes how many run
	// there with it, then waits a second; it prints its node, that count,
	// and the program its parent, the agent, runs.
	task := `m="$1/$SLURMD_NODENAME.$$"; : > "$m"; set -- "$1/$SLURMD_NODENAME".*; n=$#; sleep 1; rm "$m"; ` +
		`printf '%s %s %s' "$SLURMD_NODENAME" "$n" "$(readlink /proc/$PPID/exe)"`
	begin := time.Now()
	p := startInLab(t, lab, nil, strings.Repeat(shTask(task, t.TempDir()), 12),
		"--ndjson", "--slurm-alloc", "-N 3 -c 4", "-j", "2", "--push")
	code, results := p.wait()
	took := time.Since(begin)
	require.Equal(t, 0, code, p.stderr.String())
	require.Len(t, results, 12)
	agent := fmt.Sprintf(`^/tmp/workerpool-\d+\.%d$`, p.cmd.Process.Pid)
	perNode := map[string]int{}
	for _, r := range results {
		require.Equal(t, 0, r.ExitCode, "%+v", r)
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
	require.GreaterOrEqual(t, took, 2*time.Second, "12 tasks of 1 s in 6 slots take two rounds")

	copies, err := filepath.Glob(fmt.Sprintf("/tmp/workerpool-*.%d", p.cmd.Process.Pid))
	require.NoError(t, err)
	require.Empty(t, copies, "--push removes its copies at the end")
	givenBack(t, lab)
}

// startSleeping starts a --slurm-alloc run of six tasks that sleep for
// five minutes on two nodes of two CPUs, and returns once four of them
// run.
func startSleeping(t *testing.T, lab *slurmtest.Cluster) *pool {
	t.Helper()
	running := t.TempDir()
	p := startInLab(t, lab, nil, strings.Repeat(shTask(`: > "$1/$$"; exec sleep 300`, running), 6),
		"--ndjson", "--slurm-alloc", "-N 2 -c 2")
	waitUntil(t, 30*time.Second, "four tasks run", func() bool { return markedIn(t, running) == 4 })
	return p
}

// TestSlurmAllocInterrupt: SIGINT ends a --slurm-alloc run with exit 130
// and gives the allocation back, its tasks and agents gone.
func TestSlurmAllocInterrupt(t *testing.T) {
	lab := slurmtest.Start(t, 2)
	logOnFailure(t, lab)
	p := startSleeping(t, lab)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGINT))
	code, results := p.wait()
	require.Equal(t, 130, code, p.stderr.String())
	require.Len(t, results, 6, "every task has its result")
	givenBack(t, lab)
	nothingLeft(t, lab)
}

// TestSlurmAllocKilled: a pool killed by SIGKILL leaves no agent, step or
// task behind, since each agent's input ends; its allocation stays, and
// scancel --me --name workerpool-agent, as the README says, ends it.
func TestSlurmAllocKilled(t *testing.T) {
	lab := slurmtest.Start(t, 2)
	logOnFailure(t, lab)
	p := startSleeping(t, lab)
	require.NoError(t, p.cmd.Process.Kill())
	code, _ := p.wait()
	require.Equal(t, -1, code, "killed")
	nothingLeft(t, lab)
	require.Equal(t, []string{"RUNNING"}, allocations(t, lab), "the allocation outlives a killed pool")
	lab.Run(t, "scancel", "--me", "--name", "workerpool-agent")
	waitUntil(t, 20*time.Second, "scancel by name ends it", func() bool {
		states := allocations(t, lab)
		return len(states) == 1 && states[0] != "RUNNING"
	})
}

// TestSlurmAllocationEnds: when a node of an allocation made without
// --no-kill goes down, Slurm ends the whole job. The results written are
// kept, every other task gets one result that says the allocation ended
// (exit -1 for those that waited), and the run exits 1, at once.
func TestSlurmAllocationEnds(t *testing.T) {
	lab := slurmtest.Start(t, 2)
	logOnFailure(t, lab)
	out := lab.Run(t, "sh", "-c", "salloc --no-shell -N 2 -J plain 2>&1")
	var job string
	_, err := fmt.Sscanf(out[strings.Index(out, "Granted job allocation "):], "Granted job allocation %s", &job)
	require.NoError(t, err, out)
	running := t.TempDir()
	input := strings.Repeat(`{"identifier":"quick","command":"true"}`+"\n", 4) +
		strings.Repeat(shTask(`: > "$1/$$"; exec sleep 300`, running), 10)
	p := startInJob(t, lab, job, input, "--ndjson", "--slurm", "-j", "1")
	for range 4 {
		r := p.next()
		require.Equal(t, 0, r.ExitCode, "%+v", r)
		require.Equal(t, "quick", r.Identifier, "%+v", r)
	}
	waitUntil(t, 30*time.Second, "a task runs on each node", func() bool { return markedIn(t, running) == 2 })
	lab.Down(t, "n2")
	code, results := p.wait()
	require.Equal(t, 1, code, p.stderr.String())
	require.Len(t, results, 10, "every task has one result")
	waited := 0
	for _, r := range results {
		require.Contains(t, r.Error, "the Slurm allocation ended", "%+v", r)
		if r.ExitCode == -1 {
			waited++
			continue
		}
		// One of the two that ran: its agent, cut off, may have stopped
		// it and said so before the end reached the pool.
		require.Equal(t, "SIGTERM", r.Signal, "%+v", r)
	}
	require.GreaterOrEqual(t, waited, 8, "the tasks that waited never start")
	nothingLeft(t, lab)
}

// TestSlurmAllocPending: a pool whose allocation is not granted yet ends
// at SIGINT with exit 130, and at SIGKILL too withdraws its request: no
// allocation of its own is left, waiting or granted.
func TestSlurmAllocPending(t *testing.T) {
	lab := slurmtest.Start(t, 1)
	logOnFailure(t, lab)
	lab.Alloc(t, 1, "--exclusive") // every CPU: the pool's request waits
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGKILL} {
		p := startInLab(t, lab, nil, shTask("true"), "--ndjson", "--slurm-alloc", "-N 1")
		waitUntil(t, 30*time.Second, "the request waits", func() bool {
			return slices.Contains(allocations(t, lab), "PENDING")
		})
		require.NoError(t, p.cmd.Process.Signal(sig))
		code, _ := p.wait()
		if sig == syscall.SIGINT {
			require.Equal(t, 130, code, p.stderr.String())
		}
		waitUntil(t, 20*time.Second, "the request is withdrawn", func() bool {
			return !slices.ContainsFunc(allocations(t, lab), func(s string) bool { return s == "PENDING" || s == "RUNNING" })
		})
	}
}
