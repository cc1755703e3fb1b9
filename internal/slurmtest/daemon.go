//go:build linux

package slurmtest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/workerpool/workerpool/internal/testlab"
	"golang.org/x/sys/unix"
)

// daemon is one process that Start runs in the foreground: munged,
// slurmctld or a slurmd. Its pid is the daemon's own, as sh execs it.
type daemon struct {
	name   string           // "munged", "slurmctld", "slurmd-n1"
	log    string           // the log file the daemon writes itself
	out    string           // the file that holds its standard output and error
	from   map[string]int64 // the size of log and out before the start
	cmd    *exec.Cmd        // the process: sh, then the daemon it execs
	exited chan struct{}    // closed once the process has exited and been reaped
}

// nsID identifies a mount namespace: the device and inode of its
// /proc/<pid>/ns/mnt.
type nsID struct {
	dev, ino uint64
}

// heldNS is a mount namespace held open by a file, so that its inode
// number is not reused while the file is open.
type heldNS struct {
	f  *os.File
	id nsID
}

// nsScript runs, in the new mount namespace, before the Slurm daemon: it
// checks that the namespace is not the test's ($1), hides the machine's
// cgroups under an empty tmpfs with the directories slurmd looks for, and
// execs the daemon (the remaining arguments). slurmd exits with "can't
// stat /sys/fs/cgroup/systemd" without them.
const nsScript = `ns=$(readlink /proc/self/ns/mnt) && [ -n "$ns" ] && [ "$ns" != "$1" ] || {
	echo "slurmtest: not in a mount namespace of its own; /sys/fs/cgroup left alone" >&2
	exit 1
}
shift
mount -t tmpfs slurmtest /sys/fs/cgroup || exit 1
mkdir /sys/fs/cgroup/systemd /sys/fs/cgroup/freezer /sys/fs/cgroup/cpuset /sys/fs/cgroup/memory || exit 1
exec "$@"
`

// startDaemon starts bin with args in the foreground, its output going to
// Dir/log/<name>.out. With newNS, the process gets a private mount
// namespace of its own, which the cluster holds, and runs bin through
// nsScript.
func (c *Cluster) startDaemon(name string, newNS bool, bin string, args ...string) (*daemon, error) {
	d := &daemon{
		name:   name,
		log:    filepath.Join(c.Dir, "log", name+".log"),
		out:    filepath.Join(c.Dir, "log", name+".out"),
		from:   map[string]int64{},
		exited: make(chan struct{}),
	}
	// An earlier attempt may have written the same files.
	for _, path := range []string{d.log, d.out} {
		if fi, err := os.Stat(path); err == nil {
			d.from[path] = fi.Size()
		}
	}
	out, err := os.OpenFile(d.out, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	fmt.Fprintf(out, "--- slurmtest: %s %s\n", bin, strings.Join(args, " "))
	// Pdeathsig: should the test binary die before its cleanups run (a
	// -timeout panic), the daemons die with it.
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var cmd *exec.Cmd
	if newNS {
		own, err := os.Readlink("/proc/self/ns/mnt")
		if err != nil {
			return nil, err
		}
		// Go makes every mount private in the new namespace before it
		// execs sh, so that nothing mounted there shows outside.
		attr.Unshareflags = syscall.CLONE_NEWNS
		cmd = exec.Command(c.bins["sh"], append([]string{"-c", nsScript, "slurmtest", own, bin}, args...)...)
	} else {
		cmd = exec.Command(bin, args...)
	}
	cmd.Env = append(cleanEnviron(), MarkerVar+"="+c.Marker)
	cmd.Dir = c.Dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %v", name, err)
	}
	d.cmd = cmd
	go func() {
		_ = cmd.Wait()
		close(d.exited)
	}()
	if newNS {
		if err := c.holdNS(d); err != nil {
			_ = cmd.Process.Kill()
			if !d.wait() {
				err = fmt.Errorf("%w; and pid %d still running %v after SIGKILL", err, cmd.Process.Pid, waitLimit)
			}
			return nil, err
		}
	}
	return d, nil
}

// holdNS opens the mount namespace of d and adds it to c.namespaces. It
// fails if d has exited, or if the namespace is the test's own.
func (c *Cluster) holdNS(d *daemon) error {
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/mnt", d.cmd.Process.Pid))
	if err == nil && d.gone() {
		// The pid may have been reaped and given to another process
		// before the open.
		f.Close()
		err = errors.New("exited")
	}
	if err != nil {
		if d.gone() {
			return d.exitError()
		}
		return fmt.Errorf("%s: mount namespace: %v", d.name, err)
	}
	id, err := fileNS(f)
	if err == nil {
		var own nsID
		own, err = pathNS("/proc/self/ns/mnt")
		if err == nil && own == id {
			err = errors.New("the same as the test's")
		}
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("%s: mount namespace: %v", d.name, err)
	}
	c.namespaces = append(c.namespaces, heldNS{f: f, id: id})
	return nil
}

func fileNS(f *os.File) (nsID, error) {
	fi, err := f.Stat()
	if err != nil {
		return nsID{}, err
	}
	return statNS(fi)
}

func pathNS(path string) (nsID, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nsID{}, err
	}
	return statNS(fi)
}

func statNS(fi os.FileInfo) (nsID, error) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nsID{}, errors.New("no stat")
	}
	return nsID{dev: uint64(st.Dev), ino: st.Ino}, nil
}

// gone reports whether the process has exited. Once it has, its pid may
// belong to another process and must not be used.
func (d *daemon) gone() bool {
	select {
	case <-d.exited:
		return true
	default:
		return false
	}
}

