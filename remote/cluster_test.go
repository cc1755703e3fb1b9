//go:build linux

package remote

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/dispatch"
	"github.com/workerpool/workerpool/internal/sshtest"
	"github.com/workerpool/workerpool/job"
)

// startHosts builds workerpool and starts n hosts that have it on their
// PATH.
func startHosts(t *testing.T, n int) *sshtest.Hosts {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "workerpool")
	out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	var specs []sshtest.Spec
	for range n {
		specs = append(specs, sshtest.Spec{Env: map[string]string{"PATH": filepath.Dir(bin) + ":/usr/bin:/bin", "HOME": t.TempDir()}})
	}
	return sshtest.Start(t, specs...)
}

// openSSH is the OpenSSH transport that runs command.
func openSSH(t *testing.T, command string) *OpenSSH {
	t.Helper()
	ssh, err := NewOpenSSH(command)
	require.NoError(t, err)
	return ssh
}

// TestClusterLosesAHost runs tasks through a Pool over two hosts and this
// machine, in this process (so that the race detector watches the
// cluster), and kills one host half-way: every task still gets one
// result, and succeeds.
func TestClusterLosesAHost(t *testing.T) {
	hosts := startHosts(t, 2)
	here, err := dispatch.NewLocal(dispatch.LocalOptions{ProcessOptions: dispatch.ProcessOptions{Grace: time.Second}})
	require.NoError(t, err)
	defer here.Close()
	c, err := New(Options{Hosts: static(t, "2/h1,2/h2", "1/:"), Transport: openSSH(t, hosts.SSH), Here: here, ProcessOptions: dispatch.ProcessOptions{Grace: time.Second}})
	require.NoError(t, err)
	pool := dispatch.NewPool(c, dispatch.Options{Workers: c.Capacity()})

	const n = 120
	tasks := make(chan job.Task)
	go func() {
		defer close(tasks)
		for i := range n {
			tasks <- job.Task{Seq: int64(i + 1), Command: "sh", Args: []string{"-c", `sleep 0.05; printf %s "$WORKERPOOL_SSHTEST"`}}
		}
	}()
	seen := map[int64]bool{}
	hostOf := map[string]string{hosts.List[0].Marker: "h1", hosts.List[1].Marker: "h2", "": ":"}
	for res := range pool.Run(context.Background(), context.Background(), tasks) {
		require.False(t, seen[res.Seq], "task %d has two results", res.Seq)
		seen[res.Seq] = true
		require.NoError(t, res.Err)
		require.Equal(t, 0, res.ExitCode)
		require.Equal(t, res.Host, hostOf[res.Stdout.String()], "the result names the host that ran it")
		res.Close()
		if len(seen) == 20 {
			hosts.List[0].Kill()
		}
	}
	require.Len(t, seen, n)
	require.NoError(t, c.Close())
	for _, h := range hosts.List {
		deadline := time.Now().Add(15 * time.Second)
		for len(h.Processes()) > 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		require.Empty(t, h.Processes(), "nothing is left on %s", h.Alias)
	}
}

// TestClusterNoHost: a cluster whose hosts cannot be reached says so, with
// each host's reason, rather than waiting.
func TestClusterNoHost(t *testing.T) {
	hosts := startHosts(t, 1)
	hosts.List[0].Kill()
	c, err := New(Options{Hosts: static(t, "h1"), Transport: openSSH(t, hosts.SSH+" -o ConnectTimeout=5")})
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = c.Acquire(ctx, job.Request{CPUs: 1})
	require.ErrorContains(t, err, "no host left to run on (h1: the workerpool agent did not start: ssh failed")
	require.True(t, strings.Contains(err.Error(), "refused"), "ssh's reason: %v", err)
}
