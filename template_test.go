//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTemplateLongLine feeds template mode a line of 100 MiB between two
// short lines. The long line gets one result that says why it cannot run,
// the lines around it run as usual, and the pool never holds the long line:
// its peak memory stays far below the line's size.
func TestTemplateLongLine(t *testing.T) {
	const size = 100 << 20
	bin := buildPlain(t)
	cmd := exec.Command(bin, "--ndjson", "-k", "--", "echo", "{}")
	cmd.Stdin = io.MultiReader(strings.NewReader("before\n"), &sameBytes{b: 'x', n: size}, strings.NewReader("\nafter\n"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	require.ErrorAs(t, err, &exitErr, "a task failed, so the pool exits 1; stderr: %s", stderr.Bytes())
	require.Equal(t, 1, exitErr.ExitCode(), "stderr: %s", stderr.Bytes())
	maxRSS := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss // KiB on Linux
	t.Logf("peak memory reading a line of %d MiB: %d MiB", size>>20, maxRSS>>10)

	type result struct {
		Identifier string `json:"identifier"`
		ExitCode   int    `json:"exit_code"`
		ResultBody string `json:"result_body"`
		Error      string `json:"error"`
		Seq        int    `json:"seq"`
	}
	var results []result
	for dec := json.NewDecoder(&stdout); dec.More(); {
		var r result
		require.NoError(t, dec.Decode(&r), "result %d", len(results)+1)
		r.Identifier, r.ResultBody, r.Error = shorten(r.Identifier), shorten(r.ResultBody), shorten(r.Error)
		results = append(results, r)
	}
	require.Equal(t, []result{
		{Identifier: "before", ResultBody: "before\n", Seq: 1},
		{Identifier: strings.Repeat("x", 40) + "...", ExitCode: -1, Seq: 2,
			Error: `task "` + strings.Repeat("x", 40) + `..." (line 2): the line is longer than 1 MiB: items become arguments, which cannot be that long`},
		{Identifier: "after", ResultBody: "after\n", Seq: 3},
	}, results)

	require.Less(t, maxRSS, int64(100<<10), "peak memory of the pool, in KiB, reading a line of %d MiB", size>>20)
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
