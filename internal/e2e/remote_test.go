//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/internal/sshtest"
	"github.com/workerpool/workerpool/remote"
)

// These tests run the built program against real sshd instances on
// 127.0.0.1 (internal/sshtest): each host's sessions see WORKERPOOL_SSHTEST
// set to the host's marker, so a task can tell where it ran, and a
// process left behind on a host is found by it.

// rig is the built program and the hosts it reaches.
type rig struct {
	bin   string
	hosts *sshtest.Hosts
}

// hostSpec says whether a host has the program on its PATH.
type hostSpec struct{ hasProgram bool }

// newRig starts a host per spec, each with a home of its own and a PATH
// that holds the program TestMain built when the spec says so.
func newRig(t *testing.T, specs ...hostSpec) *rig {
	t.Helper()
	bin := program
	var ss []sshtest.Spec
	for _, s := range specs {
		path := "/usr/local/bin:/usr/bin:/bin"
		if s.hasProgram {
			path = filepath.Dir(bin) + ":" + path
		}
		ss = append(ss, sshtest.Spec{Env: map[string]string{"PATH": path, "HOME": t.TempDir()}})
	}
	return &rig{bin: bin, hosts: sshtest.Start(t, ss...)}
}

// remoteResult is a result line, as the tests read it.
type remoteResult struct {
	Identifier string `json:"identifier"`
	ExitCode   int    `json:"exit_code"`
	Body       string `json:"result_body"`
	Stderr     string `json:"stderr"`
	Seq        int64  `json:"seq"`
	Error      string `json:"error"`
	Signal     string `json:"signal"`
	TimedOut   bool   `json:"timed_out"`
	Truncated  bool   `json:"truncated"`
	Attempts   int    `json:"attempts"`
	Host       string `json:"host"`
	Event      string `json:"event"`
	Encoding   string `json:"encoding"`
	Limit      string `json:"limit"`
	MaxRSSKB   *int64 `json:"max_rss_kb"`
	StartedAt  string `json:"started_at"`
	EndedAt    string `json:"ended_at"`
}

// pool is a running workerpool.
type pool struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdout io.Closer // closing it makes the reader go away
	lines  chan remoteResult
	stderr *lockedBuffer
	done   chan struct{}
}

// lockedBuffer is a buffer that may be read while the program writes it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written, or its last 4 KiB.
func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	if len(s) > 4096 {
		s = "..." + s[len(s)-4096:]
	}
	return s
}

func (b *lockedBuffer) contains(s string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Contains(b.buf.String(), s)
}

// start starts the program with args and the rig's ssh configuration,
// feeding it input; its NDJSON lines arrive on p.lines.
func (r *rig) start(t *testing.T, input string, args ...string) *pool {
	t.Helper()
	p := startPool(t, exec.Command(r.bin, args...), input)
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); <-p.done })
	return p
}

// startPool starts cmd, the program, feeding it input; the lines it
// writes arrive on p.lines, each result of an array as a line of its own.
func startPool(t *testing.T, cmd *exec.Cmd, input string) *pool {
	t.Helper()
	cmd.Stdin = strings.NewReader(input)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	p := &pool{t: t, cmd: cmd, stdout: stdout, lines: make(chan remoteResult, 100000), stderr: new(lockedBuffer), done: make(chan struct{})}
	cmd.Stderr = p.stderr
	require.NoError(t, cmd.Start())
	go func() {
		defer close(p.done)
		defer close(p.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 64<<20)
		for sc.Scan() {
			var res remoteResult
			if json.Unmarshal(sc.Bytes(), &res) != nil {
				var arr []remoteResult
				if err := json.Unmarshal(sc.Bytes(), &arr); err != nil {
					t.Errorf("not JSON: %q", sc.Text())
					continue
				}
				for _, a := range arr {
					p.lines <- a
				}
				continue
			}
			p.lines <- res
		}
	}()
	return p
}

// next returns the next line, failing the test if none comes in time.
func (p *pool) next() remoteResult {
	p.t.Helper()
	select {
	case res, ok := <-p.lines:
		require.True(p.t, ok, "the pool ended early; stderr: %s", p.stderr)
		return res
	case <-time.After(60 * time.Second):
		p.t.Fatalf("no result line within a minute; stderr: %s", p.stderr)
	}
	return remoteResult{}
}

