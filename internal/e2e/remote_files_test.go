//go:build linux

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/internal/slurmtest"
	"github.com/workerpool/workerpool/internal/sshtest"
)

// stagingRig is a host with the program on its PATH and a temporary
// directory of its own (TMPDIR), where staged files land, and a
// directory here that the pool runs in.
type stagingRig struct {
	*rig
	hostTmp string // the host's TMPDIR
	work    string // the pool's working directory
}

func newStagingRig(t *testing.T) *stagingRig {
	t.Helper()
	hostTmp := t.TempDir()
	path := filepath.Dir(program) + ":/usr/local/bin:/usr/bin:/bin"
	hosts := sshtest.Start(t, sshtest.Spec{Env: map[string]string{"PATH": path, "HOME": t.TempDir(), "TMPDIR": hostTmp}})
	return &stagingRig{rig: &rig{bin: program, hosts: hosts}, hostTmp: hostTmp, work: t.TempDir()}
}

// run runs the program in the rig's working directory, to its end.
func (r *stagingRig) run(t *testing.T, input string, args ...string) (int, []remoteResult, string) {
	t.Helper()
	cmd := exec.Command(r.bin, append([]string{"-S", "h1", "--ssh", r.ssh(), "--ndjson"}, args...)...)
	cmd.Dir = r.work
	p := startPool(t, cmd, input)
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); <-p.done })
	code, res := p.wait()
	return code, res, p.stderr.String()
}

// hostFiles lists every file and directory under the host's TMPDIR.
func (r *stagingRig) hostFiles(t *testing.T) []string {
	t.Helper()
	var found []string
	require.NoError(t, filepath.WalkDir(r.hostTmp, func(path string, _ os.DirEntry, err error) error {
		if path != r.hostTmp {
			found = append(found, strings.TrimPrefix(path, r.hostTmp+"/"))
		}
		return err
	}))
	return found
}

// randomBytes returns n bytes of every value, the same in every run.
func randomBytes(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// TestRemoteTransferReturnCleanup: with --trc, each input file goes to
// the host, gzip compresses it there, and the .gz comes back byte for
// byte what gzip makes here, with the file's mode; nothing is left on
// the host. A subdirectory in the name is kept on both sides.
func TestRemoteTransferReturnCleanup(t *testing.T) {
	if _, err := exec.LookPath("gzip"); err != nil {
		t.Skip("no gzip")
	}
	r := newStagingRig(t)
	require.NoError(t, os.Mkdir(filepath.Join(r.work, "sub"), 0o755))
	files := map[string]os.FileMode{"a.txt": 0o600, "sub/b.bin": 0o755, "c d.txt": 0o644}
	for name, mode := range files {
		require.NoError(t, os.WriteFile(filepath.Join(r.work, name), randomBytes(50_000, uint64(len(name))), mode))
		require.NoError(t, os.Chmod(filepath.Join(r.work, name), mode))
	}
	code, results, stderr := r.run(t, "a.txt\nsub/b.bin\nc d.txt\n", "-j", "2", "--trc", "{}.gz", "--", "gzip", "-n", "-k", "{}")
	require.Equal(t, 0, code, "stderr: %s; results: %+v", stderr, results)
	require.Len(t, results, 3)
	for name, mode := range files {
		want, err := exec.Command("gzip", "-n", "-c", filepath.Join(r.work, name)).Output()
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(r.work, name+".gz"))
		require.NoError(t, err, "returned %s.gz", name)
		require.True(t, bytes.Equal(want, got), "%s.gz is what gzip makes here", name)
		info, err := os.Stat(filepath.Join(r.work, name+".gz"))
		require.NoError(t, err)
		require.Equal(t, mode, info.Mode().Perm(), "%s.gz keeps the mode gzip gave it there", name)
	}
	require.Empty(t, r.hostFiles(t), "--cleanup leaves nothing in the host's temporary directory")
	noneLeft(t, r.hosts.List[0])
}

// TestRemoteTransferLargeAndMissing: a file many chunks long goes and
// comes back whole, transformed by tr; a task whose file to send is
// missing here fails with an error that says so, and the run goes on.
// Without --cleanup, the files stay on the host, in the task's directory.
func TestRemoteTransferLargeAndMissing(t *testing.T) {
	r := newStagingRig(t)
	big := randomBytes(3<<20+12345, 7) // past many chunks, and not a whole number of them
	require.NoError(t, os.WriteFile(filepath.Join(r.work, "big"), big, 0o644))
	code, results, stderr := r.run(t, "big\nmissing\n", "--transferfile", "{}", "--return", "{}.up", "--",
		"sh", "-c", `tr a-z A-Z < "$1" > "$1.up"`, "sh", "{}")
	require.Equal(t, 1, code, "stderr: %s", stderr)
	require.Len(t, results, 2)
	byID := map[string]remoteResult{}
	for _, res := range results {
		byID[res.Identifier] = res
	}
	require.Equal(t, 0, byID["big"].ExitCode, "%+v", byID["big"])
	require.Empty(t, byID["big"].Error)
	got, err := os.ReadFile(filepath.Join(r.work, "big.up"))
	require.NoError(t, err)
	want := make([]byte, len(big))
	for i, b := range big {
		if b >= 'a' && b <= 'z' {
			b -= 'a' - 'A'
		}
		want[i] = b
	}
	require.Equal(t, len(want), len(got))
	require.True(t, bytes.Equal(want, got), "big.up is big through tr a-z A-Z")

	missing := byID["missing"]
	require.Equal(t, -1, missing.ExitCode, "%+v", missing)
	require.Contains(t, missing.Error, "--transferfile")
	require.Contains(t, missing.Error, "no such file")
	require.NoFileExists(t, filepath.Join(r.work, "missing.up"))

	left := r.hostFiles(t)
	var names []string
	for _, f := range left {
		names = append(names, filepath.Base(f))
	}
	require.Contains(t, names, "big", "without --cleanup the files stay on the host: %v", left)
	require.Contains(t, names, "big.up", "without --cleanup the files stay on the host: %v", left)
}

