//go:build linux

package slurmtest

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/workerpool/workerpool/internal/testlab"
)

// waitFor polls cond every 50 ms for up to limit.
func waitFor(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollEvery)
	}
}

// comms returns the comm of each pid, in the order of pids.
func comms(pids []int) []string {
	var names []string
	for _, pid := range pids {
		if p, ok := testlab.Stat(pid); ok {
			names = append(names, p.Comm)
		}
	}
	return names
}

// srunOn returns the srun command line that runs command on node in job.
func srunOn(job, node string, command ...string) []string {
	return append([]string{"srun", "--jobid=" + job, "-N1", "-n1", "-w", node, "--overlap", "--mem=0", "--quiet", "--"}, command...)
}

// cgroupMounts returns the lines of this process's mountinfo that mount
// something on /sys/fs/cgroup or below.
func cgroupMounts(t *testing.T) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	var lines []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], "/sys/fs/cgroup") {
			lines = append(lines, line)
		}
	}
	return lines
}

func TestCluster(t *testing.T) {
	mountsBefore := cgroupMounts(t)
	begin := time.Now()
	c := Start(t, 2)
	t.Logf("cluster up in %v, dir %s", time.Since(begin).Round(time.Millisecond), c.Dir)

	require.Equal(t, []string{"n1", "n2"}, c.Nodes())
	assert.Equal(t, []string{"SLURM_CONF=" + c.Conf}, c.Env())
	assert.Equal(t, "n1 idle\nn2 idle\n", c.Run(t, "sinfo", "-h", "-N", "-o", "%N %t"))
	assert.Equal(t, mountsBefore, cgroupMounts(t), "the test's own mounts under /sys/fs/cgroup changed")

	// Before Alloc: some shapes take every CPU.
	t.Run("JobEnv matches salloc", func(t *testing.T) {
		for _, shape := range [][]string{
			{"-N2"},
			{"-N2", "-n3"},
			{"-N1"},
			{"-N2", "-c2"},
			{"-N2", "--exclusive"},
		} {
			// salloc's command prints the variables salloc gave it, then
			// what JobEnv reads, from within the same allocation.
			args := append(append([]string{"salloc", "-J", "shape"}, shape...),
				"sh", "-c", `env; echo ===; scontrol show job -d "$SLURM_JOB_ID"`)
			out := c.Run(t, args...)
			envText, show, ok := strings.Cut(out, "===\n")
			require.True(t, ok, "%s", out)
			var want []string
			for _, k := range []string{"SLURM_JOB_ID", "SLURM_JOB_NODELIST", "SLURM_JOB_CPUS_PER_NODE", "SLURM_JOB_NUM_NODES"} {
				for _, line := range strings.Split(envText, "\n") {
					if strings.HasPrefix(line, k+"=") {
						want = append(want, line)
					}
				}
			}
			got, err := jobEnv(show, func(list string) ([]string, error) {
				return strings.Fields(c.Run(t, "scontrol", "show", "hostnames", list)), nil
			})
			require.NoError(t, err)
			assert.Equal(t, want, got, "salloc %v", shape)
			t.Logf("salloc %v: %v", shape, got)
		}
	})

	job := c.Alloc(t, 2)
	t.Logf("job %s", job)

	t.Run("srun on each node", func(t *testing.T) {
		for _, n := range c.Nodes() {
			out := c.Run(t, srunOn(job, n, "sh", "-c", "echo $SLURMD_NODENAME")...)
			assert.Equal(t, n+"\n", out)
		}
	})

	t.Run("JobEnv", func(t *testing.T) {
		env := c.JobEnv(t, job)
		assert.Equal(t, []string{
			"SLURM_JOB_ID=" + job,
			"SLURM_JOB_NODELIST=n[1-2]",
			"SLURM_JOB_CPUS_PER_NODE=1(x2)",
			"SLURM_JOB_NUM_NODES=2",
		}, env)
		list := strings.TrimPrefix(env[1], "SLURM_JOB_NODELIST=")
		assert.Equal(t, "n1\nn2\n", c.Run(t, "scontrol", "show", "hostnames", list))

		// With the job's variables, srun needs no --jobid, as inside salloc.
		ctx, cancel := context.WithTimeout(context.Background(), clientLimit)
		defer cancel()
		cmd := c.Command(ctx, "srun", "-N1", "-n1", "-w", "n2", "--overlap", "--mem=0", "--quiet", "--",
			"sh", "-c", "echo $SLURM_JOB_ID $SLURMD_NODENAME")
		cmd.Env = append(cmd.Env, env...)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Equal(t, job+" n2\n", string(out))
	})

	t.Run("Down and Resume", func(t *testing.T) {
		c.Down(t, "n1")
		assert.True(t, strings.HasPrefix(c.NodeState(t, "n1"), "down"), c.NodeState(t, "n1"))
		// --no-kill: the job loses n1 but keeps running on n2, one of
		// whose two CPUs it holds.
		assert.Equal(t, "mix", c.NodeState(t, "n2"))
		assert.Equal(t, "RUNNING n2\n", c.Run(t, "squeue", "-h", "-j", job, "-o", "%T %N"))
		assert.Equal(t, "n2\n", c.Run(t, srunOn(job, "n2", "sh", "-c", "echo $SLURMD_NODENAME")...))

		c.Resume(t, "n1")
		assert.Equal(t, "idle", c.NodeState(t, "n1"))
		// The job does not get n1 back.
		assert.Equal(t, "RUNNING n2\n", c.Run(t, "squeue", "-h", "-j", job, "-o", "%T %N"))
	})

	c.Run(t, "scancel", job)
}

