package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	json "github.com/goccy/go-json"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// underLimit runs bin with args under an address space limit of kib KiB
// (ulimit -v), with stdin, and returns its exit status, stdout and stderr.
func underLimit(t *testing.T, kib uint64, stdin string, bin string, args ...string) (int, string, string) {
	t.Helper()
	return runWith(t, stdin, "sh", append([]string{"-c", `ulimit -v "$1" && shift && exec "$0" "$@"`, bin, strconv.FormatUint(kib, 10)}, args...)...)
}

// requireLowerable skips the test when this process cannot be given an
// address space limit of 4 GiB: its hard limit is lower already.
func requireLowerable(t *testing.T) {
	var as unix.Rlimit
	require.NoError(t, unix.Getrlimit(unix.RLIMIT_AS, &as))
	if as.Max != unix.RLIM_INFINITY && as.Max < 4<<30 {
		t.Skipf("the address space hard limit is %d bytes already", as.Max)
	}
}

// requireOneResult checks that stdout holds one NDJSON result, of a task
// that exited 0, and returns it.
func requireOneResult(t *testing.T, stdout string) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	require.Len(t, lines, 1, stdout)
	var r map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &r))
	require.EqualValues(t, 0, r["exit_code"], lines[0])
	return r
}

// TestAddressSpaceLimit runs the program, built as make build builds it
// (without cgo), under ulimit -v: with 1 GiB it runs tasks, itself and as
// an agent; with less it says, in one line, how much it needs and exits 2,
// where the Go runtime would abort, with a stack trace, mid-run.
func TestAddressSpaceLimit(t *testing.T) {
	requireLowerable(t)
	bin := program
	const task = `{"command":"sh","args":["-c","echo ok"]}` + "\n"

	code, stdout, stderr := underLimit(t, 1<<20, task, bin, "--ndjson")
	require.Equal(t, 0, code, "stderr: %s", stderr)
	require.Empty(t, stderr)
	require.Equal(t, "ok\n", requireOneResult(t, stdout)["result_body"])

	code, stdout, stderr = underLimit(t, 900_000, task, bin, "--ndjson")
	require.Equal(t, 2, code)
	require.Empty(t, stdout)
	require.Equal(t, "workerpool: the address space limit (ulimit -v) is 900000 KiB, below the 1048576 KiB workerpool needs\n", stderr)

	// The agent, reached through an ssh that runs the command here under
	// the limit its first argument gives.
	fakeSSH := filepath.Join(t.TempDir(), "ssh")
	require.NoError(t, os.WriteFile(fakeSSH, []byte(`#!/bin/sh
limit=$1
shift
while [ "$1" != -- ]; do [ "$1" = -O ] && exit 0; shift; done
ulimit -v "$limit" && exec sh -c "$3"
`), 0o755))
	agent := func(kib int) (int, string, string) {
		return runWith(t, task, bin, "--ndjson", "-S", "h1", "--ssh", fmt.Sprintf("%s %d", fakeSSH, kib), "--remote-path", bin)
	}
	code, stdout, stderr = agent(1 << 20)
	require.Equal(t, 0, code, "stderr: %s", stderr)
	r := requireOneResult(t, stdout)
	require.Equal(t, "h1", r["host"])
	require.Equal(t, "ok\n", r["result_body"])

	code, stdout, _ = agent(900_000)
	require.Equal(t, 1, code)
	require.Contains(t, stdout, "workerpool: the address space limit (ulimit -v) is 900000 KiB, below the 1048576 KiB workerpool needs")
}

// TestAddressSpaceLimitCgo: built with cgo, each thread of the program
// takes a stack and a malloc arena of the address space, and it needs
// more; it says so, and runs with what it says it needs.
func TestAddressSpaceLimitCgo(t *testing.T) {
	requireLowerable(t)
	if out, err := exec.Command("go", "env", "CC").Output(); err != nil || len(bytes.TrimSpace(out)) == 0 {
		t.Skip("no C compiler for a build with cgo")
	}
	bin, err := build(t.TempDir(), "1")
	if err != nil {
		t.Skipf("cannot build with cgo: %v", err)
	}
	const task = `{"command":"true"}` + "\n"

	code, stdout, stderr := underLimit(t, 2_000_000, task, bin, "--ndjson")
	require.Equal(t, 2, code)
	require.Empty(t, stdout)
	said := regexp.MustCompile(`^workerpool: the address space limit \(ulimit -v\) is 2000000 KiB, below the (\d+) KiB workerpool needs as built, with cgo; ` +
		`built without it \(CGO_ENABLED=0, as make build builds it\), it needs 1048576 KiB\n$`).FindStringSubmatch(stderr)
	require.NotNil(t, said, "stderr: %s", stderr)

	// It runs with what it says it needs.
	need, err := strconv.ParseUint(said[1], 10, 64)
	require.NoError(t, err)
	code, stdout, stderr = underLimit(t, need, task, bin, "--ndjson")
	require.Equal(t, 0, code, "stderr: %s", stderr)
	requireOneResult(t, stdout)
}