// wait waits, a bounded time, for the pool to exit, and returns its exit
// code and every line it wrote that was not read yet.
func (p *pool) wait() (int, []remoteResult) {
	p.t.Helper()
	var rest []remoteResult
	timeout := time.After(90 * time.Second)
	for {
		select {
		case res, ok := <-p.lines:
			if ok {
				rest = append(rest, res)
				continue
			}
			err := p.cmd.Wait()
			code := 0
			if ee, isExit := err.(*exec.ExitError); isExit {
				code = ee.ExitCode()
			} else {
				require.NoError(p.t, err)
			}
			return code, rest
		case <-timeout:
			p.t.Fatalf("the pool did not end within 90 s; stderr: %s", p.stderr)
		}
	}
}

// run runs the program to its end.
func (r *rig) run(t *testing.T, input string, args ...string) (int, []remoteResult, string) {
	t.Helper()
	p := r.start(t, input, args...)
	code, res := p.wait()
	return code, res, p.stderr.String()
}

// ssh is the --ssh flag that reaches the rig's hosts, with extra options.
func (r *rig) ssh(opts ...string) string {
	return strings.Join(append([]string{r.hosts.SSH}, opts...), " ")
}

// markerTask prints where it ran: the host's marker.
const markerTask = `{"command":"sh","args":["-c","printf %s \"$WORKERPOOL_SSHTEST\""]}`

// noneLeft waits, a bounded time, until no process the sessions on h
// started is left.
func noneLeft(t *testing.T, h *sshtest.Host) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for len(h.Processes()) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	require.Empty(t, h.Processes(), "processes left on %s", h.Alias)
}

// byMarker maps each host's marker to its alias.
func (r *rig) byMarker() map[string]string {
	m := map[string]string{}
	for _, h := range r.hosts.List {
		m[h.Marker] = h.Alias
	}
	return m
}

// meetTask is a task that prints its host's marker, as markerTask does,
// once a task has run in each of $2 places (hosts, or this machine): each
// marks its place in the folder $1, then waits, a minute at most, for the
// others. So a place that is up first cannot run every task before the
// others are reached, however slowly they are.
const meetTask = `{"command":"sh","args":["-c",` +
	`"d=$1 n=$2; : > \"$d/${WORKERPOOL_SSHTEST:-here}\"; i=0; ` +
	`while set -- \"$d\"/*; [ $# -lt $n ] && [ $i -lt 6000 ]; do i=$((i+1)); sleep 0.01; done; ` +
	`printf %%s \"$WORKERPOOL_SSHTEST\"","sh",%q,"%d"]}`

// TestRemoteSharesTasks: 500 tasks over three hosts, and over a host and
// this machine: every task gets one result, from the host that says it ran
// it, and every host is used.
func TestRemoteSharesTasks(t *testing.T) {
	r := newRig(t, hostSpec{true}, hostSpec{true}, hostSpec{true})
	for _, tc := range []struct {
		name   string
		logins []string
		want   []string
	}{
		{"three hosts", []string{"-S", "2/h1,2/h2", "-S", "2/h3"}, []string{"h1", "h2", "h3"}},
		{"a host and this machine", []string{"-S", "2/h1,2/:"}, []string{"h1", ":"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			input := strings.Repeat(fmt.Sprintf(meetTask, t.TempDir(), len(tc.want))+"\n", 500)
			code, results, stderr := r.run(t, input, append(tc.logins, "--ssh", r.ssh(), "--ndjson")...)
			require.Equal(t, 0, code, stderr)
			require.Len(t, results, 500)
			markers := r.byMarker()
			seen := map[int64]bool{}
			used := map[string]int{}
			for _, res := range results {
				require.False(t, seen[res.Seq], "task %d has two results", res.Seq)
				seen[res.Seq] = true
				require.Equal(t, 0, res.ExitCode, "%+v", res)
				used[res.Host]++
				if res.Host == ":" {
					require.Empty(t, res.Body, "a task run here has no host marker")
				} else {
					require.Equal(t, res.Host, markers[res.Body], "the task ran on the host its result names")
				}
			}
			for _, h := range tc.want {
				require.Positive(t, used[h], "host %s ran no task: %v", h, used)
			}
			t.Logf("tasks per host: %v", used)
		})
	}
	for _, h := range r.hosts.List {
		noneLeft(t, h)
	}
}

