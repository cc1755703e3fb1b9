//go:build linux

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/internal/sshtest"
)

// These tests hold the remote path to its promise when an agent misbehaves:
// it freezes, it or its login writes what is not the protocol, or it
// answers what was not asked. Every task still gets one result, signals
// still end the run, and nothing waits for ever.

// agentPID returns the pid of the agent that a session on h runs, waiting
// a bounded time for one to start.
func agentPID(t *testing.T, h *sshtest.Host) int {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for _, pid := range h.Processes() {
			if isAgent(pid) {
				return pid
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no agent runs on %s", h.Alias)
	return 0
}

// freezeAgent stops the agent on h with SIGSTOP, leaving sshd and the
// agent's tasks running, and continues it at the test's end.
func freezeAgent(t *testing.T, h *sshtest.Host) int {
	t.Helper()
	pid := agentPID(t, h)
	require.NoError(t, syscall.Kill(pid, syscall.SIGSTOP))
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
	return pid
}

// TestRemoteFrozenAgent: an agent that freezes while its sshd still
// answers ssh's keepalives is noticed by the heartbeat within seconds; the
// task it ran runs again, on the other host or on a new agent of the same
// host, and succeeds.
func TestRemoteFrozenAgent(t *testing.T) {
	for _, tc := range []struct {
		name   string
		logins string
		hosts  int
	}{
		{"one host", "1/h1", 1},
		{"two hosts", "1/h1,1/h2", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			specs := make([]hostSpec, tc.hosts)
			for i := range specs {
				specs[i] = hostSpec{true}
			}
			r := newRig(t, specs...)
			input := `{"identifier":"frozen","command":"sleep","args":["2"]}` + "\n"
			p := r.start(t, input, "-S", tc.logins, "--ssh", r.ssh(), "--ndjson", "--events", "--timeout", "3s", "--grace", "1s", "-v")
			started := p.next()
			require.Equal(t, "started", started.Event)
			h := r.hosts.List[0]
			if started.Host == "h2" {
				h = r.hosts.List[1]
			}
			pid := freezeAgent(t, h)
			start := time.Now()
			for !p.stderr.contains("no word from the agent") && time.Since(start) < 30*time.Second {
				time.Sleep(20 * time.Millisecond)
			}
			noticed := time.Since(start)
			t.Logf("the frozen agent was noticed after %s", noticed.Round(10*time.Millisecond))
			// Three heartbeats of 2 s, checked every 2 s: 6 to 8 s, with room
			// for a busy machine.
			require.Less(t, noticed, 15*time.Second, "the frozen agent is noticed within seconds")
			code, rest := p.wait()
			require.Equal(t, 0, code, p.stderr.String())
			results := resultsOnly(rest)
			require.Len(t, results, 1, "%+v", rest)
			require.Equal(t, 0, results[0].ExitCode, "%+v", results[0])
			require.Equal(t, 2, results[0].Attempts, "it ran again: %+v", results[0])
			require.Contains(t, p.stderr.String(), "no word from the agent")
			require.NoError(t, syscall.Kill(pid, syscall.SIGCONT))
			for _, h := range r.hosts.List {
				noneLeft(t, h)
			}
		})
	}
}

// resultsOnly drops the event lines but the results (finished).
func resultsOnly(lines []remoteResult) []remoteResult {
	var out []remoteResult
	for _, l := range lines {
		if l.Event == "" || l.Event == "finished" {
			out = append(out, l)
		}
	}
	return out
}

// TestRemoteSignalWhileFrozen: SIGTERM ends the run within the grace and a
// few seconds even when the agent running the tasks is frozen, and every
// task is reported cancelled.
func TestRemoteSignalWhileFrozen(t *testing.T) {
	r := newRig(t, hostSpec{true})
	input := strings.Repeat(`{"command":"sleep","args":["60"]}`+"\n", 3)
	p := r.start(t, input, "-S", "2/h1", "--ssh", r.ssh(), "--ndjson", "--events", "--grace", "1s")
	require.Equal(t, "started", p.next().Event)
	require.Equal(t, "started", p.next().Event)
	h := r.hosts.List[0]
	deadline := time.Now().Add(15 * time.Second)
	for countSleeps(h) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	pid := freezeAgent(t, h)
	start := time.Now()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	code, rest := p.wait()
	// The grace (1 s) and the pool's margin for a reply (3 s), with room
	// for a busy machine.
	require.Less(t, time.Since(start), 15*time.Second, "the signal ended the run in time")
	require.Equal(t, 143, code, p.stderr.String())
	results := resultsOnly(rest)
	require.Len(t, results, 3)
	for _, res := range results {
		require.Equal(t, "cancelled", res.Error, "%+v", res)
	}
	// Once it runs again, the agent finds its pool gone and stops its tasks.
	require.NoError(t, syscall.Kill(pid, syscall.SIGCONT))
	noneLeft(t, h)
}

// wrapAgent writes a script that does what prelude says, then runs the
// agent on the host's PATH, and returns its path for --remote-path.
func wrapAgent(t *testing.T, prelude string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "wrapped-workerpool")
	require.NoError(t, os.WriteFile(path, []byte("#!/bin/sh\n"+prelude+"\nexec workerpool \"$@\"\n"), 0o755))
	return path
}

