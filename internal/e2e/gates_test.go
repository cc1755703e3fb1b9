//go:build linux

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// gateLine is a line of --ndjson --events output: a result or an event.
type gateLine struct {
	Event     string    `json:"event"`
	Seq       int64     `json:"seq"`
	ExitCode  int       `json:"exit_code"`
	Attempt   int       `json:"attempt"`
	Attempts  int       `json:"attempts"`
	Resource  string    `json:"resource"`
	Error     string    `json:"error"`
	StartedAt time.Time `json:"started_at"`
}

// startTimes returns the results' started_at, in order.
func startTimes(t *testing.T, results []gateLine) []time.Time {
	t.Helper()
	var starts []time.Time
	for _, r := range results {
		require.Equal(t, 0, r.ExitCode, "task %d: %s", r.Seq, r.Error)
		require.False(t, r.StartedAt.IsZero(), "task %d has no started_at", r.Seq)
		starts = append(starts, r.StartedAt)
	}
	slices.SortFunc(starts, time.Time.Compare)
	return starts
}

// TestDelayBetweenStarts: --delay 0.2 over 10 tasks at -t 4 takes 1.8 s at
// least, and no two tasks start much closer than 0.2 s apart.
func TestDelayBetweenStarts(t *testing.T) {
	begin := time.Now()
	code, out, stderr := runWith(t, "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n", program, "--ndjson", "-t", "4", "--delay", "0.2", "--", "true")
	elapsed := time.Since(begin)
	require.Equal(t, 0, code, stderr)
	starts := startTimes(t, ndjson[gateLine](t, out))
	require.Len(t, starts, 10)
	require.GreaterOrEqual(t, elapsed, 1800*time.Millisecond)
	for i := 1; i < len(starts); i++ {
		// The gap between two gates passed is 0.2 s; the spawns after them
		// may take more or less time on a busy machine.
		require.Greater(t, starts[i].Sub(starts[i-1]), 100*time.Millisecond, "starts %d and %d", i, i+1)
	}
}

// TestRateStartsPerSecond: --rate 20/s over 100 tasks at -t 8 takes 4.5 s
// at least, and no second holds more than 21 starts, by the results'
// started_at.
func TestRateStartsPerSecond(t *testing.T) {
	begin := time.Now()
	code, out, stderr := runWith(t, strings.Repeat("x\n", 100), program, "--ndjson", "-t", "8", "--rate", "20/s", "--", "true")
	elapsed := time.Since(begin)
	require.Equal(t, 0, code, stderr)
	starts := startTimes(t, ndjson[gateLine](t, out))
	require.Len(t, starts, 100)
	require.GreaterOrEqual(t, elapsed, 4500*time.Millisecond)
	for i, first := range starts {
		in := 0
		for _, s := range starts[i:] {
			if s.Sub(first) < time.Second {
				in++
			}
		}
		require.LessOrEqual(t, in, 21, "starts in the second from start %d", i+1)
	}
}

// gateRun is the program running in the background, with its output read
// line by line.
type gateRun struct {
	cmd   *exec.Cmd
	lines chan gateLine
	raw   *lockedBuffer // stderr
}

// startGateRun starts the program with args and stdin, and reads its
// NDJSON output as it comes.
func startGateRun(t *testing.T, stdin string, args ...string) *gateRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, program, args...)
	cmd.Stdin = strings.NewReader(stdin)
	r := &gateRun{cmd: cmd, lines: make(chan gateLine, 100), raw: new(lockedBuffer)}
	cmd.Stderr = r.raw
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	go func() {
		defer close(r.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var l gateLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				l.Event, l.Error = "unreadable", sc.Text()
			}
			r.lines <- l
		}
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return r
}

// until reads lines until one for which stop is true, and returns them
// all; it fails if the output ends first.
func (r *gateRun) until(t *testing.T, stop func(gateLine) bool) []gateLine {
	t.Helper()
	var got []gateLine
	for l := range r.lines {
		require.NotEqual(t, "unreadable", l.Event, l.Error)
		got = append(got, l)
		if stop(l) {
			return got
		}
	}
	t.Fatalf("the output ended after %v; stderr: %s", got, r.raw)
	return nil
}

// rest reads the lines left, and waits for the program to exit 0.
func (r *gateRun) rest(t *testing.T) []gateLine {
	t.Helper()
	var got []gateLine
	for l := range r.lines {
		require.NotEqual(t, "unreadable", l.Event, l.Error)
		got = append(got, l)
	}
	require.NoError(t, r.cmd.Wait(), r.raw.String())
	return got
}