// TestRemoteTransferJSONTasks: JSON tasks name their files as they are,
// relative to their "dir"; a file not made on the host fails the task
// with --return's error, and what it did return comes back.
func TestRemoteTransferJSONTasks(t *testing.T) {
	r := newStagingRig(t)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "in.txt"), []byte("hello\n"), 0o644))
	task := fmt.Sprintf(`{"command":"sh","args":["-c","rev in.txt > out.txt"],"dir":%q}`+"\n", dir)
	code, results, stderr := r.run(t, task, "--tf", "in.txt", "--return", "out.txt", "--return", "never.txt", "--cleanup")
	require.Equal(t, 1, code, "stderr: %s", stderr)
	require.Len(t, results, 1)
	require.Equal(t, 0, results[0].ExitCode)
	require.Contains(t, results[0].Error, "--return")
	require.Contains(t, results[0].Error, "never.txt")
	out, err := os.ReadFile(filepath.Join(dir, "out.txt"))
	require.NoError(t, err)
	require.Equal(t, "olleh\n", string(out))
	require.Empty(t, r.hostFiles(t))
}

// TestStagingNeedsHosts: the staging flags without hosts, or with
// replacement strings but no command, are usage errors.
func TestStagingNeedsHosts(t *testing.T) {
	for _, args := range [][]string{
		{"--trc", "{}.gz", "--", "gzip", "{}"},
		{"-S", "h1", "--tf", "{}", "[]"},
		{"-S", "h1", "--pipe", "--trc", "{}.gz", "--", "gzip"},
	} {
		cmd := exec.Command(program, args...)
		var stderr bytes.Buffer
		cmd.Stdin, cmd.Stderr = strings.NewReader("x\n"), &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "%v", args)
		require.Equal(t, 2, exit.ExitCode(), "%v: %s", args, stderr.String())
		require.Equal(t, 1, strings.Count(stderr.String(), "\n"), "%v: one line: %s", args, stderr.String())
	}
}

// TestRemoteReturnStopped: SIGINT while a large file comes back (64 GiB,
// sparse on the host, which would take minutes) ends the run within
// seconds: the task's result is written, the file cut short is not put in
// place, and no temporary file is left here.
func TestRemoteReturnStopped(t *testing.T) {
	if _, err := exec.LookPath("truncate"); err != nil {
		t.Skip("no truncate")
	}
	r := newStagingRig(t)
	cmd := exec.Command(r.bin, "-S", "h1", "--ssh", r.ssh(), "--ndjson", "--return", "{}.out", "--cleanup", "--",
		"truncate", "-s", "64G", "{}.out")
	cmd.Dir = r.work
	p := startPool(t, cmd, "big\n")
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); <-p.done })
	deadline := time.Now().Add(60 * time.Second)
	for !returning(t, r.work) {
		require.True(t, time.Now().Before(deadline), "no file came back within a minute; stderr: %s", p.stderr)
		time.Sleep(20 * time.Millisecond)
	}
	stopped := time.Now()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGINT))
	code, results := p.wait()
	require.Less(t, time.Since(stopped), 15*time.Second, "the run ends within seconds of the signal")
	require.Equal(t, 130, code, "stderr: %s", p.stderr)
	require.Len(t, results, 1)
	require.Contains(t, results[0].Error, "big.out")
	left, err := os.ReadDir(r.work)
	require.NoError(t, err)
	require.Empty(t, left, "neither big.out nor its temporary file is here")
	noneLeft(t, r.hosts.List[0])
}

// returning reports whether a returned file is being written in dir, past
// its first MiB.
func returning(t *testing.T, dir string) bool {
	t.Helper()
	tmps, err := filepath.Glob(filepath.Join(dir, ".workerpool-return-*"))
	require.NoError(t, err)
	for _, tmp := range tmps {
		if info, err := os.Stat(tmp); err == nil && info.Size() > 1<<20 {
			return true
		}
	}
	return false
}