// TestRemoteStrayLine: a line that is not the protocol, written after the
// hello (here by a login's background job), ends that connection; the
// tasks it ran run again on a new one, and every task succeeds.
func TestRemoteStrayLine(t *testing.T) {
	r := newRig(t, hostSpec{true})
	// Only the first login of the host says it: the next one is clean.
	wrapper := wrapAgent(t, `if [ ! -e "$HOME/.mailed" ]; then : > "$HOME/.mailed"; (sleep 1; echo 'You have new mail') & fi`)
	input := strings.Repeat(`{"command":"sleep","args":["0.5"]}`+"\n", 16)
	start := time.Now()
	code, results, stderr := r.run(t, input, "-S", "2/h1", "--ssh", r.ssh(), "--remote-path", wrapper, "--ndjson", "-v")
	require.Less(t, time.Since(start), 60*time.Second)
	require.Equal(t, 0, code, stderr)
	require.Len(t, results, 16)
	for _, res := range results {
		require.Equal(t, 0, res.ExitCode, "%+v", res)
	}
	require.Contains(t, stderr, "host lost")
	require.Contains(t, stderr, "protocol error")
	require.Contains(t, stderr, "You have new mail")
	noneLeft(t, r.hosts.List[0])
}

// TestRemoteBanner: a login banner without a line end before the hello is
// skipped; noise that never becomes a hello fails the host within
// seconds, quoting its first bytes, rather than after the hello timeout.
func TestRemoteBanner(t *testing.T) {
	r := newRig(t, hostSpec{true})
	t.Run("no line end", func(t *testing.T) {
		wrapper := wrapAgent(t, `printf 'Welcome '`)
		code, results, stderr := r.run(t, markerTask+"\n", "-S", "h1", "--ssh", r.ssh(), "--remote-path", wrapper)
		require.Equal(t, 0, code, stderr)
		require.Len(t, results, 1)
		require.Equal(t, r.hosts.List[0].Marker, results[0].Body)
	})
	t.Run("noise", func(t *testing.T) {
		noise := filepath.Join(t.TempDir(), "noisy-agent")
		require.NoError(t, os.WriteFile(noise, []byte("#!/bin/sh\nhead -c 40000 /dev/zero | tr '\\0' '~'\nexec cat >/dev/null\n"), 0o755))
		start := time.Now()
		code, results, stderr := r.run(t, markerTask+"\n", "-S", "h1", "--ssh", r.ssh(), "--remote-path", noise)
		require.Less(t, time.Since(start), 20*time.Second, "no waiting for the hello timeout")
		require.Equal(t, 1, code, stderr)
		require.Len(t, results, 1)
		require.Contains(t, results[0].Error, "no hello in the first")
		require.Contains(t, results[0].Error, `the host said "~~~~`)
		noneLeft(t, r.hosts.List[0])
	})
}

// fakeAgentPath returns a script that runs the test binary as a fake agent
// (fakeAgent) that misbehaves as mode says.
func fakeAgentPath(t *testing.T, mode string) string {
	t.Helper()
	self, err := exec.LookPath("wp-fake-agent")
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "fake-agent-"+mode)
	require.NoError(t, os.WriteFile(path, []byte("#!/bin/sh\nWP_FAKE_MODE="+mode+" exec "+self+" \"$@\"\n"), 0o755))
	return path
}

