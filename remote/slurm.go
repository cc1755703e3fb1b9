package remote

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/workerpool/workerpool/internal/shorten"
)

// SlurmJob is a Slurm allocation whose nodes run the agents: its job id,
// and its nodes with the CPUs it was given on each.
type SlurmJob struct {
	ID       string
	NodeList string // as Slurm writes it: "n[1-3],m7"
	Nodes    []string
	CPUs     []int // of each node, in the order of Nodes
}

// SlurmJobFromEnv reads the allocation the program runs in, as salloc,
// sbatch and srun describe it in the environment: SLURM_JOB_ID,
// SLURM_JOB_NODELIST and SLURM_JOB_CPUS_PER_NODE. hostnames expands a
// node list such as "n[1-3],m7" (see ScontrolHostnames). An error says
// that the program runs in no allocation, or that the allocation cannot
// be read.
func SlurmJobFromEnv(getenv func(string) string, hostnames func(string) ([]string, error)) (*SlurmJob, error) {
	id := cmp.Or(getenv("SLURM_JOB_ID"), getenv("SLURM_JOBID"))
	list := cmp.Or(getenv("SLURM_JOB_NODELIST"), getenv("SLURM_NODELIST"))
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
	return &SlurmJob{ID: id, NodeList: list, Nodes: nodes, CPUs: cpus}, nil
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
// its own when perNode is 0, perNode slots otherwise. It follows the job
// (see slurmPoll): a node that leaves it, failed under --no-kill, leaves
// the hosts, rather than be tried again for ever.
func (j *SlurmJob) Hosts(perNode int) HostSource {
	return &slurmHosts{perNode: perNode, logins: j.logins(perNode),
		show: func() (*SlurmJob, error) { return ShowSlurmJob(j.ID, ScontrolHostnames) }}
}

// logins are the job's nodes as hosts of perNode slots, or of their CPUs.
func (j *SlurmJob) logins(perNode int) []Login {
	logins := make([]Login, len(j.Nodes))
	for i, node := range j.Nodes {
		slots := cmp.Or(perNode, j.CPUs[i])
		logins[i] = Login{text: fmt.Sprintf("%d/%s", slots, node), dest: node, slots: slots}
	}
	return logins
}

// slurmPoll is how often the nodes of a job are looked at for a change.
const slurmPoll = 5 * time.Second

// slurmHosts are the nodes of a job, as show tells them.
type slurmHosts struct {
	perNode int
	logins  []Login
	show    func() (*SlurmJob, error)
}

func (s *slurmHosts) Logins() []Login { return s.logins }

// Watch looks at the job every slurmPoll, and tells when its nodes
// change. A job that cannot be read, or has ended, changes nothing: the
// transport tells when the job has ended.
func (s *slurmHosts) Watch(ctx context.Context, log *slog.Logger, changed func([]Login)) {
	tick := time.NewTicker(slurmPoll)
	defer tick.Stop()
	last := s.logins
	for {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
		job, err := s.show()
		if err != nil {
			log.Debug("the Slurm job cannot be read", "error", err)
			continue
		}
		now := job.logins(s.perNode)
		if !slices.Equal(now, last) && len(now) > 0 {
			last = now
			changed(now)
		}
	}
}

// Allocate asks Slurm for an allocation of its own, as --slurm-alloc
// does: salloc --no-shell --no-kill --job-name=workerpool-agent, then
// args, words as salloc takes them (-N 2, -c 4, -p short, ...). salloc
// waits until the allocation is granted, or ctx is done. --no-kill keeps
// the allocation when one of its nodes fails: only that node's steps end.
// Give the allocation back with Cancel.
func Allocate(ctx context.Context, args []string) (*SlurmJob, error) {
	argv := slices.Concat([]string{"--no-shell", "--no-kill", "--job-name=" + AgentJobName}, args)
	cmd := exec.CommandContext(ctx, "salloc", argv...)
	detach(cmd) // a terminal's ^C is the pool's, which cancels the request
	interruptAtDeath(cmd)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = 5 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	id := grantedID(stderr.String())
	switch {
	case err != nil && id != "":
		_ = (&SlurmJob{ID: id}).Cancel()
		fallthrough
	case err != nil:
		if msg := shorten.LastLine(stderr.String(), 200); msg != "" {
			return nil, fmt.Errorf("salloc: %s", msg)
		}
		return nil, fmt.Errorf("salloc: %w", err)
	case id == "":
		return nil, fmt.Errorf("salloc: no job id in what it said: %q", shorten.LastLine(stderr.String(), 200))
	}
	job, err := ShowSlurmJob(id, ScontrolHostnames)
	if err != nil {
		_ = (&SlurmJob{ID: id}).Cancel()
		return nil, err
	}
	return job, nil
}

// grantedID finds the job id in salloc's "Granted job allocation 12".
func grantedID(said string) string {
	const granted = "Granted job allocation "
	_, rest, ok := strings.Cut(said, granted)
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, "\n")
	id = strings.TrimSpace(id)
	if _, err := strconv.ParseUint(id, 10, 64); err != nil {
		return ""
	}
	return id
}

