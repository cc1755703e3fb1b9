//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTemplateLongLine feeds template mode a line of 100 MiB between two
// short lines. The long line gets one result that says why it cannot run,
// the lines around it run as usual, and the pool never holds the long line:
// its peak memory stays far below the line's size.
func TestTemplateLongLine(t *testing.T) {
	const size = 100 << 20
	bin := program
	cmd := exec.Command(bin, "--ndjson", "-k", "--", "echo", "{}")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr := new(lockedBuffer)
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	fed := make(chan error, 1)
	go func() {
		_, err := io.Copy(stdin, io.MultiReader(strings.NewReader("before\n"), &sameBytes{b: 'x', n: size}, strings.NewReader("\nafter\n")))
		fed <- err
	}()

	type result struct {
		Identifier string `json:"identifier"`
		ExitCode   int    `json:"exit_code"`
		ResultBody string `json:"result_body"`
		Error      string `json:"error"`
		Seq        int    `json:"seq"`
	}
	var results []result
	dec := json.NewDecoder(stdout)
	for len(results) < 3 {
		var r result
		require.NoError(t, dec.Decode(&r), "result %d; stderr: %s", len(results)+1, stderr)
		r.Identifier, r.ResultBody, r.Error = shorten(r.Identifier), shorten(r.ResultBody), shorten(r.Error)
		results = append(results, r)
	}
	require.NoError(t, <-fed)
	// The pool waits for more input: its peak memory so far is that of
	// the whole run. It is read from the pool's own memory map (VmHWM), as
	// the peak that wait4 reports holds the test's own, from before exec.
	peak := peakKB(t, cmd.Process.Pid)
	t.Logf("peak memory reading a line of %d MiB: %d MiB", size>>20, peak>>10)
	require.NoError(t, stdin.Close())
	err = cmd.Wait()
	var exitErr *exec.ExitError
	require.ErrorAs(t, err, &exitErr, "a task failed, so the pool exits 1; stderr: %s", stderr)
	require.Equal(t, 1, exitErr.ExitCode(), "stderr: %s", stderr)

	require.Equal(t, []result{
		{Identifier: "before", ResultBody: "before\n", Seq: 1},
		{Identifier: strings.Repeat("x", 40) + "...", ExitCode: -1, Seq: 2,
			Error: `task "` + strings.Repeat("x", 40) + `..." (line 2): the line is longer than 1 MiB: items become arguments, which cannot be that long`},
		{Identifier: "after", ResultBody: "after\n", Seq: 3},
	}, results)
	require.Less(t, peak, int64(100<<10), "peak memory of the pool, in KiB, reading a line of %d MiB", size>>20)
}

// shorten cuts s to a length a failure message can show.
func shorten(s string) string {
	const most = 200
	if len(s) <= most {
		return s
	}
	return fmt.Sprintf("%s... (%d bytes)", s[:most], len(s))
}

// sameBytes reads as n bytes b, without holding them.
type sameBytes struct {
	b byte
	n int
}

func (r *sameBytes) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	p = p[:min(len(p), r.n)]
	for i := range p {
		p[i] = r.b
	}
	r.n -= len(p)
	return len(p), nil
}

// peakKB returns the peak resident memory of the live process pid so far,
// in KiB: VmHWM of its /proc/PID/status.
func peakKB(t *testing.T, pid int) int64 {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^VmHWM:\s+(\d+) kB`).FindSubmatch(status)
	require.NotNil(t, m, "%s", status)
	peak, err := strconv.ParseInt(string(m[1]), 10, 64)
	require.NoError(t, err)
	return peak
}
