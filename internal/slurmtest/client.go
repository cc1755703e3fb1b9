//go:build linux

package slurmtest

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/workerpool/workerpool/remote"
)

// JobName is the name Alloc gives its allocations.
const JobName = "workerpool-test"

// pollLimit bounds one run of sinfo while a wait polls the node states.
const pollLimit = 5 * time.Second

// Command returns a command that runs name with args in the cluster's
// environment: os.Environ() without its SLURM_* variables, then Env. The
// context kills the process; Cmd.WaitDelay is one second, so that a child
// left holding its output cannot hang Wait.
func (c *Cluster) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(cleanEnviron(), c.Env()...)
	cmd.WaitDelay = time.Second
	return cmd
}

// Run runs args[0], a Slurm client such as sinfo or srun, with the rest of
// args in the cluster's environment (see Command), and returns its
// standard output. If the command fails, or has not finished after 20
// seconds, Run calls t.Fatal with its standard error.
func (c *Cluster) Run(t testing.TB, args ...string) string {
	t.Helper()
	stdout, stderr, err := c.run(clientLimit, args...)
	if err != nil {
		t.Fatalf("slurmtest: %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return stdout
}

// run runs args as Run does, for up to limit, and returns its standard
// output and error.
func (c *Cluster) run(limit time.Duration, args ...string) (string, string, error) {
	if len(args) == 0 {
		return "", "", fmt.Errorf("no command")
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := c.Command(ctx, args[0], args[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("not finished within %v (%v)", limit, err)
	}
	return stdout.String(), stderr.String(), err
}

var grantedRE = regexp.MustCompile(`Granted job allocation (\d+)`)

// Alloc runs "salloc --no-shell --no-kill -N <nodes> -J workerpool-test
// <extra>" and returns the id of the job it was granted. The allocation
// holds one CPU per node unless extra asks for more (-n, -c,
// --exclusive), and lasts until it is cancelled (scancel) or the cluster
// stops; --no-kill keeps it when one of its nodes goes down. Alloc calls
// t.Fatal if salloc fails, or is not granted the allocation within 20
// seconds.
func (c *Cluster) Alloc(t testing.TB, nodes int, extra ...string) string {
	t.Helper()
	args := append([]string{"salloc", "--no-shell", "--no-kill", "-N", strconv.Itoa(nodes), "-J", JobName}, extra...)
	stdout, stderr, err := c.run(clientLimit, args...)
	if err != nil {
		t.Fatalf("slurmtest: %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	m := grantedRE.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("slurmtest: %s: no job id in its output:\n%s%s", strings.Join(args, " "), stdout, stderr)
	}
	return m[1]
}

// JobEnv returns the variables that describe the allocation of the running
// job jobID to a process inside it, as salloc sets them for its command:
//
//	SLURM_JOB_ID=12
//	SLURM_JOB_NODELIST=n[1-2]
//	SLURM_JOB_CPUS_PER_NODE=1(x2)
//	SLURM_JOB_NUM_NODES=2
//
// SLURM_JOB_CPUS_PER_NODE gives the CPUs of the job on each node, in the
// order of the node list, a run of equal counts written once with its
// length: "1(x2)" for Alloc(t, 2), one CPU on each of two nodes; "2(x2)"
// with -c2 or --exclusive; "2,1" with -n3; "1" for a single node. JobEnv
// reads them from "scontrol show job -d" (see remote.ParseSlurmJob).
// Appended to the environment of srun, they make it launch its step in
// that job, as it would inside salloc. JobEnv calls t.Fatal if the job is
// not running or scontrol fails.
func (c *Cluster) JobEnv(t testing.TB, jobID string) []string {
	t.Helper()
	show := c.Run(t, "scontrol", "show", "job", "-d", jobID)
	env, err := jobEnv(show, func(hostlist string) ([]string, error) {
		stdout, stderr, err := c.run(clientLimit, "scontrol", "show", "hostnames", hostlist)
		if err != nil {
			return nil, fmt.Errorf("scontrol show hostnames %s: %v: %s", hostlist, err, strings.TrimSpace(stderr))
		}
		return strings.Fields(stdout), nil
	})
	if err != nil {
		t.Fatalf("slurmtest: job %s: %v\n%s", jobID, err, show)
	}
	return env
}

// jobEnv builds JobEnv's variables from show, the output of "scontrol show
// job -d"; hostnames expands a host list.
func jobEnv(show string, hostnames func(hostlist string) ([]string, error)) ([]string, error) {
	job, err := remote.ParseSlurmJob(show, hostnames)
	if err != nil {
		return nil, err
	}
	return []string{
		"SLURM_JOB_ID=" + job.ID,
		"SLURM_JOB_NODELIST=" + job.NodeList,
		"SLURM_JOB_CPUS_PER_NODE=" + compressCounts(job.CPUs),
		"SLURM_JOB_NUM_NODES=" + strconv.Itoa(len(job.Nodes)),
	}, nil
}

// compressCounts writes counts as Slurm writes SLURM_JOB_CPUS_PER_NODE:
// comma-separated, a run of k equal counts c written "c(xk)".
func compressCounts(counts []int) string {
	var parts []string
	for i := 0; i < len(counts); {
		j := i
		for j < len(counts) && counts[j] == counts[i] {
			j++
		}
		if j-i == 1 {
			parts = append(parts, strconv.Itoa(counts[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d(x%d)", counts[i], j-i))
		}
		i = j
	}
	return strings.Join(parts, ",")
}

// NodeState returns the state of node as sinfo writes it in short form:
// "idle", "alloc", "mix", "down", "drain", ... with a "*" appended when
// the node does not respond. It calls t.Fatal if sinfo fails or does not
// list the node.
func (c *Cluster) NodeState(t testing.TB, node string) string {
	t.Helper()
	states, err := c.nodeStates()
	if err != nil {
		t.Fatalf("slurmtest: %v", err)
	}
	s, ok := states[node]
	if !ok {
		t.Fatalf("slurmtest: sinfo does not list node %q: %v", node, states)
	}
	return s
}

// Down sets node down with scontrol ("State=DOWN Reason=slurmtest") and
// waits until sinfo shows it down. Slurm ends the steps running on the
// node; an allocation from Alloc keeps its other nodes (--no-kill). Down
// calls t.Fatal if scontrol fails or the node is not down within 20
// seconds.
func (c *Cluster) Down(t testing.TB, node string) {
	t.Helper()
	c.Run(t, "scontrol", "update", "NodeName="+node, "State=DOWN", "Reason=slurmtest")
	c.waitState(t, node, "down", func(s string) bool { return strings.HasPrefix(s, "down") })
}

// Resume returns node to service with scontrol ("State=RESUME") and waits
// until sinfo shows it idle, mixed or allocated. It calls t.Fatal if
// scontrol fails or that does not happen within 20 seconds.
func (c *Cluster) Resume(t testing.TB, node string) {
	t.Helper()
	c.Run(t, "scontrol", "update", "NodeName="+node, "State=RESUME")
	c.waitState(t, node, "idle, mix or alloc", func(s string) bool {
		return s == "idle" || s == "mix" || s == "alloc"
	})
}

// waitState polls the state of node until ok accepts it, or calls t.Fatal
// after waitLimit.
func (c *Cluster) waitState(t testing.TB, node, want string, ok func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		states, err := c.nodeStates()
		if err == nil && ok(states[node]) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("slurmtest: node %s not %s within %v: states %v, sinfo error %v", node, want, waitLimit, states, err)
		}
		time.Sleep(pollEvery)
	}
}

// nodeStates returns the short state of every node, from sinfo.
func (c *Cluster) nodeStates() (map[string]string, error) {
	stdout, stderr, err := c.run(pollLimit, "sinfo", "-h", "-N", "-o", "%N %t")
	if err != nil {
		return nil, fmt.Errorf("sinfo: %v: %s", err, strings.TrimSpace(stderr))
	}
	states := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if name, state, ok := strings.Cut(line, " "); ok {
			states[name] = state
		}
	}
	return states, nil
}
