package e2e

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/internal/cli"
)

// program is the path of the workerpool binary that TestMain builds once
// for the whole run, as make build builds it (without cgo). Every test
// that runs the built program runs this one; no test may change it.
var program string

// TestMain builds the program once, then runs the tests. It also lets the
// test binary act as the workerpool command (and as wp-fake-agent), so the
// scripts under the repository's testdata/script run the real program as
// users do.
func TestMain(m *testing.M) {
	testscript.Main(withProgram{m}, map[string]func(){
		"workerpool":    func() { os.Exit(cli.Main("")) },
		"wp-fake-agent": fakeAgent,
	})
}

// withProgram runs the tests with program built. testscript.Main calls
// Run only in the test binary's own run, never when the binary is started
// as one of its commands, so the program is built once per go test run.
type withProgram struct{ m *testing.M }

// Run builds the program in a temporary directory, runs the tests and
// removes the directory. It returns the tests' exit code, or 1 if the
// program cannot be built.
func (w withProgram) Run() int {
	flag.Parse()
	dir, err := os.MkdirTemp("", "workerpool-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// Open to all, so that a test may run the program as another user
	// (TestProcessLimit).
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	start := time.Now()
	if program, err = build(dir, "0"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if testing.Verbose() {
		fmt.Printf("e2e: built %s in %v\n", program, time.Since(start).Round(time.Millisecond))
	}
	return w.m.Run()
}

// build builds the program into dir, with CGO_ENABLED set to cgo and with
// flags for go build, and returns the binary's path. It builds without
// the race detector, whose memory and speed are not the program's own.
func build(dir, cgo string, flags ...string) (string, error) {
	bin := filepath.Join(dir, "workerpool")
	args := append(append([]string{"build"}, flags...), "-o", bin, "github.com/workerpool/workerpool")
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED="+cgo)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w: %s", err, out)
	}
	return bin, nil
}

// runIn runs name with args and stdin in dir (the test's own when empty),
// and returns its exit status, stdout and stderr.
func runIn(t *testing.T, dir, stdin, name string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// runWith runs name with args and stdin, and returns its exit status,
// stdout and stderr.
func runWith(t *testing.T, stdin string, name string, args ...string) (int, string, string) {
	t.Helper()
	return runIn(t, "", stdin, name, args...)
}

// ndjson reads out, lines of JSON, each into a T, and fails the test on a
// line that is not one.
func ndjson[T any](t testing.TB, out string) []T {
	t.Helper()
	var got []T
	for line := range strings.Lines(out) {
		var v T
		require.NoError(t, json.Unmarshal([]byte(line), &v), "line %q", line)
		got = append(got, v)
	}
	return got
}

// repoRoot returns the top folder of the repository.
func repoRoot(t testing.TB) string {
	t.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(strings.TrimSpace(string(gomod)))
}

// TestScript runs the end-to-end scripts in the repository's
// testdata/script. Each script gets $EXAMPLES (the examples folder) and
// $MARKER (a word unique to the script, to put in children's argv and look
// for leftovers with noproc).
func TestScript(t *testing.T) {
	root := repoRoot(t)
	examples, scripts := filepath.Join(root, "examples"), filepath.Join(root, "testdata", "script")
	for _, dir := range []string{examples, scripts} {
		if _, err := os.Stat(dir); err != nil {
			t.Fatal(err)
		}
	}
	testscript.Run(t, testscript.Params{
		Dir:                 scripts,
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			env.Setenv("EXAMPLES", examples)
			env.Setenv("MARKER", "wpmark"+strconv.FormatInt(time.Now().UnixNano(), 36))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"sleep":     cmdSleep,
			"noproc":    cmdNoproc,
			"waitlines": cmdWaitlines,
		},
	})
}

// cmdSleep pauses the script: sleep DURATION.
func cmdSleep(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: sleep DURATION")
	}
	d, err := time.ParseDuration(args[0])
	ts.Check(err)
	time.Sleep(d)
}

// cmdNoproc fails if, after a short settling time, a process whose command
// line contains the word is still alive: noproc WORD.
func cmdNoproc(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: noproc WORD")
	}
	var alive []string
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		alive = processesWith(args[0])
		if len(alive) == 0 {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("processes still alive: %s", strings.Join(alive, "; "))
		}
	}
}

// processesWith lists the live (not zombie) processes whose command line
// or environment contains word. A script that sets WP_MARKER=$MARKER in the
// pool's environment thereby marks every process the pool starts.
func processesWith(word string) []string {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var found []string
	for _, dir := range dirs {
		if filepath.Base(dir) == strconv.Itoa(os.Getpid()) {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
		environ, _ := os.ReadFile(filepath.Join(dir, "environ"))
		if err != nil || !bytes.Contains(cmdline, []byte(word)) && !bytes.Contains(environ, []byte(word)) {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join(dir, "stat")); err == nil && bytes.Contains(stat, []byte(") Z ")) {
			continue
		}
		found = append(found, filepath.Base(dir)+": "+string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
	}
	return found
}

// cmdWaitlines waits up to 20 seconds until a file has at least N lines:
// waitlines FILE N.
func cmdWaitlines(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waitlines FILE N")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		data, _ := os.ReadFile(ts.MkAbs(args[0]))
		if bytes.Count(data, []byte{'\n'}) >= n {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%s has %d lines, want %d", args[0], bytes.Count(data, []byte{'\n'}), n)
		}
	}
}
