//go:build linux

package sshtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/workerpool/workerpool/internal/testlab"
)

// ssh runs the hosts' ssh command with args and returns its standard output
// and error. It gives up after limit.
func ssh(t *testing.T, hs *Hosts, limit time.Duration, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	words := strings.Fields(hs.SSH)
	cmd := exec.CommandContext(ctx, words[0], append(words[1:], args...)...)
	cmd.WaitDelay = time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return stdout.String(), stderr.String(), err
}

// background starts ssh with args and returns a channel that receives its
// Wait result. The standard input of ssh is a pipe that stays open until
// the test ends, so the remote command does not see end of file unless the
// connection goes away.
func background(t *testing.T, hs *Hosts, args ...string) <-chan error {
	t.Helper()
	words := strings.Fields(hs.SSH)
	cmd := exec.Command(words[0], append(words[1:], args...)...)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		done <- cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		stdin.Close()
		<-exited
	})
	return done
}

// waitFor polls cond every 10 ms for up to limit.
func waitFor(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	p, ok := testlab.Stat(pid)
	return ok && p.Live()
}

// withComm returns the pids among pids whose comm is name.
func withComm(pids []int, name string) []int {
	var out []int
	for _, pid := range pids {
		if p, ok := testlab.Stat(pid); ok && p.Comm == name {
			out = append(out, pid)
		}
	}
	return out
}

