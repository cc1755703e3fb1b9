package remote

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseCPUsPerNode(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []int
		err  bool
	}{
		{in: "2", want: []int{2}},
		{in: "4(x3),2", want: []int{4, 4, 4, 2}},
		{in: "1(x2)", want: []int{1, 1}},
		{in: "2,8(x2),1", want: []int{2, 8, 8, 1}},
		{in: "", err: true},
		{in: "4(x)", err: true},
		{in: "0", err: true},
		{in: "4(x0)", err: true},
		{in: "a", err: true},
	} {
		got, err := parseCPUsPerNode(tt.in)
		if tt.err {
			require.Error(t, err, "%q", tt.in)
			continue
		}
		require.NoError(t, err, "%q", tt.in)
		require.Equal(t, tt.want, got, "%q", tt.in)
	}
}

// TestSlurmJobFromEnv: the allocation is read from the environment, its
// node list expanded, and its nodes given their CPUs as slots, or -j's.
func TestSlurmJobFromEnv(t *testing.T) {
	env := map[string]string{"SLURM_JOB_ID": "42", "SLURM_JOB_NODELIST": "n[1-3]", "SLURM_JOB_CPUS_PER_NODE": "4(x2),2"}
	hostnames := func(list string) ([]string, error) {
		require.Equal(t, "n[1-3]", list)
		return []string{"n1", "n2", "n3"}, nil
	}
	job, err := SlurmJobFromEnv(func(k string) string { return env[k] }, hostnames)
	require.NoError(t, err)
	require.Equal(t, &SlurmJob{ID: "42", NodeList: "n[1-3]", Nodes: []string{"n1", "n2", "n3"}, CPUs: []int{4, 4, 2}}, job)
	require.Equal(t, []string{"4/n1", "4/n2", "2/n3"}, texts(job.Hosts(0).Logins()))
	require.Equal(t, []string{"3/n1", "3/n2", "3/n3"}, texts(job.Hosts(3).Logins()))

	_, err = SlurmJobFromEnv(func(string) string { return "" }, hostnames)
	require.EqualError(t, err, "not inside a Slurm allocation: run it under salloc or sbatch, or use --slurm-alloc")

	env["SLURM_JOB_CPUS_PER_NODE"] = "4(x2)"
	_, err = SlurmJobFromEnv(func(k string) string { return env[k] }, hostnames)
	require.ErrorContains(t, err, "counts 2 nodes")

	_, err = SlurmJobFromEnv(func(k string) string { return env[k] }, func(string) ([]string, error) { return nil, errors.New("bad list") })
	require.EqualError(t, err, `SLURM_JOB_NODELIST "n[1-3]": bad list`)
}

// TestSrunCommand: an agent's step is srun with the job, the node, an
// overlapping step that takes no resources, and the program's words as
// they are, with no shell.
func TestSrunCommand(t *testing.T) {
	cmd := NewSrun("42").Command(context.Background(), "n2", []string{"/opt/wp/workerpool", "--agent", "--grace", "5s"})
	require.Equal(t, []string{"srun", "--jobid=42", "--nodes=1", "--ntasks=1", "--nodelist=n2", "--overlap", "--mem=0",
		"--cpu-bind=none", "--quiet", "--job-name=workerpool-agent", "--", "/opt/wp/workerpool", "--agent", "--grace", "5s"}, cmd.Args)
	require.NotNil(t, cmd.Cancel, "a step is ended by SIGTERM to srun, not SIGKILL")
}

// TestStepOf: a step is found by the host and pid of its srun, as
// scontrol -o show step writes them.
func TestStepOf(t *testing.T) {
	show := "StepId=7.0 UserId=0 State=RUNNING NodeList=n1 Name=workerpool-agent SrunHost:Pid=vm:5563\n" +
		"StepId=7.1 UserId=0 State=RUNNING NodeList=n2 Name=workerpool-agent SrunHost:Pid=login2:5564\n" +
		"StepId=7.2 UserId=0 State=RUNNING NodeList=n2 Name=workerpool-agent SrunHost:Pid=vm:5564\n"
	require.Equal(t, "7.0", stepOf(show, "vm", 5563))
	require.Equal(t, "7.2", stepOf(show, "vm", 5564))
	require.Equal(t, "7.1", stepOf(show, "login2", 5564))
	require.Empty(t, stepOf(show, "vm", 556))
	require.Empty(t, stepOf("", "vm", 5563))
}