// sameTasks cover what a result carries: exit codes (255 among them, which
// ssh itself uses), signals, both outputs with bytes that are not UTF-8,
// stdin, env, dir, time limits, and commands that cannot start.
const sameTasks = `{"identifier":"ok","command":"echo","args":["hello"]}
{"identifier":"255","command":"sh","args":["-c","echo gone >&2; exit 255"]}
{"identifier":"3","command":"sh","args":["-c","printf 'a\\377b'; printf 'err' >&2; exit 3"]}
{"identifier":"killed","command":"sh","args":["-c","kill -TERM $$"]}
{"identifier":"stdin","command":"cat","stdin":"fed\nlines\n"}
{"identifier":"env","command":"sh","args":["-c","printf %s \"$GREETING\""],"env":{"GREETING":"hi there"}}
{"identifier":"dir","command":"pwd","dir":"/usr"}
{"identifier":"bad dir","command":"pwd","dir":"/no/such/dir"}
{"identifier":"timeout","command":"sleep","args":["10"],"timeout":"300ms"}
{"identifier":"missing","command":"no-such-command-here"}
{"identifier":"big","command":"sh","args":["-c","head -c 3000000 /dev/zero | tr '\\0' 'z'"]}
{"identifier":"limits","command":"sh","args":["-c","ulimit -n; ulimit -t"],"limits":{"files":20}}
{"identifier":"cpu","command":"sh","args":["-c","while :; do :; done"],"limits":{"cpu":1}}
`

// TestRemoteSameAsLocal: the same tasks run here and on a host give every
// identifier the same exit code, outputs and flags, in every output mode,
// and times when, and only when, they started.
func TestRemoteSameAsLocal(t *testing.T) {
	r := newRig(t, hostSpec{true})
	for _, mode := range [][]string{
		{"--ndjson"},
		{"--ndjson", "--ordered", "--binary"},
		{}, // the classic array
		{"--ndjson", "--max-output", "1000"},
	} {
		t.Run(strings.Join(mode, " "), func(t *testing.T) {
			lcode, local, lerr := r.run(t, sameTasks, append([]string{"-t", "4"}, mode...)...)
			before := time.Now().Truncate(time.Millisecond)
			rcode, remote, rerr := r.run(t, sameTasks, append([]string{"-S", "4/h1", "--ssh", r.ssh()}, mode...)...)
			after := time.Now()
			require.Equal(t, lcode, rcode, "exit status; stderr here: %s; remote: %s", lerr, rerr)
			require.Len(t, remote, len(local))
			want := map[string]remoteResult{}
			for _, res := range local {
				want[res.Identifier] = res
			}
			for _, res := range remote {
				require.Equal(t, "h1", res.Host)
				w := want[res.Identifier]
				require.Equal(t, w.MaxRSSKB == nil, res.MaxRSSKB == nil, "task %s: the cost comes back from the host", res.Identifier)
				require.Equal(t, w.StartedAt == "", res.StartedAt == "", "task %s: started_at", res.Identifier)
				require.Equal(t, w.EndedAt == "", res.EndedAt == "", "task %s: ended_at", res.Identifier)
				if res.StartedAt != "" {
					started, err := time.Parse(time.RFC3339, res.StartedAt)
					require.NoError(t, err)
					ended, err := time.Parse(time.RFC3339, res.EndedAt)
					require.NoError(t, err)
					require.False(t, started.Before(before) || ended.Before(started) || ended.After(after),
						"task %s: %s to %s, in a run from %s to %s", res.Identifier, res.StartedAt, res.EndedAt, before, after)
				}
				res.Host, res.MaxRSSKB, w.MaxRSSKB = "", nil, nil
				res.StartedAt, res.EndedAt, w.StartedAt, w.EndedAt = "", "", "", ""
				require.Equal(t, w, res, "task %s differs", res.Identifier)
			}
			if len(mode) > 0 && mode[len(mode)-1] == "--binary" || len(mode) == 0 {
				for i, res := range remote {
					require.Equal(t, int64(i+1), res.Seq, "results in input order")
				}
			}
		})
	}
}

