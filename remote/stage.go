package remote

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/workerpool/workerpool/job"
)

// The pool's side of staging files (--transferfile, --return): a task
// that names files is sent them before it, runs in a directory of its own
// on the host, and has the files it returns written here before its
// result is. The agent's side is in stage_agent.go.

// staging is what the pool stages for one task: the files it sends,
// opened, and those it takes back.
type staging struct {
	sends   []sendFile
	returns map[string]string // the path on the host → the path here
	order   []string          // the paths on the host of returns, in the task's order
}

// sendFile is a file sent to the host: open here, and its path there.
type sendFile struct {
	f     *os.File
	there string
	mode  fs.FileMode
	size  int64
}

// stageOf opens the files t sends and maps those it returns; nil when it
// names none. An error is the task's: a path that cannot be staged, or a
// file to send that cannot be read, such as one missing.
func stageOf(t *job.Task) (*staging, error) {
	if len(t.Transfer) == 0 && len(t.Return) == 0 {
		return nil, nil
	}
	s := &staging{returns: map[string]string{}}
	for _, p := range t.Transfer {
		here, there, err := stagedPath(t.Dir, p)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("--transferfile %q: %w", p, err)
		}
		if slices.ContainsFunc(s.sends, func(f sendFile) bool { return f.there == there }) {
			continue // named twice (--transfer with --transferfile {}): sent once
		}
		f, info, err := openRegular(here)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("--transferfile: %w", err)
		}
		s.sends = append(s.sends, sendFile{f: f, there: there, mode: info.Mode(), size: info.Size()})
	}
	for _, p := range t.Return {
		here, there, err := stagedPath(t.Dir, p)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("--return %q: %w", p, err)
		}
		if _, ok := s.returns[there]; !ok {
			s.order = append(s.order, there)
		}
		s.returns[there] = here
	}
	return s, nil
}

// openRegular opens the regular file at path, and returns what it is.
func openRegular(path string) (*os.File, fs.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	info, err := f.Stat()
	if err == nil && !info.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", path)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, info, nil
}

// close closes the files to send.
func (s *staging) close() {
	for _, sf := range s.sends {
		sf.f.Close()
	}
}

// stagedPath is where a file of --transferfile or --return is, given as
// p: here, relative to dir (the task's, or the pool's working directory
// when empty) unless p is absolute; and on the host, relative to the
// task's directory there, with "/" between its names: p itself, or what
// follows "/./" in it, as in GNU parallel (rsync -R), so that an
// absolute path can be staged too. A path on the host that would leave
// the task's directory is an error.
func stagedPath(dir, p string) (here, there string, err error) {
	here, there = p, filepath.ToSlash(p)
	if dir != "" && !filepath.IsAbs(p) {
		here = filepath.Join(dir, p)
	}
	if _, after, ok := strings.Cut(there, "/./"); ok {
		there = after
	}
	there = strings.TrimPrefix(there, "./")
	if !filepath.IsLocal(filepath.FromSlash(there)) || p == "" {
		return "", "", errors.New("not a path within the task's directory: give a relative path without .., " +
			"or mark with /./ where the path on the host begins (/data/./in/x.txt is in/x.txt there)")
	}
	return here, there, nil
}

// sendFiles sends s's files for task id, each in chunks. An error reading
// a file here is the task's (local), and so is ctx done between two
// chunks (job.ErrCancelled); one sending is the connection's. A file that
// changes size as it is read fails on the host.
func (c *conn) sendFiles(ctx context.Context, id uint64, s *staging) (local, sending error) {
	buf := make([]byte, chunkSize)
	for _, sf := range s.sends {
		if err := c.send(request{ID: id, Put: wireString(sf.there), Mode: uint32(sf.mode.Perm()), Size: sf.size}); err != nil {
			return nil, err
		}
		for {
			if ctx.Err() != nil {
				return job.ErrCancelled, nil
			}
			n, err := io.ReadFull(sf.f, buf)
			if n > 0 {
				if err := c.sendData(request{ID: id, Data: int64(n)}, buf[:n]); err != nil {
					return nil, err
				}
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				break
			}
			if err != nil {
				return fmt.Errorf("--transferfile: %w", err), nil
			}
		}
	}
	return nil, nil
}

