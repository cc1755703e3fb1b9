//go:build linux

package e2e

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// slotScript is a task that holds its slot's number, "{%}", as a directory
// in $1 while it runs, so that a second running task with the same number
// fails to make it (exit 3); it prints the number and 32 KiB more, so that
// a few results fill the pipe to a reader that does not read, and then
// leaves a file in $1 to say it is done.
const slotScript = `mkdir "$1/{%}" || exit 3; printf '{%} '; head -c 32768 /dev/zero | tr '\0' x; rmdir "$1/{%}"; : > "$1/done.{#}"`

// TestRemoteSlotNumbers: over hosts of 2 and 3 slots, "{%}" names a number
// from 1 to 5 that no two running tasks share, even while the results wait
// for a reader that has stopped reading.
func TestRemoteSlotNumbers(t *testing.T) {
	r := newRig(t, hostSpec{true}, hostSpec{true})
	dir := t.TempDir()
	cmd := exec.Command(r.bin, "--ndjson", "-S", "2/h1,3/h2", "--ssh", r.ssh(), "--", "sh", "-c", slotScript, "sh", dir)
	cmd.Stdin = strings.NewReader(strings.Repeat("x\n", 200))
	stderr := new(lockedBuffer)
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	// Let 50 tasks end before reading anything: by then most of those that
	// ended are still waiting to have their results written.
	deadline := time.Now().Add(60 * time.Second)
	for done(t, dir) < 50 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}

	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 64<<20)
	seen := map[int]int{}
	n := 0
	for sc.Scan() {
		var res remoteResult
		require.NoError(t, json.Unmarshal(sc.Bytes(), &res), "line %q", sc.Text())
		require.Equal(t, 0, res.ExitCode, "task %d: another running task has its number; stderr: %s", res.Seq, stderr)
		word, _, _ := strings.Cut(res.Body, " ")
		number, err := strconv.Atoi(word)
		require.NoError(t, err, "task %d printed %.20q", res.Seq, res.Body)
		require.True(t, 1 <= number && number <= 5, "task %d ran in slot %d of 5", res.Seq, number)
		seen[number]++
		n++
	}
	require.NoError(t, sc.Err())
	require.NoError(t, cmd.Wait(), stderr.String())
	require.Equal(t, 200, n)
	require.Len(t, seen, 5, "every slot is used: %v", seen)
}

// done counts the tasks of slotScript that have ended.
func done(t *testing.T, dir string) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "done.*"))
	require.NoError(t, err)
	return len(files)
}
