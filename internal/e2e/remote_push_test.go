//go:build linux

package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// pushed is where --push keeps the rig's program on host i, and what it
// holds there.
type pushed struct {
	dir   string // the program's directory on the host
	whole []byte // the program
	stamp string // the stamp beside a checked copy
}

func pushedOn(t *testing.T, r *rig, i int) pushed {
	t.Helper()
	whole, err := os.ReadFile(r.bin)
	require.NoError(t, err)
	h := sha256.Sum256(whole)
	sum := hex.EncodeToString(h[:])
	return pushed{
		dir:   filepath.Join(homeOf(t, r, i), ".cache/workerpool", sum[:16]),
		whole: whole,
		stamp: fmt.Sprintf("%s %d\n", sum, len(whole)),
	}
}

// requireWhole checks that the host holds the whole program, and its
// stamp, and nothing else.
func (p pushed) requireWhole(t *testing.T) {
	t.Helper()
	got, err := os.ReadFile(filepath.Join(p.dir, "workerpool"))
	require.NoError(t, err)
	require.True(t, string(got) == string(p.whole), "the copy is the whole program (%d of %d bytes)", len(got), len(p.whole))
	stamp, err := os.ReadFile(filepath.Join(p.dir, "stamp"))
	require.NoError(t, err)
	require.Equal(t, p.stamp, string(stamp))
	require.ElementsMatch(t, []string{"stamp", "workerpool"}, p.entries(t))
}

// entries lists what the program's directory holds, hidden files too.
func (p pushed) entries(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(p.dir)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// requireRuns runs five tasks on h1 with --push and more args: they run
// there.
func requireRuns(t *testing.T, r *rig, args ...string) {
	t.Helper()
	input := strings.Repeat(markerTask+"\n", 5)
	code, results, stderr := r.run(t, input, append([]string{"-S", "h1", "--ndjson"}, args...)...)
	require.Equal(t, 0, code, "stderr: %s; results: %+v", stderr, results)
	require.Len(t, results, 5)
	for _, res := range results {
		require.Equal(t, r.hosts.List[0].Marker, res.Body, "%+v", res)
	}
}

// TestRemotePushReplacesPartialCopy: a partial program where --push keeps
// its copy, without its stamp or of another size than the stamp says, is
// not taken for the program: it is copied again, and the run succeeds.
func TestRemotePushReplacesPartialCopy(t *testing.T) {
	r := newRig(t, hostSpec{false})
	p := pushedOn(t, r, 0)
	for _, tc := range []struct {
		name  string
		stamp bool
	}{{"without its stamp", false}, {"with a stamp", true}} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, os.RemoveAll(p.dir))
			require.NoError(t, os.MkdirAll(p.dir, 0o700))
			require.NoError(t, os.WriteFile(filepath.Join(p.dir, "workerpool"), p.whole[:100000], 0o700))
			if tc.stamp {
				require.NoError(t, os.WriteFile(filepath.Join(p.dir, "stamp"), []byte(p.stamp), 0o600))
			}
			requireRuns(t, r, "--ssh", r.ssh(), "--push")
			p.requireWhole(t)
		})
	}
}

// TestRemotePushCutShort: a copy cut short (its input ends after 100000
// bytes, as when the connection drops) is refused with an error that says
// so, and leaves nothing on the host; the next run copies the whole
// program, and its tasks run.
func TestRemotePushCutShort(t *testing.T) {
	r := newRig(t, hostSpec{false})
	p := pushedOn(t, r, 0)
	wrapper := filepath.Join(t.TempDir(), "ssh-cut")
	require.NoError(t, os.WriteFile(wrapper, []byte(`#!/bin/sh
# ssh, but the copy of --push gets only the first 100000 bytes of its input.
for last; do :; done
case $last in
*'.workerpool.$$'*) head -c 100000 | `+r.hosts.SSH+` "$@"; exit ;;
esac
exec `+r.hosts.SSH+` "$@"
`), 0o755))

	input := strings.Repeat(markerTask+"\n", 5)
	code, results, stderr := r.run(t, input, "-S", "h1", "--ssh", wrapper, "--ndjson", "--push")
	require.Equal(t, 1, code, stderr)
	require.Len(t, results, 5)
	for _, res := range results {
		require.Equal(t, -1, res.ExitCode)
		require.Contains(t, res.Error, fmt.Sprintf("h1: --push: the copy on h1 is 100000 of %d bytes: the transfer ended early", len(p.whole)))
	}
	require.Empty(t, p.entries(t), "nothing is left of the copy")

	requireRuns(t, r, "--ssh", r.ssh(), "--push")
	p.requireWhole(t)
}