// TestSlurmTransferReturn: --trc works through srun as through ssh: each
// file goes to a node, is compressed there, and comes back byte for byte
// what gzip makes here; the nodes' staging directories are gone.
func TestSlurmTransferReturn(t *testing.T) {
	if _, err := exec.LookPath("gzip"); err != nil {
		t.Skip("no gzip")
	}
	lab := slurmtest.Start(t, 2)
	logOnFailure(t, lab)
	job := lab.Alloc(t, 2)
	work, nodeTmp := t.TempDir(), t.TempDir()
	names := []string{"a.txt", "b.bin", "c.txt", "d.bin"}
	for i, name := range names {
		require.NoError(t, os.WriteFile(filepath.Join(work, name), randomBytes(300_000, uint64(i)), 0o644))
	}
	cmd := lab.Command(context.Background(), program, "--ndjson", "--slurm", "--trc", "{}.gz", "--", "gzip", "-n", "-k", "{}")
	cmd.Env = append(cmd.Env, lab.JobEnv(t, job)...)
	cmd.Env = append(cmd.Env, "TMPDIR="+nodeTmp) // srun passes the environment on to the agents
	cmd.Dir = work
	p := startPool(t, cmd, strings.Join(names, "\n")+"\n")
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-p.done; noClientLeft(t, lab) })
	code, results := p.wait()
	require.Equal(t, 0, code, "stderr: %s; results: %+v", p.stderr, results)
	require.Len(t, results, len(names))
	for _, res := range results {
		require.Contains(t, lab.Nodes(), res.Host, "a node ran it: %+v", res)
	}
	for _, name := range names {
		want, err := exec.Command("gzip", "-n", "-c", filepath.Join(work, name)).Output()
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(work, name+".gz"))
		require.NoError(t, err)
		require.True(t, bytes.Equal(want, got), "%s.gz is what gzip makes here", name)
	}
	left, err := os.ReadDir(nodeTmp)
	require.NoError(t, err)
	require.Empty(t, left, "--cleanup leaves nothing on the nodes")
}

// TestRemoteTransferStopped: SIGINT while a large file is sent (64 GiB,
// sparse here, which would take minutes) ends the run within seconds,
// with the task cancelled, and the agent removes what came of the file.
func TestRemoteTransferStopped(t *testing.T) {
	if _, err := exec.LookPath("truncate"); err != nil {
		t.Skip("no truncate")
	}
	r := newStagingRig(t)
	require.NoError(t, exec.Command("truncate", "-s", "64G", filepath.Join(r.work, "big")).Run())
	cmd := exec.Command(r.bin, "-S", "h1", "--ssh", r.ssh(), "--ndjson", "--transfer", "--", "true")
	cmd.Dir = r.work
	p := startPool(t, cmd, "big\n")
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); <-p.done })
	deadline := time.Now().Add(60 * time.Second)
	for r.hostBytes() < 1<<20 {
		require.True(t, time.Now().Before(deadline), "no file reached the host within a minute; stderr: %s", p.stderr)
		time.Sleep(20 * time.Millisecond)
	}
	stopped := time.Now()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGINT))
	go func() { // a stop that fails must not fill the disk: 4 GiB at most
		for r.hostBytes() < 4<<30 {
			select {
			case <-p.done:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
		_ = p.cmd.Process.Kill()
	}()
	code, results := p.wait()
	require.Less(t, time.Since(stopped), 15*time.Second, "the run ends within seconds of the signal")
	require.Equal(t, 130, code, "stderr: %s", p.stderr)
	require.Len(t, results, 1)
	require.Equal(t, -1, results[0].ExitCode, "%+v", results[0])
	require.Contains(t, results[0].Error, "cancelled")
	noneLeft(t, r.hosts.List[0])
	require.Empty(t, r.hostFiles(t), "what came of the file is removed from the host")
}

// hostBytes is the size of the largest file under the host's TMPDIR.
func (r *stagingRig) hostBytes() int64 {
	var most int64
	_ = filepath.WalkDir(r.hostTmp, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				most = max(most, info.Size())
			}
		}
		return nil
	})
	return most
}

// TestRemoteTransferSeveralItems: with -N 2, --tf {} sends both items'
// files to the task that takes them.
func TestRemoteTransferSeveralItems(t *testing.T) {
	r := newStagingRig(t)
	require.NoError(t, os.WriteFile(filepath.Join(r.work, "x"), []byte("one\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(r.work, "y"), []byte("two\n"), 0o644))
	code, results, stderr := r.run(t, "x\ny\n", "-N", "2", "--tf", "{}", "--return", "all.txt", "--cleanup", "--",
		"sh", "-c", `cat "$@" > all.txt`, "sh", "{}")
	require.Equal(t, 0, code, "stderr: %s; results: %+v", stderr, results)
	require.Len(t, results, 1)
	all, err := os.ReadFile(filepath.Join(r.work, "all.txt"))
	require.NoError(t, err)
	require.Equal(t, "one\ntwo\n", string(all))
	require.Empty(t, r.hostFiles(t))
}
