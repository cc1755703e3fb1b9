package pipeline

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/workerpool/workerpool/internal/shorten"
)

// output is where results go: stdout, a file appended to, a file or device
// written in place, or a new file that replaces the target once complete.
type output struct {
	w io.Writer
	// finish ends the output; keep says whether what was written is to
	// be kept (a file not yet in place is dropped otherwise).
	finish func(keep bool) error
}

func (c *Config) openOutput(stdout io.Writer) (*output, error) {
	if c.Outfile == "" {
		return &output{w: stdout, finish: func(bool) error { return nil }}, nil
	}
	var o *output
	var err error
	if c.mode().Traits().Appends {
		var f *os.File
		if f, err = openLocked(c.Outfile, os.O_WRONLY|os.O_APPEND); err == nil {
			o = &output{w: f, finish: func(bool) error { return f.Close() }}
		}
	} else {
		o, err = openReplacement(c.Outfile, "--outfile")
	}
	if err != nil {
		return nil, fmt.Errorf("cannot open --outfile %s: %w", c.Outfile, shorten.Error(err))
	}
	return o, nil
}

// openReport opens the file of --report, which gets the page at the end.
func (c *Config) openReport() (*output, error) {
	o, err := openReplacement(c.Report, "--report")
	if err != nil {
		return nil, fmt.Errorf("cannot open --report %s: %w", c.Report, shorten.Error(err))
	}
	return o, nil
}

// openLocked opens path to append result lines to, with flag
// (os.O_WRONLY|os.O_APPEND, or os.O_RDWR to read it first), creating it if
// need be. A regular file is locked for the run, so that two pools never
// write (or resume) one journal at once.
func openLocked(path string, flag int) (*os.File, error) {
	for {
		f, err := os.OpenFile(path, flag|os.O_CREATE, 0o644)
		if err != nil {
			return nil, err
		}
		info, err := f.Stat()
		if err != nil || !info.Mode().IsRegular() {
			return f, nil
		}
		if err := lockFile(f); err != nil {
			f.Close()
			return nil, err
		}
		// A pool that compacted the journal (compactJournal) may have put
		// a new file in its place between the open and the lock: then
		// this one is no longer the journal, and the new one is opened.
		if now, err := os.Stat(path); err != nil || os.SameFile(info, now) {
			return f, nil
		}
		f.Close()
	}
}

// errLocked says that another pool holds the journal.
var errLocked = errors.New("another workerpool is writing to it")

// openReplacement opens what will become the file at path, whole or not
// at all: a new file in the same directory, put in place when the output
// is complete, so that a reader never sees half an array. What is not a
// regular file (a FIFO, a device) is written in place instead, never
// replaced; a symbolic link is followed, and its target replaced.
func openReplacement(path, flag string) (*output, error) {
	target, err := resolveLinks(path)
	if err != nil {
		return nil, err
	}
	info, err := os.Stat(target)
	if err == nil && !info.Mode().IsRegular() {
		if info.IsDir() {
			return nil, errors.New("it is a directory")
		}
		f, err := os.OpenFile(target, os.O_WRONLY, 0)
		if err != nil {
			return nil, err
		}
		return &output{w: f, finish: func(bool) error { return f.Close() }}, nil
	}
	f, p, err := createUnnamed(filepath.Dir(target))
	if err != nil {
		return nil, err
	}
	finish := func(keep bool) error {
		err := f.Chmod(0o644)
		if err == nil && keep {
			err = p.place(target)
		}
		if err != nil || !keep {
			p.discard()
		}
		if err = errors.Join(err, f.Close()); err != nil {
			return fmt.Errorf("cannot write %s: %w", flag, err)
		}
		return nil
	}
	return &output{w: f, finish: finish}, nil
}

// resolveLinks follows symbolic links from path to what they name, which
// need not exist yet.
func resolveLinks(path string) (string, error) {
	for range 40 {
		info, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) {
			return path, nil
		}
		if err != nil {
			return "", err
		}
		if info.Mode()&fs.ModeSymlink == 0 {
			return path, nil
		}
		link, err := os.Readlink(path)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(link) {
			link = filepath.Join(filepath.Dir(path), link)
		}
		path = link
	}
	return "", errors.New("too many levels of symbolic links")
}

// sameFile reports whether the input r is the file at path.
func sameFile(r io.Reader, path string) bool {
	f, ok := r.(*os.File)
	if !ok || path == "" {
		return false
	}
	in, err := f.Stat()
	if err != nil || !in.Mode().IsRegular() {
		return false
	}
	out, err := os.Stat(path)
	return err == nil && os.SameFile(in, out)
}

// createNamed creates a hidden temporary file in dir, which place renames
// to its target, and discard removes.
func createNamed(dir string) (*os.File, *placement, error) {
	f, err := os.CreateTemp(dir, ".workerpool-*.tmp")
	if err != nil {
		return nil, nil, err
	}
	return f, &placement{
		place:   func(target string) error { return os.Rename(f.Name(), target) },
		discard: func() { os.Remove(f.Name()) },
	}, nil
}

// placement puts a new file in place of its target, or drops it.
type placement struct {
	place   func(target string) error
	discard func()
}
