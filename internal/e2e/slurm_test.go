//go:build linux

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/internal/slurmtest"
	"github.com/workerpool/workerpool/internal/testlab"
)

// These tests run the built program with --slurm inside allocations of a
// real Slurm cluster on 127.0.0.1 (internal/slurmtest). Every task runs as
// a process of a job step on one node, with $SLURMD_NODENAME naming it, so
// a task can tell where it ran, and the processes the steps leave are
// found among the cluster's own (Cluster.Processes).

// shTask returns the task line that runs script with sh -c, with args as
// its $1, $2, ...
func shTask(script string, args ...string) string {
	line, err := json.Marshal(map[string]any{"command": "sh", "args": append([]string{"-c", script, "sh"}, args...)})
	if err != nil {
		panic(err)
	}
	return string(line) + "\n"
}

// meetNodeScript prints the node it ran on, once a task has run on each of
// the $2 nodes: each marks its node in the folder $1, then waits, a minute
// at most, for the others, so that the node whose agent is up first cannot
// run every task before the others' are.
const meetNodeScript = `d=$1 n=$2; : > "$d/$SLURMD_NODENAME"; i=0; ` +
	`while set -- "$d"/*; [ $# -lt $n ] && [ $i -lt 6000 ]; do i=$((i+1)); sleep 0.01; done; ` +
	`printf %s "$SLURMD_NODENAME"`

// heldScript marks that it runs, with a file in the folder $1 named after
// its node and its pid, then waits until the file $2 exists (a minute at
// most) and prints the node it ran on.
const heldScript = `: > "$1/$SLURMD_NODENAME.$$"; i=0; ` +
	`while [ ! -e "$2" ] && [ $i -lt 1200 ]; do i=$((i+1)); sleep 0.05; done; ` +
	`printf %s "$SLURMD_NODENAME"`

// startInJob starts the program with args as if under salloc in the
// allocation job of lab, feeding it input; its NDJSON lines arrive on
// p.lines, as for rig.start.
func startInJob(t *testing.T, lab *slurmtest.Cluster, job, input string, args ...string) *pool {
	t.Helper()
	return startInLab(t, lab, lab.JobEnv(t, job), input, args...)
}

// startInLab starts the program with args in the environment of lab's
// clients and env, feeding it input; its NDJSON lines arrive on p.lines.
func startInLab(t *testing.T, lab *slurmtest.Cluster, env []string, input string, args ...string) *pool {
	t.Helper()
	cmd := lab.Command(context.Background(), program, args...)
	cmd.Env = append(cmd.Env, env...)
	p := startPool(t, cmd, input)
	t.Cleanup(func() {
		// A pool still running when the test ends is interrupted, so that
		// it ends its steps while the cluster is up, and killed if it has
		// not ended within 15 seconds.
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-p.done:
			case <-time.After(15 * time.Second):
			}
		}
		_ = cmd.Process.Kill()
		<-p.done
		noClientLeft(t, lab)
	})
	return p
}

