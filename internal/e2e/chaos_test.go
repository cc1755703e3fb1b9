//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	json "github.com/goccy/go-json"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestChaos runs the real program on thousands of tasks while a chaos
// monkey SIGKILLs and SIGSTOPs (then SIGCONTs) random processes of theirs,
// and checks what a user relies on, whatever was hit: exactly one result
// per task, every line valid UTF-8 and JSON, exit codes consistent with
// what each task meant to do, exit status 1 and no crash, no process left
// behind and no file descriptor leak. It does so with a writable TMPDIR and
// with one that does not exist (outputs past 256 KiB then fail with an error,
// in input order), and then closes the pool's stdout under it, which must
// end it with 141.
func TestChaos(t *testing.T) {
	bin := program
	pattern := writeChaosPattern(t)
	tasks, noTmpTasks, readerTasks := 2000, 300, 2000
	if testing.Short() {
		tasks, noTmpTasks, readerTasks = 400, 150, 500
	}
	t.Run("kill and stop", func(t *testing.T) {
		runChaos(t, bin, chaosRun{tasks: tasks, tmpdir: t.TempDir(), pattern: pattern})
	})
	t.Run("no temporary directory, ordered", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "missing")
		runChaos(t, bin, chaosRun{tasks: noTmpTasks, tmpdir: missing, spillFails: true, ordered: true, pattern: pattern})
	})
	t.Run("reader goes away", func(t *testing.T) {
		testReaderGoesAway(t, bin, readerTasks)
	})
}

// chaosRun is one run of the pool under chaos.
type chaosRun struct {
	tasks      int
	ordered    bool          // --ordered
	tmpdir     string        // the pool's TMPDIR
	spillFails bool          // tmpdir cannot be written: outputs past 256 KiB are cut, with an error
	pattern    *chaosPattern // the file big outputs are made of
}

// Limits of a chaos run.
const (
	chaosThreads = 32
	spillAfter   = 256 << 10            // bytes of a stream kept in memory before spilling
	maxPoolFDs   = chaosThreads*6 + 64  // open files the pool may have at any moment
	poolDeadline = 120 * time.Second    // a run taking longer is a hang
	settleTime   = 5 * time.Second      // for leftover processes to go
	bigOutput    = 32258 * len(patUnit) // 1,999,996 bytes, past spillAfter
	mediumOutput = 200000
	mediumEvery  = 52 // one task in so many prints mediumOutput bytes
)

// patUnit repeats through the pattern file: ASCII, a two-byte character and
// an invalid byte. It is 62 bytes long, so the pipe's 64 KiB chunks end at
// every even offset in it, and the spill threshold (256 KiB) at offset 8:
// "é" (offsets 7 and 8) is split across them, and must come out whole.
const patUnit = "abcdefg\xc3\xa9hijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456\xff"

// chaosPattern is a file of bigOutput bytes of patUnit, for tasks to print.
type chaosPattern struct {
	path  string
	bytes []byte
}

// writeChaosPattern writes the pattern file in a temporary directory.
func writeChaosPattern(t *testing.T) *chaosPattern {
	t.Helper()
	p := &chaosPattern{path: filepath.Join(t.TempDir(), "pattern"), bytes: bytes.Repeat([]byte(patUnit), bigOutput/len(patUnit))}
	require.NoError(t, os.WriteFile(p.path, p.bytes, 0o644))
	return p
}