// TestCleanup checks that nothing of a cluster survives the test that
// started it: not the daemons, not slurmstepd, not a batch job's task.
func TestCleanup(t *testing.T) {
	recorded := map[int]testlab.Proc{}
	skipped := false
	t.Run("cluster", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		c := Start(t, 2)
		// A batch job runs without any client: only slurmstepd and its
		// task are left when the cluster stops.
		c.Run(t, "sbatch", "-N1", "-J", "left-running", "-o", "/dev/null", "-D", c.Dir, "--wrap", "sleep 300")
		require.True(t, waitFor(waitLimit, func() bool {
			names := comms(c.Processes())
			return count(names, "slurmstepd") == 1 && count(names, "sleep") == 1
		}), "processes: %v", comms(c.Processes()))
		pids := c.Processes()
		for _, pid := range pids {
			if p, ok := testlab.Stat(pid); ok {
				recorded[pid] = p
			}
		}
		names := comms(pids)
		t.Logf("processes of the cluster: %v %v", pids, names)
		for name, want := range map[string]int{"munged": 1, "slurmctld": 1, "slurmd": 2, "slurmstepd": 1, "sleep": 1} {
			assert.Equal(t, want, count(names, name), name)
		}
		for _, d := range append([]*daemon{c.munged, c.ctld}, c.slurmd...) {
			assert.Contains(t, pids, d.cmd.Process.Pid, d.name)
		}
	})
	if skipped {
		t.Skip("no cluster started")
	}
	require.NotEmpty(t, recorded)
	for pid, was := range recorded {
		p, ok := testlab.Stat(pid)
		alive := ok && p.Start == was.Start && p.Live()
		assert.False(t, alive, "pid %d (%s) left running", pid, was.Comm)
	}
}

// count returns how many of names are name.
func count(names []string, name string) int {
	k := 0
	for _, n := range names {
		if n == name {
			k++
		}
	}
	return k
}

// TestStartRetriesTakenPort gives the first slurmd a port already in use:
// Start must stop what it started and try again with other ports.
func TestStartRetriesTakenPort(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	calls := 0
	pickPorts = func(n int) ([]int, error) {
		calls++
		ports, err := freePorts(n)
		if err == nil && calls == 1 {
			ports[1] = taken.Addr().(*net.TCPAddr).Port
		}
		return ports, err
	}
	defer func() { pickPorts = freePorts }()

	c := Start(t, 2)
	assert.Equal(t, 2, calls)
	assert.Equal(t, "n1 idle\nn2 idle\n", c.Run(t, "sinfo", "-h", "-N", "-o", "%N %t"))
	out, err := os.ReadFile(filepath.Join(c.Dir, "log", "slurmd-n1.log"))
	require.NoError(t, err)
	assert.Contains(t, string(out), "Address already in use")
	// The daemons of the first attempt are gone: one slurmctld and two
	// slurmd are left.
	names := comms(c.Processes())
	assert.Equal(t, 1, count(names, "slurmctld"), "%v", names)
	assert.Equal(t, 2, count(names, "slurmd"), "%v", names)
}

func TestJobEnvParse(t *testing.T) {
	show := `JobId=8 JobName=t
   JobState=RUNNING Reason=None Dependency=(null)
   ReqNodeList=(null) ExcNodeList=(null)
   NodeList=n[1-3]
   BatchHost=n1
   NumNodes=3 NumCPUs=5 NumTasks=5 CPUs/Task=1 ReqB:S:C:T=0:0:*:*
   JOB_GRES=(null)
     Nodes=n[1-2] CPU_IDs=0-1 Mem=0 GRES=
     Nodes=n3 CPU_IDs=0 Mem=0 GRES=
   MinCPUsNode=1 MinMemoryNode=0 MinTmpDiskNode=0
`
	hosts := map[string][]string{"n[1-2]": {"n1", "n2"}, "n3": {"n3"}}
	hostnames := func(list string) ([]string, error) { return hosts[list], nil }
	env, err := jobEnv(show, hostnames)
	require.NoError(t, err)
	assert.Equal(t, []string{
		"SLURM_JOB_ID=8",
		"SLURM_JOB_NODELIST=n[1-3]",
		"SLURM_JOB_CPUS_PER_NODE=2(x2),1",
		"SLURM_JOB_NUM_NODES=3",
	}, env)

	_, err = jobEnv(strings.Replace(show, "RUNNING", "PENDING", 1), hostnames)
	assert.ErrorContains(t, err, "PENDING")
	_, err = jobEnv(strings.Replace(show, "NumNodes=3", "NumNodes=4", 1), hostnames)
	assert.Error(t, err)
}

func TestCompressCounts(t *testing.T) {
	for _, tc := range []struct {
		counts []int
		want   string
	}{
		{[]int{1}, "1"},
		{[]int{1, 1}, "1(x2)"},
		{[]int{2, 1}, "2,1"},
		{[]int{2, 2, 1, 3, 3, 3}, "2(x2),1,3(x3)"},
	} {
		assert.Equal(t, tc.want, compressCounts(tc.counts), "%v", tc.counts)
	}
}
