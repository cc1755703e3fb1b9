package remote

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"

	"github.com/workerpool/workerpool/job"
)

// The agent's side of staging files: each task that stages files runs in
// a directory of its own, named by its request's id, in a directory of
// the run made in the host's temporary directory at the first such task
// (workerpool-files-*). The files put for the task are written there at
// their relative paths before it starts; once it has ended, the files it
// returns are sent back, and with Cleanup the files put and returned are
// removed, with the directories left empty, the task's own included. The
// run's directory is removed when the agent ends, if it is empty, and so
// are the files put for tasks that never started.

// stageRoot is the agent's directory of staged tasks, made when first
// needed. Its methods are safe to call at once; the methods whose names
// end in Locked run with mu held.
type stageRoot struct {
	mu     sync.Mutex
	dir    string
	tasks  map[uint64]*stagedTask // files being put, for tasks not yet started
	closed bool                   // the agent is ending: nothing more is staged
	buf    bytes.Buffer           // the chunk being read, by the agent's reader alone
}

// stagedTask is the directory of one task on the host, and the files put
// there.
type stagedTask struct {
	dir       string
	put       []string // paths relative to dir, with "/" between names
	file      *os.File // the file being written
	size, got int64    // the bytes the file has, and those that came
	err       error    // the first error putting files
}

// taskLocked returns the staged task of id, making its directory (and
// the run's, at first) when it has none yet.
func (r *stageRoot) taskLocked(id uint64) *stagedTask {
	if st := r.tasks[id]; st != nil {
		return st
	}
	st := &stagedTask{}
	if r.tasks == nil {
		r.tasks = map[uint64]*stagedTask{}
	}
	r.tasks[id] = st
	if r.closed {
		st.err = errors.New("the agent is ending")
		return st
	}
	if r.dir == "" {
		dir, err := os.MkdirTemp("", "workerpool-files-")
		if err != nil {
			st.err = fmt.Errorf("cannot make a directory for staged files: %w", err)
			return st
		}
		r.dir = dir
	}
	st.dir = filepath.Join(r.dir, strconv.FormatUint(id, 10))
	if err := os.Mkdir(st.dir, 0o700); err != nil {
		st.err = fmt.Errorf("cannot make a directory for staged files: %w", err)
	}
	return st
}

// put handles a line that puts a file for a task, or says that its data
// follows, which it reads from in first, into buf, so that no wait on
// the pool holds mu. An error is in's, or one of framing.
func (r *stageRoot) put(q *request, in *bufio.Reader) error {
	var chunk []byte
	if q.Put == "" {
		r.buf.Reset()
		if err := readData(in, q.Data, &r.buf); err != nil {
			return err
		}
		chunk = r.buf.Bytes()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.taskLocked(q.ID)
	switch {
	case q.Put != "":
		st.open(q)
	case st.err == nil && st.file != nil:
		_, st.err = st.file.Write(chunk)
		st.got += int64(len(chunk))
	}
	return nil
}

// open starts the file q puts.
func (st *stagedTask) open(q *request) {
	st.closeFile()
	if st.err != nil {
		return
	}
	rel := string(q.Put)
	if !filepath.IsLocal(filepath.FromSlash(rel)) {
		st.err = fmt.Errorf("--transferfile: %q is not a path within the task's directory", rel)
		return
	}
	path := filepath.Join(st.dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		st.err = err
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fs.FileMode(q.Mode).Perm())
	if err != nil {
		st.err = err
		return
	}
	st.put = append(st.put, rel)
	st.file, st.size, st.got = f, q.Size, 0
	if err := f.Chmod(fs.FileMode(q.Mode).Perm()); err != nil { // past the umask
		st.err = err
	}
}

// take returns the staged task of id, whose files are all put, and
// forgets it; it makes the task's directory if no file was put.
func (r *stageRoot) take(id uint64) *stagedTask {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.taskLocked(id)
	delete(r.tasks, id)
	st.closeFile()
	return st
}

// drop removes what was put for task id, which will not start.
func (r *stageRoot) drop(id uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dropLocked(id)
}

func (r *stageRoot) dropLocked(id uint64) {
	if st := r.tasks[id]; st != nil {
		delete(r.tasks, id)
		st.closeFile()
		st.clean(nil)
	}
}

// close removes what was put for tasks that never started, then the run's
// directory, if it is empty.
func (r *stageRoot) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for id := range r.tasks {
		r.dropLocked(id)
	}
	if r.dir != "" {
		_ = os.Remove(r.dir)
	}
}