// runChaos runs the pool on run.tasks tasks with the monkey loose, then
// checks the results and what the pool left behind.
func runChaos(t *testing.T, bin string, run chaosRun) {
	marker := newMarker()
	t.Cleanup(func() { killMarked(marker) })
	tasks := planChaos(run.tasks, marker, run.pattern)
	args := []string{"--ndjson", "-t", strconv.Itoa(chaosThreads), "--grace", "1s"}
	if run.ordered {
		args = append(args, "--ordered")
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "TMPDIR="+run.tmpdir)
	cmd.Stdin = openTasks(t, tasks)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 10 * time.Second // should the watchdog kill it with its output held open

	start := time.Now()
	require.NoError(t, cmd.Start())
	var hung atomic.Bool
	watchdog := time.AfterFunc(poolDeadline, func() { hung.Store(true); _ = cmd.Process.Kill() })
	m := newMonkey(marker, cmd.Process.Pid)
	stop, played := make(chan struct{}), make(chan struct{})
	go func() { defer close(played); m.run(stop) }()
	_ = cmd.Wait()
	watchdog.Stop()
	close(stop)
	<-played // every process the monkey stopped is continued
	t.Logf("%d tasks in %v; monkey: %d SIGKILL, %d SIGSTOP, %d SIGKILL to victims; pool fds at most %d (%d samples)",
		run.tasks, time.Since(start).Round(time.Millisecond), m.kills, m.stops, m.victims, m.maxFDs, m.fdSamples)

	require.False(t, hung.Load(), "the pool did not finish within %v", poolDeadline)
	require.NotContains(t, stderr.String(), "panic")
	require.NotContains(t, stderr.String(), "goroutine")
	require.Empty(t, stderr.String())
	require.Equal(t, 1, cmd.ProcessState.ExitCode(), "some tasks fail: exit status 1")
	results := parseResults(t, stdout.Bytes(), run.tasks, run.ordered)
	killed := 0
	for i, task := range tasks {
		checkResult(t, task, results[i], run.spillFails)
		if results[i].Signal != "" {
			killed++
		}
	}
	t.Logf("%d results report SIGKILL", killed)
	requireNoMarked(t, marker)
	require.Positive(t, m.fdSamples, "the pool's descriptors were sampled")
	require.Less(t, m.maxFDs, maxPoolFDs, "the pool's open file descriptors")
	if !run.spillFails {
		left, err := os.ReadDir(run.tmpdir)
		require.NoError(t, err)
		require.Empty(t, left, "spill files left in TMPDIR")
	}
}

// newMarker returns a word unique to one run, carried in WP_MARKER by every
// process of its tasks.
func newMarker() string {
	return "wpchaos" + strconv.FormatInt(time.Now().UnixNano(), 36)
}

// The classes of tasks, the suffix of their marker.
const (
	markSafe   = "safe"   // never signalled: its result is known exactly
	markHit    = "hit"    // may be SIGKILLed or SIGSTOPped
	markVictim = "victim" // SIGKILLed as soon as seen
)

// taskKind is what a task does.
type taskKind int

const (
	kindSleep  taskKind = iota // sleep 10-200 ms
	kindPrint                  // print to stdout and stderr, invalid UTF-8 too, and exit
	kindNap                    // print, sleep 10-200 ms, print to stderr, exit
	kindOrphan                 // leave a sleep 30 behind, print, exit
	kindMedium                 // print 200 KB, raw
	kindBigOut                 // print 2 MB to stdout
	kindBigErr                 // print 2 MB to stderr, a line to stdout, exit
)

// chaosCycle is the sequence of small task kinds. Its length, 12, is prime
// to 5, so the safe tasks (every fifth) come in every kind.
var chaosCycle = []taskKind{kindSleep, kindPrint, kindNap, kindPrint, kindOrphan, kindSleep,
	kindNap, kindPrint, kindSleep, kindNap, kindOrphan, kindPrint}

// chaosTask is one task of a chaos run, and what it reports when the chaos
// leaves its main process alone.
type chaosTask struct {
	seq       int
	class     string
	marker    string
	command   string
	args      []string
	exit      int    // its own exit code
	out, err  []byte // what it writes to stdout and stderr
	errVaries bool   // it has children, which the chaos may kill: the shell then says so on stderr
	orphan    bool   // it leaves a sleep 30 behind
	meta      string // copied into its result, when not empty
}

// planChaos returns n tasks: mostly the chaosCycle, every mediumEvery-th
// a medium one (from the 7th: the 111th is safe), every fifth safe and the
// others hit, eight big ones (half of them safe) spread evenly, and four
// victims. The plan is the same every time.
func planChaos(n int, marker string, pat *chaosPattern) []chaosTask {
	rng := rand.New(rand.NewPCG(1, 2))
	tasks := make([]chaosTask, n)
	for i := range tasks {
		class, kind := markHit, chaosCycle[i%len(chaosCycle)]
		if i%5 == 0 {
			class = markSafe
		}
		if i%mediumEvery == 6 {
			kind = kindMedium
		}
		tasks[i] = newTask(i+1, kind, class, marker, pat, rng)
	}
	for k := range 8 {
		kind, class := kindBigOut, markSafe
		if k%2 == 1 {
			kind = kindBigErr
		}
		if k >= 4 {
			class = markHit
		}
		i := k*n/8 + n/16
		tasks[i] = newTask(i+1, kind, class, marker, pat, rng)
	}
	for k := range 4 {
		i := k*n/4 + n/8 + 1
		tasks[i] = chaosTask{seq: i + 1, class: markVictim, marker: marker, command: "sleep", args: []string{"20"}}
	}
	return tasks
}