// incoming is what a task returns, as it comes: the files it may return,
// the one being written, and what went wrong writing them here.
type incoming struct {
	files     map[string]string // the path on the host → the path here
	tmp       *os.File          // the file being received, beside its place
	dest      string
	mode      fs.FileMode
	size, got int64 // the bytes the file has, and those that came
	failed    error // writing the file being received
	errs      []error
	returning bool      // a file has come: the task has ended on the host
	ended     time.Time // when the first file came, on the pool's clock
}

// expect notes that task id returns the files of s.
func (c *conn) expect(id uint64, s *staging) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.incoming[id] = &incoming{files: s.returns}
}

// incomingOf returns what task id returns, or nil when it returns nothing.
func (c *conn) incomingOf(id uint64) *incoming {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.incoming[id]
}

// isReturning reports whether task id is sending back its files: it has
// ended on the host, and its reply comes after them.
func (c *conn) isReturning(id uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	in := c.incoming[id]
	return in != nil && in.returning
}

// takeIncoming returns what task id returns, and forgets it.
func (c *conn) takeIncoming(id uint64) *incoming {
	c.mu.Lock()
	defer c.mu.Unlock()
	in := c.incoming[id]
	delete(c.incoming, id)
	return in
}

// receiveFile handles a line of a returned file: the start of one, or its
// data, which it reads. A file the task was not asked to return, or data
// for none, is a protocol error.
func (c *conn) receiveFile(rep *reply) error {
	in := c.incomingOf(rep.ID)
	if in == nil {
		return fmt.Errorf("a returned file for task %d, which returns none there", rep.ID)
	}
	if rep.File == "" {
		if in.tmp == nil && in.failed == nil {
			return fmt.Errorf("data for task %d before any file", rep.ID)
		}
		var w io.Writer
		if in.failed == nil {
			w = in.tmp
		}
		fw := &failWriter{w: w}
		err := readData(c.stdout, rep.Data, fw)
		in.failed = cmp.Or(in.failed, fw.err)
		in.got += rep.Data
		return err
	}
	dest, ok := in.files[string(rep.File)]
	if !ok {
		return fmt.Errorf("task %d returns %q, which it was not asked for", rep.ID, string(rep.File))
	}
	c.mu.Lock()
	if !in.returning {
		in.returning, in.ended = true, time.Now()
	}
	c.mu.Unlock()
	in.finish()
	in.begin(dest, fs.FileMode(rep.Mode).Perm(), rep.Size)
	return nil
}

// begin starts receiving the file to be written at dest, into a temporary
// file beside it, made with its directories.
func (in *incoming) begin(dest string, mode fs.FileMode, size int64) {
	in.dest, in.mode, in.failed, in.size, in.got = dest, mode, nil, size, 0
	dir := filepath.Dir(dest)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		in.failed = err
		return
	}
	in.tmp, in.failed = os.CreateTemp(dir, ".workerpool-return-*")
}

// finish puts the file being received in its place, with its mode, once
// it has come whole; otherwise it removes it, and notes why.
func (in *incoming) finish() {
	if in.tmp == nil && in.failed == nil {
		return
	}
	if in.tmp != nil {
		err := in.failed
		if err == nil && in.got != in.size {
			err = fmt.Errorf("%d of its %d bytes came (it changed on the host, or the task was stopped)", in.got, in.size)
		}
		if err == nil {
			err = in.tmp.Chmod(in.mode)
		}
		if cerr := in.tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(in.tmp.Name(), in.dest)
		}
		if err != nil {
			os.Remove(in.tmp.Name())
		}
		in.failed = err
	}
	if in.failed != nil {
		in.errs = append(in.errs, fmt.Errorf("--return: cannot write %s: %w", in.dest, in.failed))
	}
	in.tmp, in.failed = nil, nil
}

// abort removes the file being received, for a task whose reply will not
// come.
func (in *incoming) abort() {
	if in.tmp != nil {
		in.tmp.Close()
		os.Remove(in.tmp.Name())
		in.tmp = nil
	}
}

// dropIncoming forgets what task id returns, removing a file it had not
// finished receiving: the task's reply will not come.
func (c *conn) dropIncoming(id uint64) {
	if in := c.takeIncoming(id); in != nil {
		in.abort()
	}
}