// TestRemoteFakeAgent: what an agent says is never trusted. Figures out of
// range are clamped; a reply for a task not asked for, or a second reply
// for one, ends the connection as a protocol error, and no wait hangs.
func TestRemoteFakeAgent(t *testing.T) {
	r := newRig(t, hostSpec{true})
	run := func(t *testing.T, mode string, args ...string) (int, []remoteResult, string) {
		start := time.Now()
		// A short heartbeat, so that a silent agent is found out sooner.
		args = append([]string{"-S", "1/h1", "--ssh", r.ssh(), "--remote-path", fakeAgentPath(t, mode), "--ndjson", "-v", "--heartbeat", "500ms"}, args...)
		code, results, stderr := r.run(t, markerTask+"\n", args...)
		require.Less(t, time.Since(start), 60*time.Second)
		require.Len(t, results, 1, stderr)
		return code, results, stderr
	}
	t.Run("usage out of range", func(t *testing.T) {
		code, results, stderr := run(t, "huge-usage")
		require.Equal(t, 0, code, stderr)
		require.Equal(t, "ok", results[0].Body)
		require.NotNil(t, results[0].MaxRSSKB)
		require.Positive(t, *results[0].MaxRSSKB, "clamped, not wrapped")
	})
	t.Run("unknown id", func(t *testing.T) {
		code, results, stderr := run(t, "unknown-id")
		require.Equal(t, 1, code, stderr)
		require.Contains(t, results[0].Error, "host lost")
		require.Contains(t, results[0].Error, "protocol error: a reply for task")
	})
	t.Run("three replies", func(t *testing.T) {
		// The first reply is the task's; the others end the connection, which
		// the pool may already be closing.
		code, results, stderr := run(t, "thrice")
		require.Equal(t, 0, code, stderr)
		require.Equal(t, "ok", results[0].Body)
	})
	t.Run("negative length", func(t *testing.T) {
		code, results, stderr := run(t, "negative-length")
		require.Equal(t, 1, code, stderr)
		require.Contains(t, results[0].Error, "protocol error")
	})
	t.Run("silent", func(t *testing.T) {
		// It takes tasks and never answers, not even a heartbeat.
		code, results, stderr := run(t, "silent")
		require.Equal(t, 1, code, stderr)
		require.Contains(t, results[0].Error, "no word from the agent")
	})
	t.Run("no stop on cancel", func(t *testing.T) {
		// It beats but ignores the time limit and the cancel: the pool's own
		// clock ends the task.
		code, results, stderr := run(t, "deaf", "--timeout", "1s", "--grace", "1s")
		require.Equal(t, 1, code, stderr)
		require.Equal(t, 124, results[0].ExitCode, "%+v", results[0])
		require.True(t, results[0].TimedOut)
		require.Contains(t, results[0].Error, "did not stop it")
	})
}

// TestRemoteLoginFileEmptied: a login file emptied by its writer before it
// is written again changes nothing: the hosts stay, and every task runs.
func TestRemoteLoginFileEmptied(t *testing.T) {
	r := newRig(t, hostSpec{true})
	file := filepath.Join(t.TempDir(), "hosts")
	require.NoError(t, os.WriteFile(file, []byte("2/h1\n"), 0o644))
	input := strings.Repeat(`{"command":"sleep","args":["0.2"]}`+"\n", 40)
	p := r.start(t, input, "--sshloginfile", file, "--ssh", r.ssh(), "--ndjson", "-v")
	got := []remoteResult{p.next()}
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	deadline := time.Now().Add(15 * time.Second)
	for !p.stderr.contains("login file names no host") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	require.True(t, p.stderr.contains("login file names no host"), p.stderr.String())
	require.NoError(t, os.WriteFile(file, []byte("2/h1\n"), 0o644))
	code, rest := p.wait()
	got = append(got, rest...)
	require.Equal(t, 0, code, p.stderr.String())
	require.Len(t, got, 40)
	for _, res := range got {
		require.Equal(t, 0, res.ExitCode, "%+v", res)
		require.Equal(t, "h1", res.Host)
	}
}

// TestRemoteBytesOfArguments: an item that is not UTF-8 reaches the remote
// command byte for byte, as it does here: the file it names is found.
func TestRemoteBytesOfArguments(t *testing.T) {
	r := newRig(t, hostSpec{true})
	dir := t.TempDir()
	name := filepath.Join(dir, "caf\xe9.txt")
	require.NoError(t, os.WriteFile(name, []byte("latin-1 name"), 0o644))
	// A file with the name as UTF-8 would turn it into, to be sure the
	// wrong one is not read instead.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "caf\ufffd.txt"), []byte("wrong file"), 0o644))
	code, results, stderr := r.run(t, name+"\x00", "-0", "-S", "h1", "--ssh", r.ssh(), "--ndjson", "--", "cat", "{}")
	require.Equal(t, 0, code, stderr)
	require.Len(t, results, 1)
	require.Equal(t, "latin-1 name", results[0].Body)
}