// newTask returns the task seq of a kind, with a random nap and exit code.
func newTask(seq int, kind taskKind, class, marker string, pat *chaosPattern, rng *rand.Rand) chaosTask {
	s := strconv.Itoa(seq)
	code := []int{0, 0, 0, 1, 2, 3, 42}[rng.IntN(7)]
	nap := fmt.Sprintf("0.%03d", 10+rng.IntN(191))
	t := chaosTask{seq: seq, class: class, marker: marker, command: "sh", exit: code}
	shell := func(script string, extra ...string) []string {
		return append([]string{"-c", script, "sh", s, strconv.Itoa(code)}, extra...)
	}
	switch kind {
	case kindSleep:
		t.command, t.args, t.exit = "sleep", []string{nap}, 0
	case kindPrint:
		t.args = shell(`printf 'o%s\377\n' "$1"; printf 'e%s\376\n' "$1" >&2; exit "$2"`)
		t.out, t.err = []byte("o"+s+"\xff\n"), []byte("e"+s+"\xfe\n")
	case kindNap:
		t.args = shell(`printf 's%s\n' "$1"; sleep "$3"; printf '\377%s\n' "$1" >&2; exit "$2"`, nap)
		t.out, t.err, t.errVaries = []byte("s"+s+"\n"), []byte("\xff"+s+"\n"), true
	case kindOrphan:
		t.args = shell(`sleep 30 & printf 'g%s\n' "$1"; exit "$2"`)
		t.out, t.orphan, t.errVaries = []byte("g"+s+"\n"), true, true
	case kindMedium:
		t.command, t.args, t.exit = "head", []string{"-c", strconv.Itoa(mediumOutput), pat.path}, 0
		t.out = pat.bytes[:mediumOutput]
	case kindBigOut:
		t.command, t.args, t.exit = "cat", []string{pat.path}, 0
		t.out = pat.bytes
	case kindBigErr:
		t.args = shell(`cat "$3" >&2; printf 'b%s\n' "$1"; exit "$2"`, pat.path)
		t.out, t.err, t.errVaries = []byte("b"+s+"\n"), pat.bytes, true
	}
	return t
}

