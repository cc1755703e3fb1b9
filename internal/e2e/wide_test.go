//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestWidePoolFewThreads runs 400 tasks of `sleep 2` at once and checks
// that the pool waits for them without a thread each: waiting children are
// awaited in the network poller (pidfd), so the pool's threads stay few
// however many children wait.
func TestWidePoolFewThreads(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns 400 processes at once")
	}
	const n = 400
	bin := program
	cmd := exec.Command(bin, "--ndjson", "-t", strconv.Itoa(n))
	cmd.Stdin = strings.NewReader(strings.Repeat(`{"command":"sleep","args":["2"]}`+"\n", n))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	most := 0
	for sampling := true; sampling; {
		if n, ok := threadsOf(cmd.Process.Pid); ok {
			most = max(most, n)
		}
		select {
		case err := <-done:
			require.NoError(t, err, "stderr: %s", stderr.Bytes())
			sampling = false
		case <-time.After(20 * time.Millisecond):
		}
	}
	elapsed := time.Since(start)
	t.Logf("%d tasks of sleep 2 at once: %s, at most %d threads", n, elapsed.Round(time.Millisecond), most)
	require.Equal(t, n, bytes.Count(stdout.Bytes(), []byte(`"exit_code":0,`)), "every task succeeds")
	require.Less(t, most, 64, "threads in the pool")
	require.Less(t, elapsed, 90*time.Second, "tasks that ran one after another would take %d s", 2*n)
}

// threadsOf reads how many threads process pid has.
func threadsOf(pid int) (int, bool) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			return n, err == nil
		}
	}
	return 0, false
}

// TestWidePoolWithinFewDescriptors runs a pool wider than its file
// descriptors allow (each running task holds a few): tasks that cannot get
// theirs wait for running ones to end, instead of failing with "too many
// open files".
func TestWidePoolWithinFewDescriptors(t *testing.T) {
	const n = 100
	bin := program
	cmd := exec.Command("sh", "-c", `ulimit -n 64 && exec "$0" --ndjson -t 100`, bin)
	cmd.Stdin = strings.NewReader(strings.Repeat(`{"command":"sleep","args":["0.2"]}`+"\n", n))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "stderr: %s\nstdout: %s", stderr.Bytes(), stdout.Bytes())
	require.Equal(t, n, bytes.Count(stdout.Bytes(), []byte(`"exit_code":0,`)), "every task succeeds: %s", stdout.Bytes())
}
