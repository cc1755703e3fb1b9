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
// or not executable, or its limits cannot be set. A relative path is
// relative to the task's directory.
func (l *Local) Resolve(t *job.Task) (string, error) {
	if err := checkDir(t.Dir); err != nil {
		_, err = startFailure(t.Command, err)
		return "", err
	}
	path, err := l.lookPath(t.Command)
	if err == nil && strings.ContainsRune(t.Command, '/') {
		if t.Dir != "" && !filepath.IsAbs(path) {
			path = filepath.Join(t.Dir, path)
		}
		_, err = exec.LookPath(path) // checks that it exists and is executable
	}
	if err == nil && t.Limits.Set() {
		err = checkLimits(t.Limits)
	}
	if err != nil {
		_, err = startFailure(t.Command, err)
	}
	return path, err
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