// openTasks writes the tasks as NDJSON to a file and opens it for reading.
func openTasks(t *testing.T, tasks []chaosTask) *os.File {
	t.Helper()
	var buf bytes.Buffer
	for _, task := range tasks {
		fields := map[string]any{
			"identifier": "t" + strconv.Itoa(task.seq),
			"command":    task.command,
			"args":       task.args,
			"env":        map[string]string{"WP_MARKER": task.marker + "-" + task.class},
		}
		if task.meta != "" {
			fields["meta"] = task.meta
		}
		line, err := json.Marshal(fields)
		require.NoError(t, err)
		buf.Write(append(line, '\n'))
	}
	path := filepath.Join(t.TempDir(), "tasks.ndjson")
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
	f, err := os.Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

// chaosResult is what the test reads of a result line.
type chaosResult struct {
	Identifier string   `json:"identifier"`
	ExitCode   *int     `json:"exit_code"`
	Body       *string  `json:"result_body"`
	Stderr     *string  `json:"stderr"`
	Seq        int      `json:"seq"`
	DurationMS *float64 `json:"duration_ms"`
	Error      string   `json:"error"`
	Signal     string   `json:"signal"`
	Truncated  bool     `json:"truncated"`
	TimedOut   bool     `json:"timed_out"`
	line       string   // the line, shortened, for messages
}

// parseResults checks that out holds exactly one valid UTF-8 JSON line per
// task, seq 1 to n each once (in that order when ordered), and returns the
// results by seq, from index 0.
func parseResults(t *testing.T, out []byte, n int, ordered bool) []chaosResult {
	t.Helper()
	require.True(t, bytes.HasSuffix(out, []byte("\n")), "output ends with a newline")
	lines := bytes.Split(bytes.TrimSuffix(out, []byte("\n")), []byte("\n"))
	require.Len(t, lines, n, "one result line per task")
	results := make([]chaosResult, n)
	for i, line := range lines {
		short := shortLine(line)
		require.True(t, utf8.Valid(line), "line %d is not valid UTF-8: %q", i+1, short)
		var r chaosResult
		require.NoError(t, json.Unmarshal(line, &r), "line %d: %s", i+1, short)
		require.True(t, r.Seq >= 1 && r.Seq <= n, "line %d: seq out of range: %s", i+1, short)
		require.Empty(t, results[r.Seq-1].line, "seq %d reported twice: %s", r.Seq, short)
		if ordered {
			require.Equal(t, i+1, r.Seq, "line %d is out of order: %s", i+1, short)
		}
		r.line = short
		results[r.Seq-1] = r
	}
	return results
}

// shortLine returns line, cut to a length fit for a message.
func shortLine(line []byte) string {
	if len(line) > 400 {
		return string(line[:400]) + "..."
	}
	return string(line)
}

// keepErrorRE matches the error of a task whose output could not be spilled.
var keepErrorRE = regexp.MustCompile(`^cannot keep (stdout|stderr): open .*/missing/.*: no such file or directory$`)

// checkResult checks r against what task meant to do. A safe task reports
// exactly that; a victim was SIGKILLed; a task that may have been hit either
// reports SIGKILL (exit 137) or its own exit code, with its own output
// unless a child of its wrote it.
func checkResult(t *testing.T, task chaosTask, r chaosResult, spillFails bool) {
	t.Helper()
	msg := fmt.Sprintf("task %d (%s %v, %s): %s", task.seq, task.command, shortArgs(task.args), task.class, r.line)
	require.Equal(t, "t"+strconv.Itoa(task.seq), r.Identifier, msg)
	require.NotNil(t, r.ExitCode, msg)
	require.NotNil(t, r.Body, msg)
	require.NotNil(t, r.Stderr, msg)
	require.NotNil(t, r.DurationMS, "every task started: %s", msg)
	require.False(t, r.TimedOut, msg)
	if r.Error != "" {
		require.True(t, spillFails && keepErrorRE.MatchString(r.Error), "unexpected error: %s", msg)
	}
	if r.Truncated {
		require.NotEmpty(t, r.Error, "truncated without --max-output, so with an error: %s", msg)
	}
	switch {
	case task.class == markVictim:
		require.Equal(t, "SIGKILL", r.Signal, msg)
		require.Equal(t, 128+9, *r.ExitCode, msg)
		require.Empty(t, r.Error, msg)
	case r.Signal != "":
		require.Equal(t, markHit, task.class, "a task left alone has no signal: %s", msg)
		require.Equal(t, "SIGKILL", r.Signal, msg)
		require.Equal(t, 128+9, *r.ExitCode, msg)
	default:
		require.Equal(t, task.exit, *r.ExitCode, msg)
		checkOutputs(t, task, r, spillFails, msg)
	}
	if task.orphan && task.class == markSafe {
		require.Less(t, *r.DurationMS, 29000.0, "the pool waited for the task's 30 s orphan: %s", msg)
	}
}

// checkOutputs checks the captured streams of a task whose main process ran
// to its end: exactly what it wrote, in valid UTF-8, cut at 256 KiB with an
// error when the spill fails. The stderr of a task that may have been hit
// and has children is not checked: a child killed, the shell says so there,
// and a killed cat writes less.
func checkOutputs(t *testing.T, task chaosTask, r chaosResult, spillFails bool, msg string) {
	t.Helper()
	out, outCut := expectStream(task.out, spillFails)
	err, errCut := expectStream(task.err, spillFails)
	require.True(t, out == *r.Body, "stdout differs (%d bytes, want %d): %s", len(*r.Body), len(out), msg)
	if task.errVaries && task.class == markHit {
		if r.Error != "" {
			require.True(t, strings.HasPrefix(r.Error, "cannot keep stderr: "), msg)
		}
		return
	}
	require.True(t, err == *r.Stderr, "stderr differs (%d bytes, want %d): %s", len(*r.Stderr), len(err), msg)
	require.Equal(t, outCut || errCut, r.Truncated, msg)
	switch {
	case outCut:
		require.True(t, strings.HasPrefix(r.Error, "cannot keep stdout: "), msg)
	case errCut:
		require.True(t, strings.HasPrefix(r.Error, "cannot keep stderr: "), msg)
	default:
		require.Empty(t, r.Error, msg)
	}
}

// expectStream returns the text a stream of raw bytes comes back as, each
// invalid byte a U+FFFD, and whether it is cut at the spill threshold
// because the spill fails.
func expectStream(raw []byte, spillFails bool) (string, bool) {
	cut := spillFails && len(raw) > spillAfter
	if cut {
		raw = raw[:spillAfter]
	}
	return string([]rune(string(raw))), cut
}

// shortArgs returns the arguments for a message, a long script cut short.
func shortArgs(args []string) []string {
	short := make([]string, len(args))
	for i, a := range args {
		if len(a) > 60 {
			a = a[:60] + "..."
		}
		short[i] = a
	}
	return short
}

// monkey is the chaos of a run: it SIGKILLs victims as soon as it sees
// them, SIGKILLs or SIGSTOPs random hit processes and SIGCONTs the stopped
// ones soon after, and samples the pool's open file descriptors. Its fields
// belong to run until it returns.
type monkey struct {
	marker  string
	poolPID int
	rng     *rand.Rand
	paused  []pausedProc

	kills, stops, victims int
	maxFDs, fdSamples     int
}

// pausedProc is a process the monkey stopped, by its pidfd, to continue at due.
type pausedProc struct {
	pidfd int
	due   time.Time
}

func newMonkey(marker string, poolPID int) *monkey {
	seed := uint64(time.Now().UnixNano())
	return &monkey{marker: marker, poolPID: poolPID, rng: rand.New(rand.NewPCG(seed, seed>>1))}
}

// run plays until stop is closed, then continues every process it stopped
// and returns.
func (m *monkey) run(stop <-chan struct{}) {
	defer m.continueAll()
	tick := time.NewTicker(15 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		m.sampleFDs()
		m.continueDue(time.Now())
		m.strike()
	}
}

// strike signals the victims it sees and up to two random hit processes:
// one in four SIGKILLed, the others SIGSTOPped for 5 to 100 ms.
func (m *monkey) strike() {
	var hits []int
	for pid, class := range markedProcs(m.marker) {
		switch {
		case pid == m.poolPID: // never the pool itself (it carries no marker anyway)
		case class == markVictim:
			if fd, ok := signalMarked(pid, m.marker, class, unix.SIGKILL); ok {
				unix.Close(fd)
				m.victims++
			}
		case class == markHit:
			hits = append(hits, pid)
		}
	}
	m.rng.Shuffle(len(hits), func(i, j int) { hits[i], hits[j] = hits[j], hits[i] })
	for _, pid := range hits[:min(2, len(hits))] {
		if m.rng.IntN(4) == 0 {
			if fd, ok := signalMarked(pid, m.marker, markHit, unix.SIGKILL); ok {
				unix.Close(fd)
				m.kills++
			}
			continue
		}
		if fd, ok := signalMarked(pid, m.marker, markHit, unix.SIGSTOP); ok {
			pause := time.Duration(5+m.rng.IntN(96)) * time.Millisecond
			m.paused = append(m.paused, pausedProc{pidfd: fd, due: time.Now().Add(pause)})
			m.stops++
		}
	}
}

// continueDue continues the stopped processes whose time has come.
func (m *monkey) continueDue(now time.Time) {
	kept := m.paused[:0]
	for _, p := range m.paused {
		if now.Before(p.due) {
			kept = append(kept, p)
			continue
		}
		_ = unix.PidfdSendSignal(p.pidfd, unix.SIGCONT, nil, 0)
		unix.Close(p.pidfd)
	}
	m.paused = kept
}

// continueAll continues every process still stopped.
func (m *monkey) continueAll() {
	for _, p := range m.paused {
		_ = unix.PidfdSendSignal(p.pidfd, unix.SIGCONT, nil, 0)
		unix.Close(p.pidfd)
	}
	m.paused = nil
}

// sampleFDs counts the pool's open file descriptors, while it runs.
func (m *monkey) sampleFDs() {
	fds, err := os.ReadDir("/proc/" + strconv.Itoa(m.poolPID) + "/fd")
	if err != nil {
		return
	}
	m.fdSamples++
	m.maxFDs = max(m.maxFDs, len(fds))
}

// markedProcs returns the processes whose WP_MARKER is marker-CLASS, with
// their class.
func markedProcs(marker string) map[int]string {
	entries, _ := os.ReadDir("/proc")
	procs := make(map[int]string)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if class := markOf(pid, marker); class != "" {
			procs[pid] = class
		}
	}
	return procs
}

