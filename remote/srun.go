package remote

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/workerpool/workerpool/internal/shorten"
)

// Srun is the Transport that runs each agent as a step of a Slurm job,
// one per node, through srun: no shell, no ssh. The step overlaps the
// job's other steps and takes none of the node's CPUs or memory for
// itself, so that the tasks' own srun calls are not blocked by it. Its
// output is not labelled (--label), which would put words into the
// agent's lines, and its agent gets no pseudo-terminal (-u), whose line
// discipline is no channel for the agent's bytes. Without -u,
// slurmstepd passes the agent's output on line by line, which is why the
// agent ends each reply with a line break (Protocol 3).
//
// A step is ended by SIGTERM to its srun, which has Slurm end the step,
// and then by scancel, should srun be past hearing it; srun is killed
// after Grace. Once the job has ended, its nodes are never tried again:
// the error of every host then wraps ErrAllocationEnded.
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

// ErrAllocationEnded is wrapped by the error of a node whose Slurm
// allocation has ended: no step can start there any more.
var ErrAllocationEnded = errors.New("the Slurm allocation ended")

// slurmWait bounds each run of a Slurm client (squeue, scontrol, scancel)
// made to look after the steps.
const slurmWait = 10 * time.Second

// Command runs argv on node as a step of the job, in a process group of
// its own, so that a terminal's ^C reaches the pool and not srun: one ^C
// makes srun print its status, not end. When ctx is done, the step is
// ended as by Kill.
func (s *Srun) Command(ctx context.Context, node string, argv []string) *exec.Cmd {
	args := slices.Concat([]string{"--jobid=" + s.job, "--nodes=1", "--ntasks=1", "--nodelist=" + node,
		"--overlap", "--mem=0", "--cpu-bind=none", "--quiet", "--job-name=" + AgentJobName, "--"}, argv)
	cmd := exec.CommandContext(ctx, "srun", args...)
	detach(cmd)
	cmd.Cancel = func() error { s.kill(cmd); return nil }
	cmd.WaitDelay = s.Grace
	return cmd
}

// kill ends the step of cmd, a started srun: SIGTERM to srun, which has
// Slurm end the step, at once; scancel of the step, which ends it even
// when srun cannot; and SIGKILL to srun after Grace.
func (s *Srun) kill(cmd *exec.Cmd) {
	step := s.stepOf(cmd.Process.Pid)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if step != "" {
		_, _ = slurmOutput("scancel", step)
	}
	time.AfterFunc(s.Grace, func() { _ = cmd.Process.Kill() })
}

// stepOf returns the id, JOB.STEP, of the job's step run by the srun of
// this machine with that pid, or "" when it has none (yet, or any more).
func (s *Srun) stepOf(pid int) string {
	out, err := slurmOutput("scontrol", "-o", "show", "step", s.job)
	if err != nil {
		return ""
	}
	return stepOf(out, thisHost(), pid)
}

// stepOf finds, in the output of "scontrol -o show step" (one line a step),
// the step whose srun ran on host with pid.
func stepOf(show, host string, pid int) string {
	want := host + ":" + strconv.Itoa(pid)
	for line := range strings.Lines(show) {
		var id, srun string
		for _, w := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(w, "StepId="); ok {
				id = v
			} else if v, ok := strings.CutPrefix(w, "SrunHost:Pid="); ok {
				srun = v
			}
		}
		if id != "" && srun == want {
			return id
		}
	}
	return ""
}

// thisHost is this machine's name as Slurm writes it: up to its first dot.
func thisHost() string {
	name, _ := os.Hostname()
	name, _, _ = strings.Cut(name, ".")
	return name
}

// ended returns an error that wraps ErrAllocationEnded once the job has
// ended, and nil while it runs or when that cannot be told.
func (s *Srun) ended() error {
	out, err := slurmOutput("squeue", "-h", "-j", s.job, "-o", "%T")
	state := strings.TrimSpace(out)
	switch {
	case err != nil && strings.Contains(err.Error(), "Invalid job id"):
		return fmt.Errorf("%w: job %s is gone", ErrAllocationEnded, s.job)
	case err != nil, state == "RUNNING", state == "CONFIGURING", state == "SUSPENDED":
		return nil
	case state == "":
		return fmt.Errorf("%w: job %s is gone", ErrAllocationEnded, s.job)
	}
	return fmt.Errorf("%w: job %s is %s", ErrAllocationEnded, s.job, state)
}

// Close does nothing: every step ends with its srun.
func (s *Srun) Close() {}

// slurmOutput runs a Slurm client, slurmWait at most, and returns its
// standard output; its error holds the last line of its standard error.
func slurmOutput(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), slurmWait)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) && len(exit.Stderr) > 0 {
			return string(out), fmt.Errorf("%s: %s", name, shorten.LastLine(exit.Stderr, 200))
		}
		return string(out), fmt.Errorf("%s: %w", name, err)
	}
	return string(out), nil
}