// clientsLeft returns the pids of the processes, other than the cluster's
// own, that run with this cluster's SLURM_CONF in their environment: what
// the pool started here, its srun processes, and did not end.
func clientsLeft(lab *slurmtest.Cluster) []int {
	own := map[int]bool{os.Getpid(): true}
	for _, pid := range lab.Processes() {
		own[pid] = true
	}
	var pids []int
	for pid, p := range testlab.Procs() {
		if !own[pid] && p.Live() && testlab.HasEnv(pid, "SLURM_CONF="+lab.Conf) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// noClientLeft waits, 10 seconds at most, until the pool has left no
// process behind on this machine (an srun whose step never ended), and
// fails the test if one is left, then kills it: the cluster's cleanup
// does not know these, and an srun whose cluster is gone waits for ever.
func noClientLeft(t *testing.T, lab *slurmtest.Cluster) {
	deadline := time.Now().Add(10 * time.Second)
	for len(clientsLeft(lab)) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	for _, pid := range clientsLeft(lab) {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		t.Errorf("process %d left after the pool: %s", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// oneEach checks that results hold one result for each of n tasks, every
// one a success, printed by its task on the node the result names; it
// returns the number of results per node.
func oneEach(t *testing.T, results []remoteResult, n int) map[string]int {
	t.Helper()
	require.Len(t, results, n)
	seen := map[int64]bool{}
	used := map[string]int{}
	for _, res := range results {
		require.False(t, seen[res.Seq], "task %d has two results", res.Seq)
		seen[res.Seq] = true
		require.Equal(t, 0, res.ExitCode, "%+v", res)
		require.Equal(t, res.Host, res.Body, "the task ran on the node its result names: %+v", res)
		used[res.Host]++
	}
	return used
}

// waitUntil polls cond every 20 ms until it holds, or fails the test
// after limit, saying what was awaited.
func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// markedOn counts the files of dir that tasks running on node made.
func markedOn(t *testing.T, dir, node string) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, node+".*"))
	require.NoError(t, err)
	return len(files)
}

// agentSteps returns the names of the steps of job, one a line.
func agentSteps(t *testing.T, lab *slurmtest.Cluster, job string) string {
	t.Helper()
	return strings.TrimSpace(lab.Run(t, "squeue", "-h", "-s", "-j", job, "-o", "%j"))
}

// noAgentStep waits, 20 seconds at most, until no agent's step is left in
// job.
func noAgentStep(t *testing.T, lab *slurmtest.Cluster, job string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for strings.Contains(agentSteps(t, lab, job), "workerpool-agent") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	require.NotContains(t, agentSteps(t, lab, job), "workerpool-agent", "no agent's step is left")
}

// labProc is a live process of the cluster, as /proc shows it.
type labProc struct {
	testlab.Proc
	argv []string
	node string // its $SLURMD_NODENAME, if any
}

// labProcs returns the live processes of the cluster that /proc still
// shows.
func labProcs(lab *slurmtest.Cluster) []labProc {
	var procs []labProc
	for _, pid := range lab.Processes() {
		stat, ok := testlab.Stat(pid)
		if !ok {
			continue
		}
		p := labProc{Proc: stat, argv: testlab.Cmdline(pid)}
		for _, kv := range testlab.Environ(pid) {
			if v, ok := strings.CutPrefix(kv, "SLURMD_NODENAME="); ok {
				p.node = v
			}
		}
		procs = append(procs, p)
	}
	return procs
}

// agentsOn returns the pids of the agents the steps run on node: the
// program, started with --agent.
func agentsOn(lab *slurmtest.Cluster, node string) []int {
	var pids []int
	for _, p := range labProcs(lab) {
		if p.node == node && len(p.argv) > 1 && p.argv[0] == program && p.argv[1] == "--agent" {
			pids = append(pids, p.Pid)
		}
	}
	return pids
}

// logOnFailure logs the end of the controller's log when t fails, to tell
// what Slurm did.
func logOnFailure(t *testing.T, lab *slurmtest.Cluster) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		b, err := os.ReadFile(filepath.Join(lab.Dir, "log", "slurmctld.log"))
		if len(b) > 8192 {
			b = b[len(b)-8192:]
		}
		t.Logf("slurmctld.log (%v):\n%s", err, b)
	})
}

// nodeLeft returns the processes of the cluster left running on node:
// tasks of its steps.
func nodeLeft(lab *slurmtest.Cluster, node string) []labProc {
	var left []labProc
	for _, p := range labProcs(lab) {
		if p.node == node {
			left = append(left, p)
		}
	}
	return left
}

// TestSlurmNodes: inside an allocation of three nodes, --slurm runs one
// agent per node through srun, and the tasks on all three, each on the
// node its result names; no agent's step is left once the run is over.
// Outside an allocation, --slurm is a usage error.
func TestSlurmNodes(t *testing.T) {
	lab := slurmtest.Start(t, 3)
	logOnFailure(t, lab)
	job := lab.Alloc(t, 3, "-c2")
	input := strings.Repeat(shTask(meetNodeScript, t.TempDir(), "3"), 300)

	begin := time.Now()
	p := startInJob(t, lab, job, input, "--ndjson", "--slurm")
	code, results := p.wait()
	require.Equal(t, 0, code, p.stderr.String())
	used := oneEach(t, results, 300)
	for _, n := range lab.Nodes() {
		require.Positive(t, used[n], "node %s ran no task: %v", n, used)
	}
	t.Logf("300 tasks in %v: %v", time.Since(begin).Round(time.Millisecond), used)
	noAgentStep(t, lab, job)

	out := lab.Command(context.Background(), program, "--slurm", "--", "true")
	out.Stdin = strings.NewReader("x\n")
	msg, err := out.CombinedOutput()
	require.Error(t, err)
	require.Equal(t, 2, out.ProcessState.ExitCode())
	require.Equal(t, "workerpool: --slurm: not inside a Slurm allocation: run it under salloc or sbatch, or use --slurm-alloc\n", string(msg))
}