// controlSocket is the name ssh gives a control socket, %C.
var controlSocket = regexp.MustCompile(`^[0-9a-f]{40}$`)

// controlDirs lists the control directories of the pool with this pid, in
// the given temporary directory and in /tmp.
func controlDirs(t *testing.T, tmp string, pid int) []string {
	t.Helper()
	var dirs []string
	for _, base := range []string{tmp, "/tmp"} {
		found, err := filepath.Glob(filepath.Join(base, fmt.Sprintf("wp-ssh-%d-*", pid)))
		require.NoError(t, err)
		dirs = append(dirs, found...)
	}
	return dirs
}

// sockets lists the control sockets in dir.
func sockets(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var socks []string
	for _, e := range entries {
		if controlSocket.MatchString(e.Name()) && e.Type()&os.ModeSocket != 0 {
			socks = append(socks, e.Name())
		}
	}
	return socks
}

// sleepTask runs on a host for long enough.
const sleepTask = `{"command":"sleep","args":["30"]}`

// TestRemoteLongTMPDIR: with a $TMPDIR of 60 characters, too long for a
// socket's path below it, -S runs tasks, and shares its connection to the
// host through a socket elsewhere, which it removes at the end.
func TestRemoteLongTMPDIR(t *testing.T) {
	r := newRig(t, hostSpec{true})
	long := t.TempDir()
	long = filepath.Join(long, strings.Repeat("x", max(1, 60-len(long)-1)))
	require.NoError(t, os.Mkdir(long, 0o700))
	t.Setenv("TMPDIR", long)

	requireRuns(t, r, "--ssh", r.ssh())

	p := r.start(t, sleepTask+"\n", "-S", "h1", "--ssh", r.ssh(), "--ndjson", "--events", "--timeout", "1s")
	require.Equal(t, "started", p.next().Event)
	dirs := controlDirs(t, long, p.cmd.Process.Pid)
	require.Len(t, dirs, 1)
	require.Len(t, sockets(t, dirs[0]), 1, "the connection to h1 is shared")
	code, _ := p.wait()
	require.Equal(t, 1, code, p.stderr.String())
	require.NoDirExists(t, dirs[0], "removed at the end")
}

