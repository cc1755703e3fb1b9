package remote

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/dispatch"
	"github.com/workerpool/workerpool/job"
)

// agentPipe runs an agent in-process and returns the pool's ends of its
// input and output, and a channel that gets Serve's error.
func agentPipe(t *testing.T) (io.WriteCloser, *bufio.Reader, <-chan error) {
	t.Helper()
	return agentPipeWith(t, dispatch.Gates{})
}

// agentPipeWith is agentPipe, with an agent that holds back its starts by
// gates.
func agentPipeWith(t *testing.T, gates dispatch.Gates) (io.WriteCloser, *bufio.Reader, <-chan error) {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := Serve(context.Background(), inR, outW, AgentOptions{Version: "test", Local: dispatch.LocalOptions{ProcessOptions: dispatch.ProcessOptions{Grace: time.Second}}, Gates: gates})
		outW.Close()
		done <- err
	}()
	t.Cleanup(func() { inW.Close(); outR.Close() })
	r := bufio.NewReader(outR)
	var h hello
	require.NoError(t, readLine(r, &h))
	require.Equal(t, Protocol, h.Protocol)
	require.Equal(t, "test", h.Agent)
	require.Positive(t, h.CPUs)
	return inW, r, done
}

// receiveReply reads one reply, its outputs and the line break after
// them, skipping heartbeats.
func receiveReply(t *testing.T, r *bufio.Reader) (reply, string, string) {
	t.Helper()
	var rep reply
	for rep = (reply{Heartbeat: true}); rep.Heartbeat; {
		rep = reply{}
		require.NoError(t, readLine(r, &rep))
	}
	stdout := make([]byte, rep.Stdout)
	_, err := io.ReadFull(r, stdout)
	require.NoError(t, err)
	stderr := make([]byte, rep.Stderr)
	_, err = io.ReadFull(r, stderr)
	require.NoError(t, err)
	end, err := r.ReadByte()
	require.NoError(t, err)
	require.Equal(t, byte('\n'), end, "a line break ends the outputs")
	return rep, string(stdout), string(stderr)
}

func TestAgentRunsTasks(t *testing.T) {
	in, out, done := agentPipe(t)
	big := strings.Repeat("x", 3*dispatch.DefaultSpillAfter+7) // spilled to a file on the agent's side
	tasks := []request{
		{ID: 1, Command: "sh", Args: []string{"-c", "echo out; echo err >&2; exit 255"}},
		{ID: 2, Command: "cat", Stdin: []byte(big + "\x00\xff"), HasStdin: true},
		{ID: 3, Command: "no-such-command-anywhere"},
		{ID: 4, Command: "sleep", Args: []string{"5"}, Timeout: int64(50 * time.Millisecond)},
	}
	for _, q := range tasks {
		require.NoError(t, writeLine(in, q))
	}
	got := map[uint64]reply{}
	bodies := map[uint64][2]string{}
	for range tasks {
		rep, stdout, stderr := receiveReply(t, out)
		got[rep.ID], bodies[rep.ID] = rep, [2]string{stdout, stderr}
	}
	require.Equal(t, 255, got[1].ExitCode, "a task's exit 255 is its own")
	require.Equal(t, [2]string{"out\n", "err\n"}, bodies[1])
	require.True(t, got[1].Started)
	require.Equal(t, big+"\x00\xff", bodies[2][0], "every byte of a spilled output arrives")
	require.Equal(t, job.ExitNotFound, got[3].ExitCode)
	require.Contains(t, got[3].Error, "command not found")
	require.True(t, got[4].TimedOut)
	require.Equal(t, job.ExitTimedOut, got[4].ExitCode)

	in.Close()
	require.NoError(t, <-done, "the agent ends cleanly when its input ends")
}

// TestAgentCancel: a cancelled task is stopped and reported cancelled; the
// end of the input stops the tasks still running.
func TestAgentCancel(t *testing.T) {
	in, out, done := agentPipe(t)
	require.NoError(t, writeLine(in, request{ID: 7, Command: "sleep", Args: []string{"30"}}))
	require.NoError(t, writeLine(in, request{ID: 7, Cancel: true}))
	rep, _, _ := receiveReply(t, out)
	require.Equal(t, uint64(7), rep.ID)
	require.True(t, rep.Cancelled, "reply: %+v", rep)

	require.NoError(t, writeLine(in, request{ID: 8, Command: "sleep", Args: []string{"30"}}))
	start := time.Now()
	in.Close()
	rep, _, _ = receiveReply(t, out)
	require.Equal(t, uint64(8), rep.ID)
	require.True(t, rep.Cancelled, "reply: %+v", rep)
	require.NoError(t, <-done)
	require.Less(t, time.Since(start), 20*time.Second, "the running task was stopped, not waited for")
}

// TestAgentBadRequest: a line that is not a request ends the agent with
// an error that quotes it.
func TestAgentBadRequest(t *testing.T) {
	in, _, done := agentPipe(t)
	_, err := io.WriteString(in, "Welcome to the host!\n")
	require.NoError(t, err)
	err = <-done
	require.ErrorContains(t, err, "Welcome to the host!")
}

// TestAgentPoolSilent: an agent whose pool says nothing for three of the
// heartbeats it named stops its tasks, answers them cancelled, and ends
// with an error that says why.
func TestAgentPoolSilent(t *testing.T) {
	in, out, done := agentPipe(t)
	const beat = 100 * time.Millisecond
	require.NoError(t, writeLine(in, request{Heartbeat: int64(beat)}))
	require.NoError(t, writeLine(in, request{ID: 1, Command: "sleep", Args: []string{"30"}}))
	start := time.Now()
	rep, _, _ := receiveReply(t, out)
	require.Equal(t, uint64(1), rep.ID)
	require.True(t, rep.Cancelled, "reply: %+v", rep)
	require.ErrorIs(t, <-done, errPoolSilent)
	require.GreaterOrEqual(t, time.Since(start), livenessBeats*beat)
	require.Less(t, time.Since(start), 20*time.Second, "the silence was noticed")
}

// TestAgentPoolSilentWhileReturning: an agent whose pool stops reading
// while a task's returned file is on its way, more than the replies wait
// for, still ends once the pool has been silent for three heartbeats: the
// file is sent no further.
func TestAgentPoolSilentWhileReturning(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	in, _, done := agentPipe(t) // the pool reads nothing past the hello
	const beat = 100 * time.Millisecond
	require.NoError(t, writeLine(in, request{Heartbeat: int64(beat)}))
	require.NoError(t, writeLine(in, request{ID: 1, Command: "sh", Args: []string{"-c", "head -c 33554432 /dev/zero > big"}, Staged: true, Return: wireList{"big"}}))
	select {
	case err := <-done:
		require.ErrorIs(t, err, errPoolSilent)
	case <-time.After(30 * time.Second):
		t.Fatal("the agent did not end: it waits to send the returned file to a pool that reads nothing")
	}
}