// TestSlurmNodeDown: a node set down while it runs tasks loses them, and
// they run again on the other nodes of the allocation (--no-kill keeps
// it): every task gets one result, and succeeds.
func TestSlurmNodeDown(t *testing.T) {
	lab := slurmtest.Start(t, 3)
	logOnFailure(t, lab)
	job := lab.Alloc(t, 3, "-c2")
	marks, release := t.TempDir(), filepath.Join(t.TempDir(), "go")
	input := strings.Repeat(shTask(heldScript, marks, release), 30)

	begin := time.Now()
	p := startInJob(t, lab, job, input, "--ndjson", "--slurm", "-v")
	// The tasks wait for the release: once n3 runs two, it is set down.
	waitUntil(t, 30*time.Second, "two tasks run on n3", func() bool { return markedOn(t, marks, "n3") == 2 })
	// scontrol update nodename=n3 state=down: Slurm removes n3 from the
	// job and ends its step, which the pool sees.
	lab.Down(t, "n3")
	waitUntil(t, 30*time.Second, "the pool loses n3", func() bool { return p.stderr.contains(`msg="host lost" host=n3`) })
	// Slurm drops n3 from the job (--no-kill): the pool sees it leave,
	// rather than try it again for ever.
	waitUntil(t, 30*time.Second, "n3 leaves the hosts", func() bool { return p.stderr.contains(`msg="host removed" host=n3`) })
	require.NoError(t, os.WriteFile(release, nil, 0o644))

	code, results := p.wait()
	require.Equal(t, 0, code, p.stderr.String())
	used := oneEach(t, results, 30)
	require.Zero(t, used["n3"], "no task ends on the node set down: %v", used)
	moved := 0
	for _, res := range results {
		if res.Attempts > 1 {
			moved++
		}
	}
	require.GreaterOrEqual(t, moved, 2, "the two tasks n3 was running ran again elsewhere")
	t.Logf("30 tasks in %v: %v, %d moved", time.Since(begin).Round(time.Millisecond), used, moved)
	require.Equal(t, "RUNNING", strings.TrimSpace(lab.Run(t, "squeue", "-h", "-j", job, "-o", "%T")), "the allocation outlives its node (--no-kill)")
	noAgentStep(t, lab, job)
	deadline := time.Now().Add(20 * time.Second)
	for len(nodeLeft(lab, "n3")) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	require.Empty(t, nodeLeft(lab, "n3"), "nothing is left running on the node set down")
}