// markOf returns the class in pid's WP_MARKER when it is marker-CLASS, and
// "" otherwise.
func markOf(pid int, marker string) string {
	environ, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return ""
	}
	prefix := "WP_MARKER=" + marker + "-"
	for kv := range strings.SplitSeq(string(environ), "\x00") {
		if class, ok := strings.CutPrefix(kv, prefix); ok {
			return class
		}
	}
	return ""
}

// signalMarked sends sig to pid through a pidfd, after checking that the
// process the pidfd holds still has the marker and class (its pid may have
// been reused). It returns the pidfd, which the caller closes, and whether
// the signal was sent.
func signalMarked(pid int, marker, class string, sig unix.Signal) (int, bool) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return -1, false
	}
	if markOf(pid, marker) != class || unix.PidfdSendSignal(fd, sig, nil, 0) != nil {
		unix.Close(fd)
		return -1, false
	}
	return fd, true
}

// killMarked SIGKILLs whatever still carries marker: the cleanup of a run
// that failed.
func killMarked(marker string) {
	for pid, class := range markedProcs(marker) {
		if fd, ok := signalMarked(pid, marker, class, unix.SIGKILL); ok {
			unix.Close(fd)
		}
	}
}

// requireNoMarked fails unless, within the settling time, no process
// carrying marker is alive.
func requireNoMarked(t *testing.T, marker string) {
	t.Helper()
	var alive []string
	for deadline := time.Now().Add(settleTime); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if alive = processesWith(marker); len(alive) == 0 {
			return
		}
	}
	require.Empty(t, alive, "processes left alive %v after the pool exited", settleTime)
}