// waitDial polls a connection to addr until one succeeds, the daemon
// exits, or waitLimit passes.
func (d *daemon) waitDial(network, addr string) error {
	deadline := time.Now().Add(waitLimit)
	for {
		if d.gone() {
			return d.exitError()
		}
		conn, err := net.DialTimeout(network, addr, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: no connection to %s within %v: %v\n%s", d.name, addr, waitLimit, err, d.tail())
		}
		time.Sleep(pollEvery)
	}
}

// exitError describes how d exited, with its logs. It wraps errPortInUse
// if the daemon could not bind its port. d must have exited.
func (d *daemon) exitError() error {
	logs := d.tail()
	err := fmt.Errorf("%s exited at start: %v\n%s", d.name, d.cmd.ProcessState, logs)
	if strings.Contains(logs, "Address already in use") {
		err = fmt.Errorf("%w: %w", errPortInUse, err)
	}
	return err
}

// tail returns the last lines that this run of the daemon wrote to its
// log and to its output.
func (d *daemon) tail() string {
	var b strings.Builder
	for _, path := range []string{d.log, d.out} {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		if from := d.from[path]; from <= int64(len(data)) {
			data = data[from:]
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > 30 {
			lines = lines[len(lines)-30:]
		}
		fmt.Fprintf(&b, "--- %s:\n%s\n", path, strings.Join(lines, "\n"))
	}
	return b.String()
}

// kill sends SIGKILL to d and waits until it has exited.
func (d *daemon) kill(t testing.TB) {
	d.signal(t, syscall.SIGKILL)
	if !d.wait() {
		t.Errorf("slurmtest: %s (pid %d) still running %v after SIGKILL", d.name, d.cmd.Process.Pid, waitLimit)
	}
}

// terminate sends SIGTERM to d and waits until it has exited; after
// waitLimit it kills it.
func (d *daemon) terminate(t testing.TB) {
	d.signal(t, syscall.SIGTERM)
	if d.wait() {
		return
	}
	t.Logf("slurmtest: %s (pid %d) still running %v after SIGTERM; killing it", d.name, d.cmd.Process.Pid, waitLimit)
	d.kill(t)
}

// signal sends sig to d through its os.Process, which cannot reach another
// process once d has been reaped.
func (d *daemon) signal(t testing.TB, sig os.Signal) {
	if err := d.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("slurmtest: signal %v to %s (pid %d): %v", sig, d.name, d.cmd.Process.Pid, err)
	}
}

// wait waits up to waitLimit for d to exit and reports whether it did.
func (d *daemon) wait() bool {
	select {
	case <-d.exited:
		return true
	case <-time.After(waitLimit):
		return false
	}
}

// Processes returns the pids of the live processes of the cluster,
// zombies excluded: the daemons, and every process in the mount namespace
// of a Slurm daemon or with WORKERPOOL_SLURMTEST=<Marker> in its
// environment, which takes in slurmstepd and the tasks of every step and
// batch job. A client such as srun, started by the test, is not a process
// of the cluster.
func (c *Cluster) Processes() []int {
	self := os.Getpid()
	var pids []int
	for _, pid := range testlab.Pids() {
		if pid == self {
			continue
		}
		if p, ok := testlab.Stat(pid); !ok || !p.Live() {
			continue
		}
		if c.owns(pid) {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	return pids
}

// owns reports whether pid is a process of the cluster: in the mount
// namespace of one of its Slurm daemons, or with the cluster's marker in
// its environment.
func (c *Cluster) owns(pid int) bool {
	if id, err := pathNS(fmt.Sprintf("/proc/%d/ns/mnt", pid)); err == nil {
		for _, ns := range c.namespaces {
			if ns.id == id {
				return true
			}
		}
	}
	return testlab.HasEnv(pid, MarkerVar+"="+c.Marker)
}

// sweep kills, with SIGKILL, every process of the cluster but munged, and
// again any that appears, until none is left or waitLimit passes.
func (c *Cluster) sweep(t testing.TB) {
	spare := 0
	if c.munged != nil && !c.munged.gone() {
		spare = c.munged.cmd.Process.Pid
	}
	deadline := time.Now().Add(waitLimit)
	for {
		var pids []int
		for _, pid := range c.Processes() {
			if pid != spare {
				pids = append(pids, pid)
			}
		}
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("slurmtest: processes %v of the cluster still running %v after SIGKILL", pids, waitLimit)
			return
		}
		for _, pid := range pids {
			if err := c.killOwned(pid); err != nil {
				t.Errorf("slurmtest: kill pid %d: %v", pid, err)
			}
		}
		time.Sleep(pollEvery)
	}
}

// killOwned sends SIGKILL to pid if it is still a process of the cluster.
// It holds a pidfd while it checks, so that the signal cannot reach
// another process that got the pid in between. A process already gone is
// not an error.
func (c *Cluster) killOwned(pid int) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ENOSYS) {
		// Linux before 5.3: no pidfd, a plain kill right after the check.
		if !c.owns(pid) {
			return nil
		}
		err = syscall.Kill(pid, syscall.SIGKILL)
	} else if err == nil {
		defer unix.Close(fd)
		if !c.owns(pid) {
			return nil
		}
		err = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
	}
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	return err
}

// cleanEnviron returns os.Environ() without the variables through which
// a Slurm client or daemon could be steered elsewhere: every SLURM_*, as
// in a test run inside a real Slurm job, and WORKERPOOL_SLURMTEST.
func cleanEnviron() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "SLURM_") || strings.HasPrefix(kv, MarkerVar+"=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}
