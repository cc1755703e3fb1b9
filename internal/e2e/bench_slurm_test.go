//go:build linux

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/workerpool/workerpool/internal/slurmtest"
	"github.com/workerpool/workerpool/internal/testlab"
)

// benchSlurmVar turns TestBenchSlurm on: make bench-slurm sets it.
const benchSlurmVar = "WORKERPOOL_BENCH_SLURM"

// TestBenchSlurm is make bench-slurm: it starts a Slurm cluster on
// 127.0.0.1 (internal/slurmtest), takes an allocation of every node with
// all of its CPUs, and runs bench/slurm.sh as a process inside that
// allocation would run, with what the script needs to count the CPU of
// the cluster's processes. The script times the contenders and prints the
// report. The test is skipped unless WORKERPOOL_BENCH_SLURM is set, so
// that make test and make check never run it.
//
// The script's environment holds, besides the cluster's (SLURM_CONF) and
// the job's (SLURM_JOB_ID, SLURM_JOB_NODELIST, ...):
//
//	WORKERPOOL_BENCH_BIN    the workerpool built for the tests
//	BENCH_SLURM_SLURMCTLD   the pid of slurmctld
//	BENCH_SLURM_SLURMD      the pids of the slurmd daemons, space-separated
//	BENCH_SLURM_MUNGED      the pid of munged
//	BENCH_SLURM_REAPER      the pid of this test, which reaps every slurmstepd
//	BENCH_SLURM_STEPS       the file where the test counts the steps' CPU
//
// slurmd starts each slurmstepd through a fork that exits at once, so the
// slurmstepd is orphaned and nobody the cluster holds waits for it. The
// test makes itself a child subreaper before it starts the cluster, so
// that every slurmstepd becomes its child, and reaps them: see
// stepReaper.
//
// The knob BENCH_SLURM_NODES (3 unless set) is the number of nodes; the
// script's own knobs (BENCH_SLURM_TASKS, BENCH_SLURM_RUNS, ...,
// BENCH_SLURM_OUT) pass through.
func TestBenchSlurm(t *testing.T) {
	if os.Getenv(benchSlurmVar) == "" {
		t.Skipf("a benchmark: set %s=1 to run it (make bench-slurm)", benchSlurmVar)
	}
	nodes := 3
	if s := os.Getenv("BENCH_SLURM_NODES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("BENCH_SLURM_NODES=%q: not a number of nodes", s)
		}
		nodes = n
	}
	script := filepath.Join(repoRoot(t), "bench", "slurm.sh")
	if _, err := os.Stat(script); err != nil {
		t.Fatal(err)
	}

	// Before the cluster starts, so that its slurmstepd processes are
	// this process's to reap, and so that the reaper's cleanup runs after
	// the cluster's.
	steps := reapSteps(t, filepath.Join(t.TempDir(), "steps"))
	lab := slurmtest.Start(t, nodes)
	job := lab.Alloc(t, nodes, "-c", strconv.Itoa(slurmtest.CPUsPerNode))

	daemons := map[string][]string{}
	for _, pid := range lab.Processes() {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err == nil {
			name := strings.TrimSpace(string(comm))
			daemons[name] = append(daemons[name], strconv.Itoa(pid))
		}
	}
	if len(daemons["slurmctld"]) != 1 || len(daemons["slurmd"]) != nodes || len(daemons["munged"]) != 1 {
		t.Fatalf("the cluster's daemons: want one slurmctld, %d slurmd and one munged, found %v", nodes, daemons)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Hour)
	defer cancel()
	if deadline, ok := t.Deadline(); ok {
		// Time left for the cleanups, which stop the cluster.
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-time.Minute))
		defer cancel()
	}
	cmd := lab.Command(ctx, "bash", script)
	cmd.Env = append(cmd.Env, lab.JobEnv(t, job)...)
	cmd.Env = append(cmd.Env,
		"WORKERPOOL_BENCH_BIN="+program,
		"BENCH_SLURM_SLURMCTLD="+daemons["slurmctld"][0],
		"BENCH_SLURM_SLURMD="+strings.Join(daemons["slurmd"], " "),
		"BENCH_SLURM_MUNGED="+daemons["munged"][0],
		"BENCH_SLURM_REAPER="+strconv.Itoa(os.Getpid()),
		"BENCH_SLURM_STEPS="+steps,
	)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	// The script stops what it started when told to, as at an interrupt.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("bench/slurm.sh: %v (the cluster's logs are in %s/log)", err, lab.Dir)
	}
}