// TestRemoteStaleControlDirs: the control directories that a killed pool
// leaves behind are removed when the next pool starts; those of a pool
// that runs are kept, and so is whatever is not such a directory of this
// user's.
func TestRemoteStaleControlDirs(t *testing.T) {
	r := newRig(t, hostSpec{true})
	tmp, err := os.MkdirTemp("/tmp", "wpt") // short: its sockets' paths fit
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(tmp) })
	t.Setenv("TMPDIR", tmp)
	ended := exec.Command("true")
	require.NoError(t, ended.Run())
	dead := ended.Process.Pid

	plant := func(name string, lock bool) string {
		dir := filepath.Join(tmp, name)
		require.NoError(t, os.Mkdir(dir, 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(dir, strings.Repeat("0", 40)), nil, 0o600))
		if lock {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "lock"), nil, 0o600))
		}
		return dir
	}
	stale := []string{plant(fmt.Sprintf("wp-ssh-%d-1", dead), true), plant(fmt.Sprintf("wp-ssh-%d-2", dead), false)}
	target := plant("target", true)
	link := filepath.Join(tmp, fmt.Sprintf("wp-ssh-%d-3", dead))
	require.NoError(t, os.Symlink(target, link))
	other := []string{plant(fmt.Sprintf("wp-other-%d-4", dead), true), link, target}

	// A pool that runs, with its connection to h1.
	running := r.start(t, sleepTask+"\n", "-S", "h1", "--ssh", r.ssh(), "--ndjson", "--events")
	require.Equal(t, "started", running.next().Event)

	requireRuns(t, r, "--ssh", r.ssh())
	for _, dir := range stale {
		require.NoDirExists(t, dir, "stale")
	}
	dirs := controlDirs(t, tmp, running.cmd.Process.Pid)
	require.Len(t, dirs, 1)
	for _, p := range other {
		_, err := os.Lstat(p)
		require.NoError(t, err, "not a control directory: kept")
	}
	require.FileExists(t, filepath.Join(target, "lock"))
	require.Len(t, sockets(t, dirs[0]), 1, "the running pool's directory is kept")

	// Killed, the pool leaves its directory; the next pool removes it.
	require.NoError(t, running.cmd.Process.Kill())
	running.wait()
	require.DirExists(t, dirs[0])
	requireRuns(t, r, "--ssh", r.ssh())
	require.NoDirExists(t, dirs[0], "the killed pool's directory is removed")
	noneLeft(t, r.hosts.List[0])
}

// TestRemotePushKeepsThree: --push keeps the versions used last: after
// it, the host's cache holds this one and the two used before it; older
// ones are removed. --push-clean keeps this one alone. What --push did
// not make (no stamp, or not named by a hash) is left alone.
func TestRemotePushKeepsThree(t *testing.T) {
	r := newRig(t, hostSpec{false})
	p := pushedOn(t, r, 0)
	cache := filepath.Dir(p.dir)
	old := []string{"00000000000000a1", "00000000000000a2", "00000000000000a3", "00000000000000a4"}
	for i, name := range old { // a1 used first, a4 last
		dir := filepath.Join(cache, name)
		require.NoError(t, os.MkdirAll(dir, 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "workerpool"), []byte("old"), 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "stamp"), []byte(name+" 3\n"), 0o600))
		when := time.Now().Add(time.Duration(i-10) * time.Hour)
		require.NoError(t, os.Chtimes(filepath.Join(dir, "stamp"), when, when))
	}
	foreign := []string{"00000000000000b1", "notes"} // a copy under way, and a directory of the user's
	for _, name := range foreign {
		require.NoError(t, os.MkdirAll(filepath.Join(cache, name), 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(cache, name, "workerpool"), []byte("partial"), 0o700))
	}
	entries := func() []string {
		des, err := os.ReadDir(cache)
		require.NoError(t, err)
		var names []string
		for _, de := range des {
			names = append(names, de.Name())
		}
		return names
	}

	requireRuns(t, r, "--ssh", r.ssh(), "--push")
	p.requireWhole(t)
	require.ElementsMatch(t, []string{filepath.Base(p.dir), "00000000000000a3", "00000000000000a4", "00000000000000b1", "notes"}, entries())

	// A run that finds its copy present prunes too: a version used since
	// (a5, by another pool) is kept with it, and the oldest goes.
	a5 := filepath.Join(cache, "00000000000000a5")
	require.NoError(t, os.MkdirAll(a5, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(a5, "stamp"), []byte("a5 3\n"), 0o600))
	later := time.Now().Add(time.Hour)
	require.NoError(t, os.Chtimes(filepath.Join(a5, "stamp"), later, later))
	requireRuns(t, r, "--ssh", r.ssh(), "--push")
	require.ElementsMatch(t, []string{filepath.Base(p.dir), "00000000000000a4", "00000000000000a5", "00000000000000b1", "notes"}, entries())

	requireRuns(t, r, "--ssh", r.ssh(), "--push-clean")
	p.requireWhole(t)
	require.ElementsMatch(t, []string{filepath.Base(p.dir), "00000000000000b1", "notes"}, entries())
}