// testReaderGoesAway runs n tasks with the pool's stdout a pipe that the
// test closes after reading a few hundred results: the pool must exit 141
// promptly and quietly, leaving no process behind. Each result carries 1 KB
// of meta, so the rest cannot all fit in the pipe's buffer: the pool has
// results left to write when its reader goes.
func testReaderGoesAway(t *testing.T, bin string, n int) {
	marker := newMarker()
	t.Cleanup(func() { killMarked(marker) })
	tasks := make([]chaosTask, n)
	for i := range tasks {
		tasks[i] = chaosTask{seq: i + 1, class: markSafe, marker: marker, meta: strings.Repeat("m", 1000),
			command: "sleep", args: []string{fmt.Sprintf("0.%03d", 10+i%191)}}
		if i%3 == 0 {
			tasks[i].command = "sh"
			tasks[i].args = []string{"-c", `sleep 30 & echo "$1"`, "sh", strconv.Itoa(i + 1)}
		}
	}
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	cmd := exec.Command(bin, "--ndjson", "-t", strconv.Itoa(chaosThreads))
	cmd.Stdin = openTasks(t, tasks)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = w, &stderr
	require.NoError(t, cmd.Start())
	w.Close()

	read := min(300, n/5)
	lines := bufio.NewReader(r)
	for i := range read {
		line, err := lines.ReadBytes('\n')
		require.NoError(t, err, "result line %d", i+1)
		require.True(t, json.Valid(line), "result line %d: %s", i+1, shortLine(line))
	}
	require.NoError(t, r.Close())
	closed := time.Now()
	exited := make(chan struct{})
	go func() { defer close(exited); _ = cmd.Wait() }()
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		t.Fatalf("the pool was still running 20 s after its reader went away")
	}
	t.Logf("read %d of %d results; the pool exited %v after its reader went away", read, n, time.Since(closed).Round(time.Millisecond))
	require.Equal(t, 141, cmd.ProcessState.ExitCode(), "stderr: %s", stderr.String())
	require.Empty(t, stderr.String())
	requireNoMarked(t, marker)
}
