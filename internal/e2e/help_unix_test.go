//go:build unix

package e2e

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/internal/cli"
)

// TestHelpReaderGone runs what the program answers and exits on (--help,
// the report's --help, --completion) into a pipe whose reader goes away:
// after the first line, as `workerpool --help | head -1` does, or before
// the program writes anything. It ends as a run whose reader went away
// does, quietly: 141 (or 0, when all was written before the reader left),
// and never "broken pipe" on stderr.
func TestHelpReaderGone(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"report", "--help"}, {"--completion", "bash"}} {
		name := "workerpool " + strings.Join(args, " ")
		t.Run(name+" | head -1", func(t *testing.T) {
			r, w, err := os.Pipe()
			require.NoError(t, err)
			var stderr bytes.Buffer
			cmd := exec.Command(program, args...)
			cmd.Stdout, cmd.Stderr = w, &stderr
			require.NoError(t, cmd.Start())
			w.Close()
			line, err := bufio.NewReader(r).ReadString('\n')
			require.NoError(t, err)
			require.NotEmpty(t, strings.TrimSpace(line))
			r.Close()
			err = cmd.Wait()
			if _, exited := err.(*exec.ExitError); err != nil && !exited {
				t.Fatal(err)
			}
			require.Contains(t, []int{cli.ExitOK, cli.ExitBrokenPipe}, cmd.ProcessState.ExitCode())
			require.Empty(t, stderr.String())
		})
		t.Run(name+" | closed", func(t *testing.T) {
			r, w, err := os.Pipe()
			require.NoError(t, err)
			r.Close()
			var stderr bytes.Buffer
			cmd := exec.Command(program, args...)
			cmd.Stdout, cmd.Stderr = w, &stderr
			err = cmd.Run()
			w.Close()
			require.Error(t, err)
			require.Equal(t, cli.ExitBrokenPipe, cmd.ProcessState.ExitCode())
			require.Empty(t, stderr.String())
		})
	}
}