// TestLoadWaitsWhileLoaded: with --load 0.0001, tasks wait while the load
// average (read from a file in the form of /proc/loadavg) is above it, say
// so after a second, and start once it falls.
func TestLoadWaitsWhileLoaded(t *testing.T) {
	loadavg := filepath.Join(t.TempDir(), "loadavg")
	require.NoError(t, os.WriteFile(loadavg, []byte("3.00 2.00 1.00 2/345 6789\n"), 0o644))
	r := startGateRun(t, "1\n2\n", "--ndjson", "--events", "--load", "0.0001", "--loadavg", loadavg, "--", "true")
	before := r.until(t, func(l gateLine) bool { return l.Event == "waiting" })
	require.Equal(t, "load", before[len(before)-1].Resource)
	for _, l := range before {
		require.Equal(t, "waiting", l.Event, "nothing starts while loaded")
	}
	time.Sleep(500 * time.Millisecond)

	allowed := time.Now()
	require.NoError(t, os.WriteFile(loadavg, []byte("0.00 0.00 0.00 1/345 6789\n"), 0o644))
	var results []gateLine
	for _, l := range r.rest(t) {
		if l.Event == "finished" {
			results = append(results, l)
		}
	}
	require.Len(t, results, 2)
	for _, s := range startTimes(t, results) {
		require.False(t, s.Before(allowed.Truncate(time.Millisecond)), "a task started at %v, before the load fell at %v", s, allowed)
	}
}

// meminfo writes a file in the form of /proc/meminfo.
func meminfo(t *testing.T, path string, total, available int64) {
	t.Helper()
	text := fmt.Sprintf("MemTotal:       %d kB\nMemFree:        %d kB\nMemAvailable:   %d kB\n", total>>10, available>>10, available>>10)
	tmp := path + ".new"
	require.NoError(t, os.WriteFile(tmp, []byte(text), 0o644))
	require.NoError(t, os.Rename(tmp, path))
}

// TestMemfreeRequeuesTheYoungest: when the memory available (read from a
// file in the form of /proc/meminfo) falls below half of --memfree, the
// youngest task is stopped, told of as requeued, and run again once the
// memory is back; it has one result, whose attempts count the stopped
// run, though --retries is 0.
func TestMemfreeRequeuesTheYoungest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meminfo")
	meminfo(t, path, 16<<30, 8<<30)
	// The task started second starts half a second after the other: it
	// is the youngest. Which of the two it is, the workers' race to the
	// delay decides, so it is read from the events.
	r := startGateRun(t, "1\n2\n", "--ndjson", "--events", "-t", "2", "--delay", "0.5", "--memfree", "2G", "--meminfo", path, "--", "sh", "-c", "sleep 3; echo {}")
	var started []int64
	r.until(t, func(l gateLine) bool {
		if l.Event == "started" {
			started = append(started, l.Seq)
		}
		return len(started) == 2
	})
	// The started line comes just before the task runs: give it time to.
	time.Sleep(300 * time.Millisecond)
	meminfo(t, path, 16<<30, 512<<20)
	before := r.until(t, func(l gateLine) bool { return l.Event == "requeued" })
	meminfo(t, path, 16<<30, 8<<30)
	requeued := before[len(before)-1]
	require.Equal(t, started[1], requeued.Seq, "the youngest task is stopped first")
	require.Equal(t, "memfree", requeued.Resource)

	lines := append(before, r.rest(t)...)
	stops := map[int64]int{}
	results := map[int64]gateLine{}
	for _, l := range lines {
		switch l.Event {
		case "requeued":
			stops[l.Seq]++
		case "finished":
			require.NotContains(t, results, l.Seq, "task %d has two results", l.Seq)
			results[l.Seq] = l
		}
	}
	require.Len(t, results, 2)
	for seq, res := range results {
		require.Equal(t, 0, res.ExitCode, "task %d: %s", seq, res.Error)
		require.Equal(t, 1+stops[seq], max(res.Attempts, 1), "task %d: its attempts count each run stopped", seq)
	}
}

// TestMemfreeAboveTotal: --memfree above the machine's memory is a usage
// error at once, not a run that never starts a task: on this machine, and
// with the memory read from a file.
func TestMemfreeAboveTotal(t *testing.T) {
	code, out, stderr := runWith(t, "x\n", program, "--memfree", "1P", "--", "true")
	require.Equal(t, 2, code)
	require.Empty(t, out)
	require.Contains(t, stderr, "--memfree is 1.0 PiB, more than the memory of this machine")

	path := filepath.Join(t.TempDir(), "meminfo")
	meminfo(t, path, 1<<30, 1<<29)
	code, _, stderr = runWith(t, "x\n", program, "--memfree", "2G", "--meminfo", path, "--", "true")
	require.Equal(t, 2, code)
	require.Equal(t, "workerpool: --memfree is 2.0 GiB, more than the memory of this machine, 1.0 GiB: no task would ever start\n", stderr)
}

