package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets the test binary act as the workerpool command, so the
// scripts under testdata/script run the real program as users do.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){"workerpool": main, "wp-fake-agent": fakeAgent})
}

// TestScript runs the end-to-end scripts in testdata/script. Each script
// gets $EXAMPLES (the examples folder) and $MARKER (a word unique to the
// script, to put in children's argv and look for leftovers with noproc).
func TestScript(t *testing.T) {
	examples, err := filepath.Abs("examples")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
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
