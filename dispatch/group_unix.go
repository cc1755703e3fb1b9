//go:build unix

package dispatch

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/workerpool/workerpool/job"
)

// processGroup is a Unix process group led by the task's child.
type processGroup struct {
	pid    int       // of the child, which leads the group
	exited exitWatch // see platformAttr
}

func newGroup() (group, error) { return &processGroup{exited: newExitWatch()}, nil }

// start starts the program in a process group of its own, so that a
// signal to the group reaches its children; platformAttr adds what the
// platform can do besides.
func (g *processGroup) start(path string, argv []string, attr *os.ProcAttr) (*os.Process, error) {
	sys := &syscall.SysProcAttr{Setpgid: true}
	platformAttr(sys, &g.exited)
	attr.Sys = sys
	p, err := os.StartProcess(path, argv, attr)
	if err != nil {
		return nil, err
	}
	g.pid = p.Pid
	return p, nil
}

func (g *processGroup) awaitExit(onThread bool) bool { return g.exited.wait(g.pid, onThread) }
func (g *processGroup) gone() bool                   { return g.exited.gone(g.pid) }

func (g *processGroup) terminate() error { return g.signal(syscall.SIGTERM) }
func (g *processGroup) kill() error      { return g.signal(syscall.SIGKILL) }
func (g *processGroup) release()         { g.exited.close() }

func (g *processGroup) usage(ps *os.ProcessState) *job.Usage { return usageOf(ps) }

// signal sends sig to the group. A group that no longer exists is not an
// error.
func (g *processGroup) signal(sig syscall.Signal) error {
	err := syscall.Kill(-g.pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// exitStatus returns the exit code in the shell's convention, and the name
// of the signal that ended the process, if any.
func exitStatus(ps *os.ProcessState) (int, string) {
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() {
		return ps.ExitCode(), ""
	}
	return job.ExitSignalBase + int(ws.Signal()), unix.SignalName(ws.Signal())
}

// readFD reads once from a file descriptor, without waiting.
func readFD(fd uintptr, p []byte) (int, error) { return syscall.Read(int(fd), p) }