// TestRemotePush: a host without the program runs tasks with --push, which
// copies it once; without --push its tasks fail with a clear error.
func TestRemotePush(t *testing.T) {
	r := newRig(t, hostSpec{false})
	input := strings.Repeat(markerTask+"\n", 5)
	code, results, stderr := r.run(t, input, "-S", "h1", "--ssh", r.ssh(), "--ndjson")
	require.Equal(t, 1, code, stderr)
	require.Len(t, results, 5)
	for _, res := range results {
		require.Equal(t, -1, res.ExitCode)
		require.Contains(t, res.Error, "no host left to run on (h1: the workerpool agent did not start")
	}

	for range 2 {
		code, results, stderr = r.run(t, input, "-S", "h1", "--ssh", r.ssh(), "--ndjson", "--push")
		require.Equal(t, 0, code, stderr)
		require.Len(t, results, 5)
		for _, res := range results {
			require.Equal(t, r.hosts.List[0].Marker, res.Body)
		}
	}
	copies, err := filepath.Glob(filepath.Join(homeOf(t, r, 0), ".cache/workerpool/*/workerpool"))
	require.NoError(t, err)
	require.Len(t, copies, 1, "one copy, kept by content")
}

// homeOf is the HOME of the rig's host i.
func homeOf(t *testing.T, r *rig, i int) string {
	t.Helper()
	out, err := exec.Command("ssh", "-F", r.hosts.Config, r.hosts.List[i].Alias, "--", `printf %s "$HOME"`).Output()
	require.NoError(t, err)
	return string(out)
}

// TestRemoteHostKilled: a host whose sshd is killed while it runs tasks is
// dropped; its tasks run again on the other host; every task gets one
// result, and succeeds.
func TestRemoteHostKilled(t *testing.T) {
	r := newRig(t, hostSpec{true}, hostSpec{true})
	input := strings.Repeat(`{"command":"sleep","args":["0.2"]}`+"\n", 60)
	p := r.start(t, input, "-S", "2/h1,2/h2", "--ssh", r.ssh(), "--ndjson")
	// Once h1 has finished a task, it runs two more: kill it then.
	var got []remoteResult
	for len(got) == 0 || got[len(got)-1].Host != "h1" {
		got = append(got, p.next())
	}
	r.hosts.List[0].Kill()
	code, rest := p.wait()
	got = append(got, rest...)
	require.Equal(t, 0, code, p.stderr.String())
	require.Len(t, got, 60)
	seen := map[int64]bool{}
	moved := 0
	for _, res := range got {
		require.False(t, seen[res.Seq], "task %d has two results", res.Seq)
		seen[res.Seq] = true
		require.Equal(t, 0, res.ExitCode, "%+v", res)
		if res.Attempts > 1 {
			moved++
			require.Equal(t, "h2", res.Host, "a task moved off the lost host")
		}
	}
	require.Positive(t, moved, "the tasks h1 was running ran again on h2")
	noneLeft(t, r.hosts.List[0])
	noneLeft(t, r.hosts.List[1])
}

// TestRemoteHostFrozen: a host that stops answering (its sshd stopped) is
// noticed by ssh's keepalives, and its tasks run again elsewhere.
func TestRemoteHostFrozen(t *testing.T) {
	r := newRig(t, hostSpec{true}, hostSpec{true})
	input := strings.Repeat(`{"command":"sleep","args":["0.3"]}`+"\n", 30)
	ssh := r.ssh("-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=2")
	p := r.start(t, input, "-S", "2/h1,2/h2", "--ssh", ssh, "--ndjson", "-v")
	got := []remoteResult{p.next(), p.next(), p.next(), p.next()}
	r.hosts.List[0].Freeze()
	code, rest := p.wait()
	got = append(got, rest...)
	require.Equal(t, 0, code, p.stderr.String())
	require.Len(t, got, 30)
	for _, res := range got {
		require.Equal(t, 0, res.ExitCode, "%+v", res)
	}
	require.Contains(t, p.stderr.String(), "host lost")
	r.hosts.List[0].Thaw()
	noneLeft(t, r.hosts.List[0])
}

