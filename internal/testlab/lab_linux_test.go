package testlab

import (
	"os"
	"os/exec"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestStat: a child's line is read whole, its comm with a space and a
// parenthesis in it, and its environment and words too.
func TestStat(t *testing.T) {
	dir := t.TempDir()
	prog := dir + "/a b)"
	require.NoError(t, os.Symlink("/bin/sleep", prog))
	cmd := exec.Command(prog, "30")
	cmd.Env = []string{"LAB_TEST=yes"}
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	p, ok := Stat(cmd.Process.Pid)
	require.True(t, ok)
	require.Equal(t, "a b)", p.Comm)
	require.Equal(t, os.Getpid(), p.PPid)
	require.True(t, p.Live())
	require.Positive(t, p.Start)
	require.True(t, HasEnv(cmd.Process.Pid, "LAB_TEST=yes"))
	require.Equal(t, []string{prog, "30"}, Cmdline(cmd.Process.Pid))
	require.Contains(t, Procs(), cmd.Process.Pid)
	require.True(t, slices.Contains(Pids(), os.Getpid()))
	_, ok = Stat(-1)
	require.False(t, ok)
}

func TestSafePath(t *testing.T) {
	require.True(t, SafePath("/tmp/TestX123/001/a.b-c_d+e"))
	for _, p := range []string{"/tmp/a b", "/tmp/a%b", "/tmp/a#b", `/tmp/a"b`} {
		require.False(t, SafePath(p), p)
	}
}
