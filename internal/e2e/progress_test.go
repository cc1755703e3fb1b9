package e2e

import (
	"bytes"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/creack/pty"
	json "github.com/goccy/go-json"
	"github.com/stretchr/testify/require"
)

// runWithTerminalStderr runs the workerpool command with its stderr on a
// pseudo-terminal and returns its stdout and what the terminal showed.
func runWithTerminalStderr(t *testing.T, stdin string, args ...string) (stdout, screen string, code int) {
	t.Helper()
	return runOnTerminal(t, "workerpool", stdin, args...)
}

// runOnTerminal runs the program name as runWithTerminalStderr runs the
// workerpool command.
func runOnTerminal(t *testing.T, name, stdin string, args ...string) (stdout, screen string, code int) {
	t.Helper()
	ptmx, tty, err := pty.Open()
	require.NoError(t, err)
	defer ptmx.Close()
	require.NoError(t, pty.Setsize(ptmx, &pty.Winsize{Rows: 24, Cols: 120}))

	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout = &out
	cmd.Stderr = tty
	require.NoError(t, cmd.Start())
	tty.Close()
	var shown bytes.Buffer
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(&shown, ptmx) // ends with EIO once the child is gone
	}()
	_ = cmd.Wait()
	<-copied
	return out.String(), shown.String(), cmd.ProcessState.ExitCode()
}

func TestProgressOnTerminal(t *testing.T) {
	tasks := `[` + strings.Repeat(`{"command":"sleep","args":["0.3"]},`, 7) + `{"command":"false"}]`
	stdout, screen, code := runWithTerminalStderr(t, "", "--progress", "-t", "2", tasks)
	require.Equal(t, 1, code)

	var results []map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &results), "stdout stays pure JSON")
	require.Len(t, results, 8)

	// The total is known from the inline array: a bar with a percentage.
	require.Contains(t, screen, "%")
	require.Regexp(t, `\d+/8`, screen)
	require.Contains(t, screen, "tasks/s")
	require.Regexp(t, `failed 1, running \d`, screen)
	// The line is cleared at the end, and the totals take its place.
	i := strings.LastIndex(screen, "workerpool: ")
	require.GreaterOrEqual(t, i, 0, "the totals are shown: %q", screen)
	require.Regexp(t, `^workerpool: 8 tasks, 1 failed, in \S+; CPU \S+; peak memory [\d.]+ MiB \(task "\d"\)\r?\n$`, screen[i:])
	before := screen[:i]
	require.Regexp(t, regexp.MustCompile(`^[\r ]*$`), before[strings.LastIndex(before, "\r"):], "the bar was cleared")
}

func TestProgressUnknownTotal(t *testing.T) {
	stdin := strings.Repeat(`{"command":"sleep","args":["0.2"]}`+"\n", 6)
	stdout, screen, code := runWithTerminalStderr(t, stdin, "--progress", "--ndjson")
	require.Equal(t, 0, code)
	require.Equal(t, 6, strings.Count(stdout, "\n"))
	require.NotContains(t, screen, "%", "no bar without a known total")
	require.Contains(t, screen, "running")
}

func TestProgressNotOnPipe(t *testing.T) {
	var stderr bytes.Buffer
	cmd := exec.Command("workerpool", "--progress", `[{"command":"true"}]`)
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Run())
	require.Empty(t, stderr.String(), "no progress when stderr is not a terminal")
}

// TestProgressMemory: the progress line shows the memory the running
// tasks reserve and the memory left free. It runs the built program: a
// task with a memory limit starts as the program, which sets it.
func TestProgressMemory(t *testing.T) {
	tasks := `[` + strings.Repeat(`{"command":"sleep","args":["0.3"],"memory":"100M"},`, 5) + `{"command":"true"}]`
	stdout, screen, code := runOnTerminal(t, program, "", "--progress", "-t", "2", "--mem-capacity", "1G", tasks)
	require.Equal(t, 0, code, stdout)
	require.Regexp(t, `, memory [\d.]+ (B|KiB|MiB) reserved, [\d.]+ (MiB|GiB) free`, screen)
}