// TestRemoteAllDown: when no host can be reached, every task gets a result
// that says so, and the pool exits 1 rather than waiting.
func TestRemoteAllDown(t *testing.T) {
	r := newRig(t, hostSpec{true}, hostSpec{true})
	for _, h := range r.hosts.List {
		h.Kill()
	}
	code, results, stderr := r.run(t, strings.Repeat(markerTask+"\n", 20), "-S", "h1,h2", "--ssh", r.ssh())
	require.Equal(t, 1, code, stderr)
	require.Len(t, results, 20)
	for _, res := range results {
		require.Equal(t, -1, res.ExitCode)
		require.Contains(t, res.Error, "no host left to run on")
		require.Contains(t, res.Error, "h1: ")
		require.Contains(t, res.Error, "h2: ")
	}
}

// TestRemoteInterrupt: SIGINT stops the long tasks on the hosts too; no
// process is left there, and the results say cancelled.
func TestRemoteInterrupt(t *testing.T) {
	r := newRig(t, hostSpec{true})
	input := strings.Repeat(`{"command":"sh","args":["-c","sleep 300 & sleep 300"]}`+"\n", 6)
	p := r.start(t, input, "-S", "4/h1", "--ssh", r.ssh(), "--ndjson", "--events")
	for range 4 {
		require.Equal(t, "started", p.next().Event)
	}
	// The tasks have been sent; wait until the host runs them.
	h := r.hosts.List[0]
	deadline := time.Now().Add(15 * time.Second)
	for countSleeps(h) < 8 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	require.Equal(t, 8, countSleeps(h), "the four tasks run on the host")
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGINT))
	code, rest := p.wait()
	require.Equal(t, 130, code, p.stderr.String())
	require.Len(t, rest, 6)
	for _, res := range rest {
		require.Equal(t, "cancelled", res.Error, "%+v", res)
	}
	noneLeft(t, h)
}

// countSleeps counts the sleep processes the sessions on h run.
func countSleeps(h *sshtest.Host) int {
	n := 0
	for _, pid := range h.Processes() {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if strings.TrimSpace(string(comm)) == "sleep" {
			n++
		}
	}
	return n
}

// TestRemoteProtocolMismatch: an agent that speaks another protocol is
// refused with an error that says so; lines before a hello are skipped.
func TestRemoteProtocolMismatch(t *testing.T) {
	r := newRig(t, hostSpec{true})
	// An agent of protocol 1, one version older, knows no heartbeat: it
	// would be taken for frozen, and its tasks run again, for ever.
	fake := filepath.Join(t.TempDir(), "old-workerpool")
	require.NoError(t, os.WriteFile(fake, []byte("#!/bin/sh\necho '{\"workerpool_agent\":\"v0.1\",\"protocol\":1,\"cpus\":1}'\nexec cat >/dev/null\n"), 0o755))
	code, results, stderr := r.run(t, markerTask+"\n", "-S", "h1", "--ssh", r.ssh(), "--remote-path", fake)
	require.Equal(t, 1, code, stderr)
	require.Len(t, results, 1)
	require.Contains(t, results[0].Error, fmt.Sprintf("its workerpool v0.1 speaks agent protocol 1 and this one %d: run the same version on both (or use --push)", remote.Protocol))

	// What a login prints before the agent's hello is no hello, and is
	// skipped.
	noisy := filepath.Join(t.TempDir(), "noisy-workerpool")
	require.NoError(t, os.WriteFile(noisy, []byte("#!/bin/sh\necho 'Welcome to h1!'\necho\nexec workerpool \"$@\"\n"), 0o755))
	code, results, stderr = r.run(t, markerTask+"\n", "-S", "h1", "--ssh", r.ssh(), "--remote-path", noisy)
	require.Equal(t, 0, code, stderr)
	require.Equal(t, r.hosts.List[0].Marker, results[0].Body)
}