// TestDelayAsParallel: --delay spaces the starts as GNU parallel's does,
// and the output is the same.
func TestDelayAsParallel(t *testing.T) {
	parallel, err := exec.LookPath("parallel")
	if err != nil {
		t.Skip("GNU parallel is not installed")
	}
	for _, run := range []struct {
		name string
		argv []string
	}{
		{"parallel", []string{parallel, "-k", "-j", "3", "--delay", "0.3", "echo"}},
		{"workerpool", []string{program, "--raw", "-j", "3", "--delay", "0.3", "--", "echo"}},
	} {
		begin := time.Now()
		code, out, stderr := runWith(t, "a\nb\nc\n", run.argv[0], run.argv[1:]...)
		require.Equal(t, 0, code, "%s: %s", run.name, stderr)
		require.Equal(t, "a\nb\nc\n", out, run.name)
		require.GreaterOrEqual(t, time.Since(begin), 600*time.Millisecond, run.name)
	}
}

// TestProgressHeldByGate: while a task waits at a gate for more than a
// second, the progress line names the gate.
func TestProgressHeldByGate(t *testing.T) {
	tasks := `[{"command":"true"},{"command":"true"},{"command":"true"}]`
	_, screen, code := runWithTerminalStderr(t, "", "--progress", "-t", "2", "--delay", "1.5", tasks)
	require.Equal(t, 0, code)
	require.Contains(t, screen, "held by --delay")
}

// TestRemoteGates: with hosts, --memfree goes to each agent, which holds
// back its own starts (a host with less memory than asked answers each
// task with why, rather than holding it for ever), and --delay spaces the
// starts of the whole pool.
func TestRemoteGates(t *testing.T) {
	r := newRig(t, hostSpec{true})
	code, out, stderr := runWith(t, "a\nb\n", r.bin, "--ndjson", "-S", "2/h1", "--ssh", r.ssh(), "--memfree", "1P", "--", "true")
	require.Equal(t, 1, code, stderr)
	results := ndjson[gateLine](t, out)
	require.Len(t, results, 2)
	for _, res := range results {
		require.Equal(t, -1, res.ExitCode)
		require.Regexp(t, `^--memfree 1P is more than the memory of the machine, [\d.]+[KMGT]$`, res.Error)
	}

	begin := time.Now()
	code, out, stderr = runWith(t, "a\nb\nc\n", r.bin, "--ndjson", "-S", "2/h1,1/:", "--ssh", r.ssh(), "--delay", "0.5", "--", "true")
	require.Equal(t, 0, code, stderr)
	require.GreaterOrEqual(t, time.Since(begin), time.Second)
	starts := startTimes(t, ndjson[gateLine](t, out))
	require.Len(t, starts, 3)
	for i := 1; i < len(starts); i++ {
		require.Greater(t, starts[i].Sub(starts[i-1]), 400*time.Millisecond, "starts %d and %d, on two hosts", i, i+1)
	}
}

// TestGatesKeepSlotNumbers: with the starts paced by --rate and --delay,
// {%} still names the slot a task runs in, from 1 to -t.
func TestGatesKeepSlotNumbers(t *testing.T) {
	code, out, stderr := runWith(t, strings.Repeat("x\n", 8), program, "--ndjson", "-t", "2", "--rate", "20/s", "--delay", "0.05", "--", "sh", "-c", "echo {%}; sleep 0.2")
	require.Equal(t, 0, code, stderr)
	slots := map[string]int{} // the tasks that printed each slot number
	for _, res := range ndjson[struct {
		Body string `json:"result_body"`
	}](t, out) {
		slots[res.Body]++
	}
	require.Equal(t, 8, slots["1\n"]+slots["2\n"], "slots: %v", slots)
	require.ElementsMatch(t, []string{"1\n", "2\n"}, slices.Collect(maps.Keys(slots)), "slots: %v", slots)
}

// TestDelayStartsInOrder: tasks paced by --delay start in the order they
// were read, as in GNU parallel, though their workers, each started for
// its task, reach the delay in an order of their own. Without the gate's
// turns, a run sometimes swapped the third and the fourth task (one run
// in two to ten, by the machine's load); four runs are made.
func TestDelayStartsInOrder(t *testing.T) {
	for range 4 {
		code, out, stderr := runWith(t, "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n", program, "--ndjson", "-k", "-j", "12", "--delay", "0.05", "--", "true")
		require.Equal(t, 0, code, stderr)
		results := ndjson[gateLine](t, out)
		require.Len(t, results, 12)
		for i := 1; i < len(results); i++ {
			require.True(t, results[i].StartedAt.After(results[i-1].StartedAt), "task %d started at %v, before task %d at %v",
				results[i].Seq, results[i].StartedAt, results[i-1].Seq, results[i-1].StartedAt)
		}
	}
}