// closeFile closes the file being written, which must have come whole.
func (st *stagedTask) closeFile() {
	if st.file != nil {
		if err := st.file.Close(); err != nil && st.err == nil {
			st.err = err
		}
		if st.got != st.size && st.err == nil {
			st.err = fmt.Errorf("--transferfile %s: %d of its %d bytes came: it changed as it was sent",
				st.put[len(st.put)-1], st.got, st.size)
		}
		st.file = nil
	}
}

// sendBack sends the files of paths, relative to the task's directory,
// to the pool as lines through send, each in chunks, and returns what
// went wrong: files that are missing or cannot be read. When ctx is done
// it sends no more: the pool, which stopped the task, takes a file cut
// short for none. send reports false when it could not send, ctx being
// done, and then nothing more is sent.
func (st *stagedTask) sendBack(ctx context.Context, id uint64, paths []string, send func(reply, []byte) bool) error {
	var errs []error
	for _, rel := range paths {
		if !filepath.IsLocal(filepath.FromSlash(rel)) {
			errs = append(errs, fmt.Errorf("--return: %q is not a path within the task's directory", rel))
			continue
		}
		f, info, err := openRegular(filepath.Join(st.dir, filepath.FromSlash(rel)))
		if err != nil {
			errs = append(errs, fmt.Errorf("--return: %w", err))
			continue
		}
		if !send(reply{ID: id, File: wireString(rel), Mode: uint32(info.Mode().Perm()), Size: info.Size()}, nil) {
			f.Close()
			break
		}
		for ctx.Err() == nil {
			buf := make([]byte, chunkSize) // each chunk is the writer's until written
			n, err := io.ReadFull(f, buf)
			if n > 0 && !send(reply{ID: id, Data: int64(n)}, buf[:n]) {
				f.Close()
				return errors.Join(errs...)
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				break
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("--return %s: %w", rel, err))
				break
			}
		}
		f.Close()
	}
	return errors.Join(errs...)
}

// clean removes the files put and those of returned from the task's
// directory, then the directories left empty, up to the task's own.
func (st *stagedTask) clean(returned []string) {
	if st.dir == "" {
		return
	}
	for _, rel := range slices.Concat(st.put, returned) {
		if !filepath.IsLocal(filepath.FromSlash(rel)) {
			continue
		}
		path := filepath.Join(st.dir, filepath.FromSlash(rel))
		_ = os.Remove(path)
		for dir := filepath.Dir(path); dir != st.dir && len(dir) > len(st.dir); dir = filepath.Dir(dir) {
			if os.Remove(dir) != nil {
				break // not empty: the task's own files are left
			}
		}
	}
	_ = os.Remove(st.dir)
}

// runStaged runs t in st's directory, then sends back the files of q's
// Return and, with q's Cleanup, removes the files. Staging errors are the
// task's: one whose files could not be put does not start.
func (a *agent) runStaged(ctx context.Context, run func(*job.Task) job.Result, t *job.Task, q *request, st *stagedTask) job.Result {
	if st.err != nil {
		st.clean(nil)
		return job.NotRun(t, st.err)
	}
	t.Dir = st.dir
	res := run(t)
	if !errors.Is(res.Err, job.ErrCancelled) {
		send := func(rep reply, data []byte) bool { return a.send(ctx, answer{id: q.ID, line: &rep, data: data}) }
		if err := st.sendBack(ctx, q.ID, q.Return, send); err != nil {
			res.Err = errors.Join(res.Err, err)
		}
	}
	if q.Cleanup {
		st.clean(q.Return)
	}
	return res
}
