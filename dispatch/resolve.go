package dispatch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/workerpool/workerpool/internal/shorten"
	"github.com/workerpool/workerpool/job"
)

// dirError is a working directory a task cannot start in.
type dirError struct {
	dir string
	err error
}

func (e *dirError) Error() string { return fmt.Sprintf("dir %q: %v", e.dir, e.err) }

// checkDir reports why dir cannot be a working directory, if it cannot:
// the child's own chdir failure would look like a missing command.
func checkDir(dir string) error {
	if dir == "" {
		return nil
	}
	info, err := os.Stat(dir)
	if err == nil && !info.IsDir() {
		err = syscall.ENOTDIR
	}
	if err != nil {
		return &dirError{dir, shorten.Error(err)}
	}
	return nil
}

// startFailure maps an error from looking up or starting a command to an
// exit code and a message.
func startFailure(command string, err error) (int, error) {
	var pathErr *fs.PathError
	var dirErr *dirError
	switch {
	case errors.As(err, &dirErr):
	case errors.Is(err, exec.ErrNotFound), errors.As(err, &pathErr) && errors.Is(err, fs.ErrNotExist):
		return job.ExitNotFound, fmt.Errorf("command not found: %s", command)
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.ENOEXEC), errors.Is(err, syscall.EISDIR), errors.Is(err, exec.ErrDot):
		return job.ExitNotExecutable, fmt.Errorf("command not executable: %s: %w", command, shorten.Error(err))
	}
	return job.ExitNeverStarted, fmt.Errorf("cannot start %s: %w", command, err)
}

// Resolve returns the program that t would run, as Execute would run it,
// or why it cannot run: its directory is missing, its command is not found
// or not executable, or its limits cannot be set; the error is the one
// Execute would give the task (see resolve). A relative path is returned
// joined to the task's directory.
func (l *Local) Resolve(t *job.Task) (string, error) {
	_, file, err := l.resolve(t)
	if err != nil {
		_, err = startFailure(t.Command, err)
	}
	return file, err
}

// resolve finds the program that t runs, or says why t cannot start: its
// directory is not one, its command is not found or not executable, or its
// limits cannot be set. It is the one check both of prepare, before a task
// starts, and of Resolve, for a dry run, so that a task a dry run says
// cannot run fails when run, with the same error and exit code; its error
// is as the check returned it, for startFailure to word.
//
// A command name is found in PATH (lookPath). A path is looked up from the
// task's directory, where the child starts, so that one that is missing,
// a directory or not executable fails here rather than in the child; so is
// any program started through the limits trampoline, which would start
// even a program that cannot be. Only what exec itself finds out (a file
// that is no program, a missing interpreter) is left to the start.
//
// It returns the program twice: as the child starts it (start: a relative
// path stays relative to the task's directory, and on Windows gains the
// extension it was found with), and as this process finds it (file: a
// relative path joined to the task's directory), which is what Resolve
// shows. When the lookup fails, file is what was looked up.
func (l *Local) resolve(t *job.Task) (start, file string, err error) {
	if err := checkDir(t.Dir); err != nil {
		return "", "", err
	}
	path, err := l.lookPath(t.Command)
	if err != nil {
		return "", "", err
	}
	start, file = path, path
	isPath := strings.ContainsRune(t.Command, '/')
	if isPath && t.Dir != "" && !filepath.IsAbs(path) {
		file = filepath.Join(t.Dir, path)
	}
	if isPath || t.Limits.Set() {
		found, err := exec.LookPath(file) // it exists, and may be run
		if err != nil {
			return "", file, err
		}
		if filepath.Ext(start) == "" {
			// Windows: the extension of PATHEXT's that the file has, as
			// the command line would find it; "" elsewhere.
			start += filepath.Ext(found)
		}
	}
	if t.Limits.Set() {
		if err := checkLimits(t.Limits); err != nil {
			return "", file, err
		}
	}
	return start, file, nil
}

// lookPath resolves a command name in PATH once per name; a name with a
// slash is used as it is.
func (l *Local) lookPath(command string) (string, error) {
	if command == "" {
		return "", exec.ErrNotFound
	}
	if strings.ContainsRune(command, '/') {
		return command, nil
	}
	if p, ok := l.paths.Load(command); ok {
		return p.(string), nil
	}
	p, err := exec.LookPath(command)
	if err != nil {
		return "", err
	}
	l.paths.Store(command, p)
	return p, nil
}
