package remote

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// SlurmJob is a Slurm allocation whose nodes run the agents: its job id,
// and its nodes with the CPUs it was given on each.
type SlurmJob struct {
	ID    string
	Nodes []string
	CPUs  []int // of each node, in the order of Nodes
}

// SlurmJobFromEnv reads the allocation the program runs in, as salloc,
// sbatch and srun describe it in the environment: SLURM_JOB_ID,
// SLURM_JOB_NODELIST and SLURM_JOB_CPUS_PER_NODE. hostnames expands a
// node list such as "n[1-3],m7" (see ScontrolHostnames). An error says
// that the program runs in no allocation, or that the allocation cannot
// be read.
func SlurmJobFromEnv(getenv func(string) string, hostnames func(string) ([]string, error)) (*SlurmJob, error) {
	id := cmpOr(getenv("SLURM_JOB_ID"), getenv("SLURM_JOBID"))
	list := cmpOr(getenv("SLURM_JOB_NODELIST"), getenv("SLURM_NODELIST"))
	if id == "" || list == "" {
		return nil, errors.New("not inside a Slurm allocation: run it under salloc or sbatch, or use --slurm-alloc")
	}
	nodes, err := hostnames(list)
	if err != nil {
		return nil, fmt.Errorf("SLURM_JOB_NODELIST %q: %w", list, err)
	}
	cpus, err := parseCPUsPerNode(getenv("SLURM_JOB_CPUS_PER_NODE"))
	if err != nil {
		return nil, err
	}
	if len(cpus) != len(nodes) {
		return nil, fmt.Errorf("SLURM_JOB_CPUS_PER_NODE %q counts %d nodes, SLURM_JOB_NODELIST %q %d",
			getenv("SLURM_JOB_CPUS_PER_NODE"), len(cpus), list, len(nodes))
	}
	return &SlurmJob{ID: id, Nodes: nodes, CPUs: cpus}, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// parseCPUsPerNode reads SLURM_JOB_CPUS_PER_NODE, such as "4(x3),2":
// the CPUs of each node in order, a count followed by "(xN)" standing for
// N nodes in a row.
func parseCPUsPerNode(s string) ([]int, error) {
	var cpus []int
	for part := range strings.SplitSeq(s, ",") {
		count, times := part, "1"
		if c, rest, ok := strings.Cut(part, "(x"); ok && strings.HasSuffix(rest, ")") {
			count, times = c, strings.TrimSuffix(rest, ")")
		}
		n, err1 := strconv.Atoi(count)
		k, err2 := strconv.Atoi(times)
		if err1 != nil || err2 != nil || n < 1 || k < 1 {
			return nil, fmt.Errorf("SLURM_JOB_CPUS_PER_NODE %q: not a list such as 4(x3),2", s)
		}
		for range k {
			cpus = append(cpus, n)
		}
	}
	return cpus, nil
}

// ScontrolHostnames expands a Slurm node list with scontrol show
// hostnames.
func ScontrolHostnames(list string) ([]string, error) {
	out, err := exec.Command("scontrol", "show", "hostnames", list).Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) && len(exit.Stderr) > 0 {
			return nil, fmt.Errorf("scontrol: %s", strings.TrimSpace(string(exit.Stderr)))
		}
		return nil, err
	}
	return strings.Fields(string(out)), nil
}

// Hosts returns the source of the job's nodes: each with slots CPUs of
// its own when perNode is 0, perNode slots otherwise.
func (j *SlurmJob) Hosts(perNode int) HostSource {
	logins := make(staticHosts, len(j.Nodes))
	for i, node := range j.Nodes {
		slots := cmp(perNode, j.CPUs[i])
		logins[i] = Login{text: fmt.Sprintf("%d/%s", slots, node), dest: node, slots: slots}
	}
	return logins
}

func cmp(a, b int) int {
	if a > 0 {
		return a
	}
	return b
}

// Srun is the Transport that runs each agent as a step of a Slurm job,
// one per node, through srun: no shell, no ssh. The step overlaps the
// job's other steps and takes none of the node's CPUs or memory for
// itself, so that the tasks' own srun calls are not blocked by it; it
// is not labelled and not unbuffered (-u, --label), which would break the
// agent's line protocol.
type Srun struct {
	job string
	// Grace is how long srun is given to end its step after SIGTERM
	// before it is killed.
	Grace time.Duration
}

// NewSrun returns the transport to the nodes of the job with that id.
func NewSrun(jobID string) *Srun { return &Srun{job: jobID, Grace: 5 * time.Second} }

// AgentJobName is the job name of the agents' steps, and of the
// allocations --slurm-alloc makes: what scancel --name finds them by.
const AgentJobName = "workerpool-agent"

// Command runs argv on node as a step of the job. When ctx is done, srun
// gets SIGTERM, which makes Slurm end the step, then SIGKILL after Grace.
func (s *Srun) Command(ctx context.Context, node string, argv []string) *exec.Cmd {
	args := slices.Concat([]string{"--jobid=" + s.job, "--nodes=1", "--ntasks=1", "--nodelist=" + node,
		"--overlap", "--mem=0", "--cpu-bind=none", "--quiet", "--job-name=" + AgentJobName, "--"}, argv)
	cmd := exec.CommandContext(ctx, "srun", args...)
	detach(cmd)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = s.Grace
	return cmd
}

// Close does nothing: every step ends with its srun.
func (s *Srun) Close() {}