// TestRemoteModes: events name the host, fail-fast stops the remote tasks,
// and a login file read again adds a host while the pool runs.
func TestRemoteModes(t *testing.T) {
	r := newRig(t, hostSpec{true}, hostSpec{true})
	t.Run("events", func(t *testing.T) {
		code, lines, stderr := r.run(t, strings.Repeat(markerTask+"\n", 4), "-S", "h1", "--ssh", r.ssh(), "--ndjson", "--events")
		require.Equal(t, 0, code, stderr)
		require.Len(t, lines, 8)
		for _, l := range lines {
			require.Equal(t, "h1", l.Host, "%+v", l)
		}
	})
	t.Run("fail-fast", func(t *testing.T) {
		// As here, the failure starts no new task and lets the running one
		// end, and what it leaves in its process group is stopped.
		input := `{"identifier":"long","command":"sh","args":["-c","sleep 300 & sleep 2"]}` + "\n" + `{"identifier":"fail","command":"sh","args":["-c","sleep 0.5; exit 4"]}` + "\n" +
			strings.Repeat(`{"command":"true"}`+"\n", 10)
		start := time.Now()
		code, results, stderr := r.run(t, input, "-S", "2/h1", "--ssh", r.ssh(), "--ndjson", "--fail-fast", "--grace", "1s")
		require.Equal(t, 1, code, stderr)
		require.Len(t, results, 12)
		require.Less(t, time.Since(start), 60*time.Second)
		byID := map[string]remoteResult{}
		for _, res := range results {
			byID[res.Identifier] = res
		}
		require.Equal(t, 4, byID["fail"].ExitCode)
		require.Equal(t, 0, byID["long"].ExitCode, "the running task ends as it would")
		skipped := 0
		for _, res := range results {
			if strings.HasPrefix(res.Error, "skipped") {
				skipped++
			}
		}
		require.Equal(t, 10, skipped)
		noneLeft(t, r.hosts.List[0])
	})
	t.Run("login file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "hosts")
		require.NoError(t, os.WriteFile(file, []byte("# the build hosts\n1/h1\n"), 0o644))
		input := strings.Repeat(`{"command":"sh","args":["-c","sleep 0.1; printf %s \"$WORKERPOOL_SSHTEST\""]}`+"\n", 100)
		p := r.start(t, input, "--sshloginfile", file, "--ssh", r.ssh(), "--ndjson")
		require.Equal(t, "h1", p.next().Host)
		// h2 joins and h1 leaves: h1 finishes the task it runs, if any,
		// and takes no other; its agent ends while the run goes on.
		require.NoError(t, os.WriteFile(file, []byte("2/h2\n"), 0o644))
		for p.next().Host != "h2" {
		}
		noneLeft(t, r.hosts.List[0])
		code, rest := p.wait()
		require.Equal(t, 0, code, p.stderr.String())
		for _, res := range rest {
			require.Equal(t, "h2", res.Host, "no task runs on a host removed from the file")
		}
	})
	t.Run("reader gone", func(t *testing.T) {
		p := r.start(t, strings.Repeat(`{"command":"sleep","args":["300"]}`+"\n", 4), "-S", "2/h1", "--ssh", r.ssh(), "--ndjson", "--events")
		require.Equal(t, "started", p.next().Event)
		p.stdout.Close()
		code, _ := p.wait()
		require.Equal(t, 141, code, p.stderr.String())
		noneLeft(t, r.hosts.List[0])
	})
}

