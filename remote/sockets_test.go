//go:build unix

package remote

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestControlPid: only a name of the form wp-ssh-<pid>-<random> is taken
// for a control directory.
func TestControlPid(t *testing.T) {
	for name, want := range map[string]int{
		"wp-ssh-1234-5678": 1234,
		"wp-ssh-1-0":       1,
		"wp-ssh-1234":      0,
		"wp-ssh-1234-":     0,
		"wp-ssh--5678":     0,
		"wp-ssh-12a4-5678": 0,
		"wp-ssh-1234-56x8": 0,
		"wp-ssh-0-5678":    0,
		"wp-sshx-1234-567": 0,
		"wp-1234-5678":     0,
		"wp-ssh-123456789": 0, // as os.MkdirTemp named them before
	} {
		pid, ok := controlPid(name)
		require.Equal(t, want, pid, name)
		require.Equal(t, want != 0, ok, name)
	}
}

// TestControlDirShortPath: with a $TMPDIR too long for a socket's path,
// the control directory goes to /tmp, private, and a socket with the
// longest name ssh gives fits in it.
func TestControlDirShortPath(t *testing.T) {
	long := t.TempDir()
	long = filepath.Join(long, strings.Repeat("x", max(1, 60-len(long)-1)))
	require.NoError(t, os.Mkdir(long, 0o700))
	t.Setenv("TMPDIR", long)

	d := newControlDir()
	require.NotNil(t, d)
	require.Equal(t, "/tmp", filepath.Dir(d.path))
	fi, err := os.Lstat(d.path)
	require.NoError(t, err)
	require.True(t, fi.IsDir())
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	require.FileExists(t, filepath.Join(d.path, controlLockName))

	// The temporary socket of a starting master: %C, then "." and 16
	// characters.
	sock := filepath.Join(d.path, strings.Repeat("c", 40)+"."+strings.Repeat("r", 16))
	require.LessOrEqual(t, len(sock), socketPathMax())
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	l.Close()

	d.remove()
	require.NoDirExists(t, d.path)
}

// TestControlDirNone: where no directory leaves room for a socket, there
// is none, and nothing is made.
func TestControlDirNone(t *testing.T) {
	base := t.TempDir()
	require.Nil(t, makeControlDir([]string{base}, len(base)+socketRoom))
	entries, err := os.ReadDir(base)
	require.NoError(t, err)
	require.Empty(t, entries)
	require.Nil(t, makeControlDir([]string{base}, 0))
}

// TestRemoveStale: the control directories of pools that are gone are
// removed, and nothing else is: not those of live processes, not those of
// this process, not what is not such a directory of this user's.
func TestRemoveStale(t *testing.T) {
	base := t.TempDir()
	dead := deadPid(t)
	live := holdLock(t, base) // made wp-ssh-<live>-0, and holds its lock
	self := os.Getpid()
	old := time.Now().Add(-2 * lockWindow)

	mkdir := func(name string, lock bool, mtime time.Time) string {
		dir := filepath.Join(base, name)
		require.NoError(t, os.Mkdir(dir, 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(dir, strings.Repeat("c", 40)), nil, 0o600))
		if lock {
			require.NoError(t, os.WriteFile(filepath.Join(dir, controlLockName), nil, 0o600))
		}
		if !mtime.IsZero() {
			require.NoError(t, os.Chtimes(dir, mtime, mtime))
		}
		return dir
	}
	gone := []string{
		mkdir(fmt.Sprintf("wp-ssh-%d-1", dead), true, time.Time{}),  // unlocked
		mkdir(fmt.Sprintf("wp-ssh-%d-2", dead), false, time.Time{}), // killed before its lock
		mkdir(fmt.Sprintf("wp-ssh-%d-3", live), false, old),         // its pid now another's
		mkdir(fmt.Sprintf("wp-ssh-%d-4", live), true, old),          // unlocked
	}
	locked := filepath.Join(base, fmt.Sprintf("wp-ssh-%d-0", live))
	require.NoError(t, os.Chtimes(locked, old, old))
	kept := []string{
		locked,
		mkdir(fmt.Sprintf("wp-ssh-%d-6", live), false, time.Time{}), // being made
		mkdir(fmt.Sprintf("wp-ssh-%d-7", self), true, old),          // this process's
		mkdir(fmt.Sprintf("wp-other-%d-8", dead), true, time.Time{}),
		mkdir(fmt.Sprintf("wp-ssh-%d-x9", dead), true, time.Time{}),
	}
	target := mkdir("target", true, time.Time{})
	link := filepath.Join(base, fmt.Sprintf("wp-ssh-%d-10", dead))
	require.NoError(t, os.Symlink(target, link))
	file := filepath.Join(base, fmt.Sprintf("wp-ssh-%d-11", dead))
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	kept = append(kept, target, link, file)
	if os.Getuid() == 0 {
		theirs := mkdir(fmt.Sprintf("wp-ssh-%d-12", dead), true, time.Time{})
		require.NoError(t, os.Chown(theirs, 65534, 65534))
		kept = append(kept, theirs)
	}

	removeStale(base)
	for _, p := range gone {
		require.NoDirExists(t, p)
	}
	for _, p := range kept {
		_, err := os.Lstat(p)
		require.NoError(t, err, "kept")
	}
	require.FileExists(t, filepath.Join(target, controlLockName))
	require.FileExists(t, filepath.Join(locked, controlLockName))
}

// deadPid returns the pid of a process that has ended.
func deadPid(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	require.NoError(t, cmd.Run())
	return cmd.Process.Pid
}

// holdLock starts a process that makes a control directory in base,
// wp-ssh-<its pid>-0, and holds its lock as a pool does, until the test
// ends; it returns the process's pid.
func holdLock(t *testing.T, base string) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHoldLockHelper$")
	cmd.Env = append(os.Environ(), "WORKERPOOL_TEST_HOLD_LOCK="+base)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	t.Cleanup(func() {
		stdin.Close() // the helper's cue to end
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- line
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		close(exited)
	}()
	select {
	case line := <-ready:
		require.Equal(t, "locked\n", line)
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the helper took no lock within 30 s")
	}
	return cmd.Process.Pid
}

// TestHoldLockHelper is the process holdLock starts; run alone, it does
// nothing.
func TestHoldLockHelper(t *testing.T) {
	base := os.Getenv("WORKERPOOL_TEST_HOLD_LOCK")
	if base == "" {
		t.Skip("a helper for TestRemoveStale")
	}
	dir := filepath.Join(base, fmt.Sprintf("wp-ssh-%d-0", os.Getpid()))
	require.NoError(t, os.Mkdir(dir, 0o700))
	lock, err := lockControlDir(dir)
	require.NoError(t, err)
	defer lock.Close()
	fmt.Println("locked")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // until the test ends
}

// TestControlLockHeld: the lock a pool holds is one another process
// cannot take.
func TestControlLockHeld(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, fmt.Sprintf("wp-ssh-%d-0", holdLock(t, base)))
	f, err := os.OpenFile(filepath.Join(dir, controlLockName), os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	require.Error(t, unix.FcntlFlock(f.Fd(), unix.F_SETLK, &unix.Flock_t{Type: unix.F_WRLCK}))
}
