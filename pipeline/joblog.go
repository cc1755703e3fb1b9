package pipeline

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/workerpool/workerpool/encode"
	"github.com/workerpool/workerpool/internal/shorten"
	"github.com/workerpool/workerpool/job"
)

// joblog is the file of --joblog: a line for each task that ends, in GNU
// parallel's format (encode.AppendJoblog), written as it ends. Its methods
// may be called from many goroutines at once, and on a nil joblog, which
// records nothing.
type joblog struct {
	path string
	// recorded holds, to resume, the seqs the joblog records as done:
	// nil when the run does not resume.
	recorded map[int64]bool

	mu   sync.Mutex
	f    *os.File
	line []byte
	err  error // the first write that failed
}

// openJoblog opens the joblog at path. A new run truncates it and writes
// the header; one that resumes reads it first, and appends: with
// onlySucceeded, only the tasks it records as exited 0 are done, otherwise
// every task it records.
func openJoblog(path string, resume, onlySucceeded bool) (*joblog, error) {
	j := &joblog{path: path}
	cannot := func(err error) (*joblog, error) {
		if j.f != nil {
			j.f.Close()
		}
		return nil, fmt.Errorf("cannot open --joblog %s: %w", path, shorten.Error(err))
	}
	if !resume {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return cannot(err)
		}
		j.f = f
		if _, err := io.WriteString(f, encode.JoblogHeader); err != nil {
			return cannot(err)
		}
		return j, nil
	}
	f, err := openLocked(path, os.O_RDWR)
	if err != nil {
		return cannot(err)
	}
	j.f = f
	entries, endsLine, err := encode.ReadJoblog(f)
	if err != nil {
		return cannot(err)
	}
	j.recorded = map[int64]bool{}
	for _, e := range entries {
		if e.Succeeded || !onlySucceeded {
			j.recorded[e.Seq] = true
		}
	}
	size, err := f.Seek(0, io.SeekEnd)
	switch {
	case err != nil:
	case size == 0:
		_, err = io.WriteString(f, encode.JoblogHeader)
	case !endsLine:
		_, err = io.WriteString(f, "\n")
	}
	if err != nil {
		return cannot(err)
	}
	return j, nil
}

// resumes reports whether the joblog says which tasks are done.
func (j *joblog) resumes() bool { return j != nil && j.recorded != nil }

// done reports whether the joblog records the task at seq as done, so
// that it is not run again.
func (j *joblog) done(seq int64) bool { return j != nil && j.recorded[seq] }

// add writes the line of t, which ended with r. It returns an error, the
// first time only, when the line cannot be written.
func (j *joblog) add(t *job.Task, r *job.Result) error {
	if j == nil {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return nil
	}
	j.line = encode.AppendJoblog(j.line[:0], t, r)
	if _, err := j.f.Write(j.line); err != nil {
		j.err = fmt.Errorf("cannot write --joblog %s: %w", j.path, shorten.Error(err))
		return j.err
	}
	return nil
}

// close closes the joblog, and returns why a line could not be written,
// if one could not.
func (j *joblog) close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.f.Close(); err != nil && j.err == nil {
		j.err = fmt.Errorf("cannot write --joblog %s: %w", j.path, err)
	}
	return j.err
}
