//go:build linux

package remote

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/dispatch"
	"github.com/workerpool/workerpool/internal/sshtest"
	"github.com/workerpool/workerpool/job"
)

// TestClusterStagesFiles runs tasks that send and return files, four at
// once on one host, in this process (so that the race detector watches
// the connection as the files come and go): each file comes back
// transformed, and nothing is left on the host. A task whose file is
// missing fails without being sent, and the others run.
func TestClusterStagesFiles(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "workerpool")
	out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	hostTmp := t.TempDir()
	hosts := sshtest.Start(t, sshtest.Spec{Env: map[string]string{"PATH": filepath.Dir(bin) + ":/usr/bin:/bin", "HOME": t.TempDir(), "TMPDIR": hostTmp}})
	c, err := New(Options{Hosts: static(t, "4/h1"), Transport: openSSH(t, hosts.SSH), Cleanup: true,
		ProcessOptions: dispatch.ProcessOptions{Grace: time.Second}})
	require.NoError(t, err)
	work := t.TempDir()
	const n = 12
	for i := 1; i < n; i++ { // f0 is missing
		name := fmt.Sprintf("f%d", i)
		require.NoError(t, os.WriteFile(filepath.Join(work, name), bytes.Repeat([]byte(name+"\n"), 20000*i), 0o644))
	}
	tasks := make(chan job.Task)
	go func() {
		defer close(tasks)
		for i := range n {
			name := fmt.Sprintf("f%d", i)
			tasks <- job.Task{Seq: int64(i + 1), Command: "sh", Args: []string{"-c", `tr f F < "$1" > "$1.up"`, "sh", name},
				Dir: work, Transfer: []string{name}, Return: []string{name + ".up"}}
		}
	}()
	pool := dispatch.NewPool(c, dispatch.Options{Workers: c.Capacity()})
	results := 0
	for res := range pool.Run(context.Background(), context.Background(), tasks) {
		results++
		name := fmt.Sprintf("f%d", res.Seq-1)
		if res.Seq == 1 {
			require.Equal(t, job.ExitNeverStarted, res.ExitCode)
			require.ErrorContains(t, res.Err, "--transferfile")
			continue
		}
		require.NoError(t, res.Err)
		got, err := os.ReadFile(filepath.Join(work, name+".up"))
		require.NoError(t, err)
		require.Equal(t, bytes.Repeat([]byte("F"+name[1:]+"\n"), 20000*int(res.Seq-1)), got)
		res.Close()
	}
	require.Equal(t, n, results)
	require.NoError(t, c.Close())
	left, err := os.ReadDir(hostTmp)
	require.NoError(t, err)
	require.Empty(t, left)
}
