package remote

import (
	"context"
	"errors"
	"testing"

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
	require.Equal(t, &SlurmJob{ID: "42", Nodes: []string{"n1", "n2", "n3"}, CPUs: []int{4, 4, 2}}, job)
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