// TestRemoteHostComesBack: a host that cannot be reached at the start is
// tried again, and joins the run once it answers.
func TestRemoteHostComesBack(t *testing.T) {
	r := newRig(t, hostSpec{true}, hostSpec{true})
	h2 := r.hosts.List[1]
	h2.Freeze()
	input := strings.Repeat(`{"command":"sleep","args":["0.1"]}`+"\n", 150)
	p := r.start(t, input, "-S", "1/h1,1/h2", "--ssh", r.ssh("-o", "ConnectTimeout=1"), "--ndjson", "-v")
	deadline := time.Now().Add(30 * time.Second)
	for !p.stderr.contains("msg=\"host down\" host=h2") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	require.True(t, p.stderr.contains("msg=\"host down\" host=h2"), "h2 is down while frozen: %s", p.stderr)
	h2.Thaw()
	code, rest := p.wait()
	require.Equal(t, 0, code, p.stderr.String())
	used := map[string]int{}
	for _, res := range rest {
		used[res.Host]++
	}
	require.Positive(t, used["h2"], "the host that came back ran tasks: %v", used)
}

// TestRemoteUsage: bad logins and remote flags without hosts are usage
// errors.
func TestRemoteUsage(t *testing.T) {
	bin := program
	for _, args := range [][]string{
		{"-S", "0/h1"},
		{"-S", "-oProxyCommand=x"},
		{"--push"},
		{"--sshloginfile", "/no/such/file"},
		{"-S", "h1", "--heartbeat", "10ms"},
	} {
		cmd := exec.CommandContext(context.Background(), bin, args...)
		cmd.Stdin = strings.NewReader(markerTask)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee, "%v: %s", args, out)
		require.Equal(t, 2, ee.ExitCode(), "%v: %s", args, out)
		require.Equal(t, 1, bytes.Count(out, []byte("\n")), "one line: %s", out)
	}
}

// peakTask is a task that prints how many tasks of its group ran at once
// with it: it marks itself running in the folder $1, waits, a minute at
// most, until $2 tasks have begun (so that the first $2 meet, however
// slowly the host starts them), counts the tasks running, and lingers a
// little before it unmarks itself and ends. A task that begins once $2
// have begun meets at once. A task's mark is gone before its slot is free,
// so no count is more than the slots, and the first $2 count $2 when there
// are as many slots.
const peakTask = `{"command":"sh","args":["-c",` +
	`"d=$1 n=$2 id=$3; : > \"$d/run.$id\"; : > \"$d/begun.$id\"; i=0; ` +
	`while set -- \"$d\"/begun.*; [ $# -lt $n ] && [ $i -lt 6000 ]; do i=$((i+1)); sleep 0.01; done; ` +
	`set -- \"$d\"/run.*; c=$#; sleep 0.3; rm \"$d/run.$id\"; printf %%s $c","sh",%q,"%d","%d"]}`

// TestRemoteJobsPerHost: -j gives its slots to each host whose login
// names none (h1 reports fewer CPUs than that here, or as many), and a
// login's own count wins over it.
func TestRemoteJobsPerHost(t *testing.T) {
	r := newRig(t, hostSpec{true})
	for _, tc := range []struct {
		name   string
		logins []string
		slots  int
	}{
		{"-j gives the slots", []string{"-S", "h1", "-j", "3"}, 3},
		{"-j in a login file", []string{"--sshloginfile", "", "--jobs", "3"}, 3},
		{"the login's own count wins", []string{"-S", "2/h1", "-j", "5"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.logins[0] == "--sshloginfile" {
				file := filepath.Join(t.TempDir(), "hosts")
				require.NoError(t, os.WriteFile(file, []byte("h1\n"), 0o644))
				tc.logins[1] = file
			}
			var input strings.Builder
			for i := range 3 * tc.slots {
				fmt.Fprintf(&input, peakTask+"\n", dir, tc.slots, i)
			}
			code, results, stderr := r.run(t, input.String(), append(tc.logins, "--ssh", r.ssh(), "--ndjson")...)
			require.Equal(t, 0, code, stderr)
			require.Len(t, results, 3*tc.slots)
			peak := 0
			for _, res := range results {
				require.Equal(t, "h1", res.Host)
				n, err := strconv.Atoi(res.Body)
				require.NoError(t, err, "%+v", res)
				require.LessOrEqual(t, n, tc.slots, "no more tasks run at once on h1 than its slots")
				peak = max(peak, n)
			}
			require.Equal(t, tc.slots, peak, "as many tasks as its slots run at once on h1")
		})
	}
}
