//go:build windows

package dispatch

import (
	"errors"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/workerpool/workerpool/job"
)

// jobObject is a Windows Job Object holding the task's child and every
// process it starts. It is made to end its processes when its last handle
// closes, so that a pool that dies, however it dies, takes them with it.
type jobObject struct{ handle windows.Handle }

func newGroup() (group, error) {
	h, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		return nil, err
	}
	info := windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION{
		BasicLimitInformation: windows.JOBOBJECT_BASIC_LIMIT_INFORMATION{
			LimitFlags: windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
		},
	}
	if _, err := windows.SetInformationJobObject(h, windows.JobObjectExtendedLimitInformation,
		uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
		windows.CloseHandle(h)
		return nil, err
	}
	return &jobObject{handle: h}, nil
}

// start starts the program suspended, puts it in the job, then lets it
// run, so that nothing it starts can escape the job.
func (g *jobObject) start(path string, argv []string, attr *os.ProcAttr) (*os.Process, error) {
	attr.Sys = &syscall.SysProcAttr{CreationFlags: windows.CREATE_SUSPENDED | windows.CREATE_NEW_PROCESS_GROUP}
	p, err := os.StartProcess(path, argv, attr)
	if err != nil {
		return nil, err
	}
	if err := g.adopt(p.Pid); err != nil {
		_ = p.Kill()
		_, _ = p.Wait()
		return nil, err
	}
	return p, nil
}

// adopt assigns the suspended process pid to the job and resumes it.
func (g *jobObject) adopt(pid int) error {
	const access = windows.PROCESS_SET_QUOTA | windows.PROCESS_TERMINATE | windows.PROCESS_SUSPEND_RESUME
	h, err := windows.OpenProcess(access, false, uint32(pid))
	if err != nil {
		return err
	}
	defer windows.CloseHandle(h)
	if err := windows.AssignProcessToJobObject(g.handle, h); err != nil {
		return err
	}
	if status, _, _ := ntResumeProcess.Call(uintptr(h)); status != 0 {
		return errors.New("cannot resume the process: NTSTATUS " + windows.NTStatus(status).Error())
	}
	return nil
}

// ntResumeProcess resumes every thread of a process: os/exec does not
// hand out the handle of the main thread that ResumeThread would need.
var ntResumeProcess = windows.NewLazySystemDLL("ntdll.dll").NewProc("NtResumeProcess")

// terminate ends the job's processes: Windows cannot ask a console-less
// process to stop, so there is no grace period.
func (g *jobObject) terminate() error { return g.kill() }

// exitKilled is the exit code of the processes ended by the pool.
const exitKilled = 1

func (g *jobObject) kill() error { return windows.TerminateJobObject(g.handle, exitKilled) }

func (g *jobObject) release() { windows.CloseHandle(g.handle) }

// usage reports the child's CPU times and the job's peak memory: the
// largest any of its processes committed, which stands for the resident
// peak that Windows does not keep per job.
func (g *jobObject) usage(ps *os.ProcessState) *job.Usage {
	u := &job.Usage{User: ps.UserTime(), System: ps.SystemTime()}
	var info windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION
	if err := windows.QueryInformationJobObject(g.handle, windows.JobObjectExtendedLimitInformation,
		uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info)), nil); err == nil {
		u.MaxRSS = int64(info.PeakProcessMemoryUsed / 1024)
	}
	return u
}

// awaitExit returns at once: the child's Wait waits.
func (g *jobObject) awaitExit(bool) bool { return false }

// gone reports false: the child's Wait alone tells.
func (g *jobObject) gone() bool { return false }

// exitStatus returns the exit code; Windows has no signals to name.
func exitStatus(ps *os.ProcessState) (int, string) { return ps.ExitCode(), "" }

// readFD reads once from a handle.
func readFD(fd uintptr, p []byte) (int, error) { return syscall.Read(syscall.Handle(fd), p) }

// reserveThreads does nothing here: Windows has no per-user process limit.
func reserveThreads(int) {}