func TestGrantedID(t *testing.T) {
	require.Equal(t, "12", grantedID("salloc: Granted job allocation 12\nsalloc: Waiting for resource configuration\n"))
	require.Equal(t, "12", grantedID("salloc: Pending job allocation 12\nsalloc: job 12 queued and waiting for resources\nsalloc: Granted job allocation 12"))
	require.Empty(t, grantedID("salloc: error: Job submit/allocate failed: Requested node configuration is not available\n"))
	require.Empty(t, grantedID("salloc: Granted job allocation x\n"))
}

// TestParseShowJob: scontrol show job -d gives the job's nodes, each with
// the CPUs its group of nodes lists.
func TestParseShowJob(t *testing.T) {
	show := `JobId=12 JobName=workerpool-agent
   JobState=RUNNING Reason=None Dependency=(null)
   NodeList=n[1-3]
   NumNodes=3 NumCPUs=10 NumTasks=3 CPUs/Task=1 ReqB:S:C:T=0:0:*:*
     Nodes=n[1-2] CPU_IDs=0-3 Mem=0 GRES=
     Nodes=n3 CPU_IDs=0,2 Mem=0 GRES=
   MinCPUsNode=1 MinMemoryNode=0 MinTmpDiskNode=0
`
	hostnames := func(list string) ([]string, error) {
		return map[string][]string{"n[1-2]": {"n1", "n2"}, "n3": {"n3"}}[list], nil
	}
	job, err := ParseSlurmJob(show, hostnames)
	require.NoError(t, err)
	require.Equal(t, &SlurmJob{ID: "12", NodeList: "n[1-3]", Nodes: []string{"n1", "n2", "n3"}, CPUs: []int{4, 4, 2}}, job)

	_, err = ParseSlurmJob(strings.Replace(show, "RUNNING", "CANCELLED", 1), hostnames)
	require.EqualError(t, err, "the job is CANCELLED, not RUNNING")
	_, err = ParseSlurmJob(strings.Replace(show, "CPU_IDs=0,2", "CPU_IDs=2-0", 1), hostnames)
	require.ErrorContains(t, err, "no CPUs in")
	_, err = ParseSlurmJob(strings.Replace(show, "NumNodes=3", "NumNodes=4", 1), hostnames)
	require.EqualError(t, err, "CPUs found for 3 nodes, NumNodes=4")
}

// TestSlurmHostsFollowTheJob: the job's nodes are looked at every
// slurmPoll; a node that leaves the job leaves the hosts, once, and a job
// that cannot be read changes nothing.
func TestSlurmHostsFollowTheJob(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		job := &SlurmJob{ID: "7", Nodes: []string{"n1", "n2", "n3"}, CPUs: []int{4, 4, 2}}
		answers := []func() (*SlurmJob, error){
			func() (*SlurmJob, error) { return job, nil },
			func() (*SlurmJob, error) { return nil, errors.New("slurm_load_jobs error: Socket timed out") },
			func() (*SlurmJob, error) {
				return &SlurmJob{ID: "7", Nodes: []string{"n1", "n2"}, CPUs: []int{4, 4}}, nil
			},
		}
		src := job.Hosts(0).(*slurmHosts)
		src.show = func() (*SlurmJob, error) {
			a := answers[0]
			if len(answers) > 1 {
				answers = answers[1:]
			}
			return a()
		}
		var mu sync.Mutex
		var changes [][]string
		got := func() [][]string {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(changes)
		}
		ctx, cancel := context.WithCancel(context.Background())
		go src.Watch(ctx, slog.New(slog.DiscardHandler), func(l []Login) {
			mu.Lock()
			defer mu.Unlock()
			changes = append(changes, texts(l))
		})
		time.Sleep(2*slurmPoll + slurmPoll/2)
		synctest.Wait()
		require.Empty(t, got(), "the same nodes, then none read: no change")
		time.Sleep(slurmPoll)
		synctest.Wait()
		require.Equal(t, [][]string{{"4/n1", "4/n2"}}, got(), "n3 left the job")
		time.Sleep(3 * slurmPoll)
		synctest.Wait()
		require.Len(t, got(), 1, "told once")
		cancel()
		synctest.Wait()
	})
}