// ShowSlurmJob reads the running job id with scontrol show job -d: its
// nodes, expanded by hostnames, and its CPUs on each.
func ShowSlurmJob(id string, hostnames func(string) ([]string, error)) (*SlurmJob, error) {
	show, err := slurmOutput("scontrol", "show", "job", "-d", id)
	if err != nil {
		return nil, err
	}
	job, err := ParseSlurmJob(show, hostnames)
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", id, err)
	}
	return job, nil
}

// ParseSlurmJob reads a running job from the output of "scontrol show job
// -d": key=value words, JobId, JobState, NodeList and NumNodes among them,
// and one line per group of nodes with the same CPUs, "Nodes=n[1-2]
// CPU_IDs=0-1 Mem=0 GRES=". hostnames expands a node list.
func ParseSlurmJob(show string, hostnames func(string) ([]string, error)) (*SlurmJob, error) {
	fields := map[string]string{}
	job := &SlurmJob{}
	for line := range strings.Lines(show) {
		words := strings.Fields(line)
		if len(words) > 0 && strings.HasPrefix(words[0], "Nodes=") {
			nodes, err := hostnames(strings.TrimPrefix(words[0], "Nodes="))
			if err != nil {
				return nil, err
			}
			cpus := -1
			for _, w := range words[1:] {
				if ids, ok := strings.CutPrefix(w, "CPU_IDs="); ok {
					cpus = countIDs(ids)
				}
			}
			if cpus < 1 {
				return nil, fmt.Errorf("no CPUs in %q", strings.TrimSpace(line))
			}
			for _, n := range nodes {
				job.Nodes, job.CPUs = append(job.Nodes, n), append(job.CPUs, cpus)
			}
			continue
		}
		for _, w := range words {
			if k, v, ok := strings.Cut(w, "="); ok {
				if _, seen := fields[k]; !seen {
					fields[k] = v
				}
			}
		}
	}
	job.ID, job.NodeList = fields["JobId"], fields["NodeList"]
	if state := fields["JobState"]; state != "RUNNING" {
		return nil, fmt.Errorf("the job is %s, not RUNNING", cmp.Or(state, "unknown"))
	}
	if n := strconv.Itoa(len(job.Nodes)); n != fields["NumNodes"] {
		return nil, fmt.Errorf("CPUs found for %s nodes, NumNodes=%s", n, fields["NumNodes"])
	}
	return job, nil
}

// countIDs returns the number of CPUs in a list such as "0-1,3", or -1.
func countIDs(list string) int {
	n := 0
	for r := range strings.SplitSeq(list, ",") {
		lo, hi, isRange := strings.Cut(r, "-")
		a, err1 := strconv.Atoi(lo)
		b, err2 := a, error(nil)
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || b < a {
			return -1
		}
		n += b - a + 1
	}
	return n
}

// Cancel gives the allocation back: scancel. Its steps end with it.
func (j *SlurmJob) Cancel() error {
	_, err := slurmOutput("scancel", j.ID)
	return err
}

// Broadcast copies the file at src to path on every node of the job, with
// sbcast: to node-local storage, where it is read once per node, not by
// every node from a shared file system.
func (j *SlurmJob) Broadcast(ctx context.Context, src, path string) error {
	cmd := exec.CommandContext(ctx, "sbcast", "--jobid="+j.ID, "--force", src, path)
	detach(cmd)
	if out, err := cmd.CombinedOutput(); err != nil {
		if msg := shorten.LastLine(out, 200); msg != "" {
			return fmt.Errorf("sbcast: %s", msg)
		}
		return fmt.Errorf("sbcast: %w", err)
	}
	return nil
}

// Remove removes path from every node of the job that is still in it: a
// step of one task per node, the last the pool runs.
func (j *SlurmJob) Remove(ctx context.Context, path string) error {
	cmd := exec.CommandContext(ctx, "srun", "--jobid="+j.ID, "--ntasks-per-node=1", "--overlap", "--mem=0", "--cpu-bind=none", "--quiet",
		"--job-name="+AgentJobName, "--", "rm", "-f", "--", path)
	detach(cmd)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("removing %s from the nodes: %w: %s", path, err, shorten.LastLine(out, 200))
	}
	return nil
}