// stepReaper counts the CPU of the slurmstepd processes it reaps, and
// writes the sums to a file after each, "<steps> <µs> <children ticks>":
// how many it has reaped; the user and system time of each, its own and
// that of the children it waited for (waitid's rusage, in microseconds),
// summed; and the part of it that was its children's (the cutime and
// cstime of its /proc/<pid>/stat, in clock ticks, each step's rounded
// down), summed. A
// step's children are its tasks: for an agent's step, the agent and, as
// the agent waits for them, the tasks it ran. The file is written before
// the slurmstepd is reaped, so once no slurmstepd of the test is left,
// not even as a zombie, the file counts them all.
type stepReaper struct {
	file string
	self int // this process's pid

	steps      int
	totalUS    int64 // self and children, from waitid
	childTicks int64 // children only, from /proc/<pid>/stat
}

// reapSteps makes this process a child subreaper and reaps, from then on
// until the test's cleanup, every slurmstepd that becomes its child and
// exits, counting its CPU in file (see stepReaper). It returns file. It
// reaps nothing else: the test's other children are waited for by those
// who started them.
func reapSteps(t *testing.T, file string) string {
	r := &stepReaper{file: file, self: os.Getpid()}
	if err := r.write(); err != nil {
		t.Fatal(err)
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatalf("prctl(PR_SET_CHILD_SUBREAPER): %v", err)
	}
	sigchld := make(chan os.Signal, 1)
	signal.Notify(sigchld, syscall.SIGCHLD)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		// SIGCHLD wakes the reaper; the ticker is there should a
		// signal be missed while it scans.
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				r.scan(t)
				return
			case <-sigchld:
			case <-tick.C:
			}
			r.scan(t)
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
		signal.Stop(sigchld)
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0); err != nil {
			t.Errorf("prctl(PR_SET_CHILD_SUBREAPER, 0): %v", err)
		}
	})
	return file
}

// scan reaps the slurmstepd zombies among the process's children.
func (r *stepReaper) scan(t *testing.T) {
	for _, pid := range testlab.Pids() {
		f, ok := testlab.Stat(pid)
		if !ok || f.Comm != "slurmstepd" || f.State != 'Z' || f.PPid != r.self {
			continue
		}
		// A zombie stays until its parent, this process, waits for
		// it: the pid is the slurmstepd's until then. Its main thread
		// may be a zombie while other threads still run: then waitid
		// finds nothing to wait for and leaves si_signo 0. waitid
		// with WNOWAIT gives the rusage and leaves the zombie; the
		// file is written before it is reaped.
		var info unix.Siginfo
		var ru unix.Rusage
		if err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, &ru); err != nil {
			t.Errorf("waitid %d: %v", pid, err)
			continue
		}
		if info.Signo != int32(unix.SIGCHLD) {
			continue
		}
		// Read again now that every thread has ended, for cutime and
		// cstime.
		if f, ok = testlab.Stat(pid); !ok {
			t.Errorf("slurmstepd %d: no /proc/%d/stat", pid, pid)
			continue
		}
		r.steps++
		r.totalUS += ru.Utime.Sec*1e6 + ru.Utime.Usec + ru.Stime.Sec*1e6 + ru.Stime.Usec
		r.childTicks += int64(f.CUTime + f.CSTime)
		if err := r.write(); err != nil {
			t.Error(err)
		}
		var ws unix.WaitStatus
		if _, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); err != nil {
			t.Errorf("wait4 %d: %v", pid, err)
		}
	}
}

// write replaces the file with the sums, through a rename, so that a
// reader sees the old sums or the new, whole.
func (r *stepReaper) write() error {
	tmp := r.file + ".new"
	line := fmt.Sprintf("%d %d %d\n", r.steps, r.totalUS, r.childTicks)
	if err := os.WriteFile(tmp, []byte(line), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, r.file)
}