// TestSlurmFrozenAgent: an agent that stops answering (its process
// stopped) is lost after three silent heartbeats; its tasks run again
// elsewhere, every task gets one result, and no agent's step nor stopped
// process is left once the run is over.
func TestSlurmFrozenAgent(t *testing.T) {
	lab := slurmtest.Start(t, 3)
	logOnFailure(t, lab)
	job := lab.Alloc(t, 3, "-c2")
	marks, release := t.TempDir(), filepath.Join(t.TempDir(), "go")
	input := strings.Repeat(shTask(heldScript, marks, release), 30)

	begin := time.Now()
	p := startInJob(t, lab, job, input, "--ndjson", "--slurm", "--heartbeat", "200ms", "-v")
	waitUntil(t, 30*time.Second, "two tasks run on each node", func() bool {
		for _, n := range lab.Nodes() {
			if markedOn(t, marks, n) < 2 {
				return false
			}
		}
		return true
	})
	agents := agentsOn(lab, "n2")
	require.Len(t, agents, 1, "one agent on n2")
	frozen := agents[0]
	require.NoError(t, syscall.Kill(frozen, syscall.SIGSTOP))
	// Whatever happens, nothing stays stopped: the cluster's cleanup
	// kills its processes, stopped or not, and this lets the agent go on
	// first, if it is still there.
	t.Cleanup(func() {
		for _, pid := range agentsOn(lab, "n2") {
			if pid == frozen {
				_ = syscall.Kill(frozen, syscall.SIGCONT)
			}
		}
	})
	require.NoError(t, os.WriteFile(release, nil, 0o644))

	code, results := p.wait()
	took := time.Since(begin)
	require.Equal(t, 0, code, p.stderr.String())
	used := oneEach(t, results, 30)
	moved := 0
	for _, res := range results {
		if res.Attempts > 1 {
			moved++
		}
	}
	require.GreaterOrEqual(t, moved, 2, "the tasks of the frozen agent ran again: %v", used)
	require.Contains(t, p.stderr.String(), `msg="host lost" host=n2`)
	require.Less(t, took, 45*time.Second, "a frozen agent costs three heartbeats, not a hang")
	t.Logf("30 tasks in %v: %v, %d moved", took.Round(time.Millisecond), used, moved)

	noAgentStep(t, lab, job)
	stopped := func() []labProc {
		var found []labProc
		for _, p := range labProcs(lab) {
			if p.State == 'T' {
				found = append(found, p)
			}
		}
		return found
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(stopped()) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	require.Empty(t, stopped(), "no stopped process is left")
}

// TestSlurmInterrupt: SIGINT stops the long tasks on the nodes too: the
// pool exits 130, the results say cancelled, and no task nor agent's step
// is left.
func TestSlurmInterrupt(t *testing.T) {
	lab := slurmtest.Start(t, 2)
	logOnFailure(t, lab)
	job := lab.Alloc(t, 2, "-c2")
	marks := t.TempDir()
	input := strings.Repeat(shTask(`: > "$1/$SLURMD_NODENAME.$$"; exec sleep 300`, marks), 6)

	p := startInJob(t, lab, job, input, "--ndjson", "--slurm")
	sleeps := func() int {
		n := 0
		for _, p := range labProcs(lab) {
			if p.Comm == "sleep" {
				n++
			}
		}
		return n
	}
	// Two slots on each node: four tasks run, two wait.
	waitUntil(t, 30*time.Second, "two tasks sleep on each node", func() bool {
		return markedOn(t, marks, "n1") == 2 && markedOn(t, marks, "n2") == 2 && sleeps() == 4
	})
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGINT))
	begin := time.Now()
	code, results := p.wait()
	require.Equal(t, 130, code, p.stderr.String())
	require.Len(t, results, 6)
	for _, res := range results {
		require.Equal(t, "cancelled", res.Error, "%+v", res)
	}
	t.Logf("exited %v after SIGINT", time.Since(begin).Round(time.Millisecond))
	waitUntil(t, 20*time.Second, "no sleep is left on the nodes", func() bool { return sleeps() == 0 })
	noAgentStep(t, lab, job)
	require.Empty(t, agentsOn(lab, "n1"), "no agent is left on n1")
	require.Empty(t, agentsOn(lab, "n2"), "no agent is left on n2")
}

// TestSlurmPromptReplies: a task's result comes back as soon as the task
// ends, whether or not its output ends with a newline: ten tasks that
// print one byte, run one after the other on a node of one CPU, take well
// under a second each.
func TestSlurmPromptReplies(t *testing.T) {
	lab := slurmtest.Start(t, 1)
	logOnFailure(t, lab)
	job := lab.Alloc(t, 1)

	begin := time.Now()
	p := startInJob(t, lab, job, strings.Repeat(`{"command":"printf","args":["x"]}`+"\n", 10), "--ndjson", "--slurm")
	code, results := p.wait()
	took := time.Since(begin)
	require.Equal(t, 0, code, p.stderr.String())
	require.Len(t, results, 10)
	for _, res := range results {
		require.Equal(t, "x", res.Body, "%+v", res)
	}
	t.Logf("10 tasks in %v", took.Round(time.Millisecond))
	require.Less(t, took, 8*time.Second, "each result comes when its task ends, not at the next heartbeat")
}

// fourOnANodeScript marks that it runs, with a file in the folder $1
// named after its node and its pid, waits until four tasks run on its
// node at once (20 s at most), and prints how many it saw.
const fourOnANodeScript = `d=$1; : > "$d/$SLURMD_NODENAME.$$"; i=0; ` +
	`while set -- "$d/$SLURMD_NODENAME".*; [ $# -lt 4 ] && [ $i -lt 400 ]; do i=$((i+1)); sleep 0.05; done; ` +
	`printf %s $#`

// TestSlurmSlotsFromAllocation: without -j, a node has as many slots as
// the allocation gives it CPUs (-c 4, the lab's whole node: four), not
// -j's default of 2: the eight tasks run four on each node at once.
func TestSlurmSlotsFromAllocation(t *testing.T) {
	lab := slurmtest.Start(t, 2)
	logOnFailure(t, lab)
	job := lab.Alloc(t, 2, "-c4")
	input := strings.Repeat(shTask(fourOnANodeScript, t.TempDir()), 8)
	p := startInJob(t, lab, job, input, "--ndjson", "--slurm")
	code, results := p.wait()
	require.Equal(t, 0, code, p.stderr.String())
	require.Len(t, results, 8)
	for _, r := range results {
		require.Equal(t, "4", r.Body, "tasks at once on %s", r.Host)
	}
}