func TestHosts(t *testing.T) {
	home1, home2 := t.TempDir(), t.TempDir()
	// bash runs $HOME/.bashrc for the commands sshd runs.
	require.NoError(t, os.WriteFile(filepath.Join(home2, ".bashrc"), []byte("export FROM_BASHRC=yes\n"), 0o644))
	// /sshtest-nowhere proves that PATH is ours, not sshd's default.
	path := "/sshtest-nowhere:/usr/local/bin:/usr/bin:/bin"
	hs := Start(t,
		Spec{Env: map[string]string{"PATH": path, "HOME": home1, "GREETING": "hi there"}},
		Spec{Env: map[string]string{"PATH": path, "HOME": home2}},
	)
	require.Len(t, hs.List, 2)
	h1, h2 := hs.List[0], hs.List[1]
	assert.Equal(t, "h1", h1.Alias)
	assert.Equal(t, "h2", h2.Alias)
	assert.NotEqual(t, h1.Port, h2.Port)
	assert.NotEqual(t, h1.Marker, h2.Marker)
	assert.Equal(t, "ssh -F "+hs.Config, hs.SSH)
	assert.True(t, alive(h1.Pid) && alive(h2.Pid))

	t.Run("echo", func(t *testing.T) {
		out, stderr, err := ssh(t, hs, 10*time.Second, "h1", "--", "echo", "hello")
		require.NoError(t, err, stderr)
		assert.Equal(t, "hello\n", out)
	})

	t.Run("SetEnv", func(t *testing.T) {
		for _, c := range []struct {
			h    *Host
			home string
		}{{h1, home1}, {h2, home2}} {
			out, stderr, err := ssh(t, hs, 10*time.Second, c.h.Alias, "--",
				`echo "$PATH|$HOME|$WORKERPOOL_SSHTEST|$GREETING"`)
			require.NoError(t, err, stderr)
			greeting := ""
			if c.h == h1 {
				greeting = "hi there"
			}
			assert.Equal(t, path+"|"+c.home+"|"+c.h.Marker+"|"+greeting+"\n", out, c.h.Alias)
		}

		out, stderr, err := ssh(t, hs, 10*time.Second, "h2", "--", `echo "$FROM_BASHRC"`)
		require.NoError(t, err, stderr)
		assert.Equal(t, "yes\n", out, "bash did not run $HOME/.bashrc")
	})

	t.Run("DefaultHOME", func(t *testing.T) {
		hs := Start(t, Spec{})
		out, stderr, err := ssh(t, hs, 10*time.Second, "h1", "--", `echo "$HOME"`)
		require.NoError(t, err, stderr)
		assert.Equal(t, filepath.Join(hs.Dir, "h1.home")+"\n", out)
	})

	t.Run("Kill", func(t *testing.T) {
		// sleep neither reads nor writes; cat reads its standard input
		// and so sees end of file when sshd goes away.
		sleepDone := background(t, hs, "h1", "--", "sleep 100")
		catDone := background(t, hs, "h1", "--", "cat")

		var sleeps, cats []int
		require.True(t, waitFor(10*time.Second, func() bool {
			pids := h1.Processes()
			sleeps, cats = withComm(pids, "sleep"), withComm(pids, "cat")
			return len(sleeps) == 1 && len(cats) == 1
		}), "sessions not found; h1 processes %v", h1.Processes())
		assert.Empty(t, withComm(h2.Processes(), "sleep"), "h2 must not see h1's sessions")

		h1.Kill()
		assert.False(t, alive(h1.Pid), "listener still alive")

		_, stderr, err := ssh(t, hs, 10*time.Second, "-o", "ConnectTimeout=5", "h1", "--", "true")
		assert.Error(t, err, "ssh to a killed host must fail")
		t.Logf("ssh to killed host: %v: %s", err, strings.TrimSpace(stderr))

		// The ssh clients see their connection closed and exit.
		for name, done := range map[string]<-chan error{"sleep": sleepDone, "cat": catDone} {
			select {
			case err := <-done:
				t.Logf("ssh client of %q session ended: %v", name, err)
				assert.Error(t, err)
			case <-time.After(10 * time.Second):
				t.Errorf("ssh client of %q session still running 10s after Kill", name)
			}
		}

		// The remote processes: cat sees end of file and exits; sleep
		// notices nothing and keeps running until cleanup kills it.
		assert.True(t, waitFor(10*time.Second, func() bool { return !alive(cats[0]) }),
			"remote cat still running 10s after Kill")
		assert.True(t, alive(sleeps[0]), "remote sleep ended by itself")
		t.Logf("after Kill: remote sleep pid %d alive=%v, remote cat pid %d alive=%v, h1.Processes()=%v",
			sleeps[0], alive(sleeps[0]), cats[0], alive(cats[0]), h1.Processes())
	})

	t.Run("FreezeThaw", func(t *testing.T) {
		h2.Freeze()
		for _, pid := range sshdTree(h2.Pid, testlab.Procs()) {
			p, ok := testlab.Stat(pid)
			if ok {
				assert.Equal(t, byte('T'), p.State, "pid %d (%s) not stopped", pid, p.Comm)
			}
		}
		start := time.Now()
		_, stderr, err := ssh(t, hs, 10*time.Second, "-o", "ConnectTimeout=2", "h2", "--", "true")
		assert.Error(t, err, "ssh to a frozen host must fail")
		t.Logf("ssh to frozen host after %v: %v: %s", time.Since(start).Round(time.Millisecond), err, strings.TrimSpace(stderr))

		h2.Thaw()
		out, stderr, err := ssh(t, hs, 10*time.Second, "-o", "ConnectTimeout=5", "h2", "--", "echo", "thawed")
		require.NoError(t, err, stderr)
		assert.Equal(t, "thawed\n", out)
	})
}

// TestCleanup checks that nothing survives the test that started the
// hosts: not the sshd processes, not the sessions' processes.
func TestCleanup(t *testing.T) {
	var pids []int
	t.Run("inner", func(t *testing.T) {
		hs := Start(t, Spec{})
		h := hs.List[0]
		background(t, hs, "h1", "--", "sleep 100")
		require.True(t, waitFor(10*time.Second, func() bool {
			return len(withComm(h.Processes(), "sleep")) == 1
		}))
		h.Freeze() // cleanup must also kill stopped processes
		pids = append(sshdTree(h.Pid, testlab.Procs()), h.Processes()...)
		t.Logf("processes: %v", pids)
		require.Greater(t, len(pids), 2)
	})
	for _, pid := range pids {
		assert.True(t, waitFor(10*time.Second, func() bool { return !alive(pid) }), "pid %d left running", pid)
	}
}

// TestCheckEnv checks the validation of Spec.Env.
func TestCheckEnv(t *testing.T) {
	for _, env := range []map[string]string{
		{"A=B": "x"},
		{MarkerVar: "x"},
		{"A": `x"y`},
	} {
		assert.Error(t, checkEnv(env), "%v", env)
	}
	assert.NoError(t, checkEnv(map[string]string{"PATH": "/a:/b", "X": "with space"}))
}
