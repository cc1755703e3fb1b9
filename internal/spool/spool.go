// Package spool keeps captured output, a job.Output's bytes, where they
// cost little memory. A Buffer keeps one stream as it is read: its first
// bytes in memory and the rest in an unlinked temporary file of its own
// (dispatch reads a running child's pipes into one; ReadOutput reads an
// output that arrives by length, as a remote agent's reply does). A Held
// file keeps the bytes of many outputs that wait, each in a section of its
// own, in one temporary file shared by them all.
//
// Every temporary file is made in a temporary directory that the caller
// names, os.TempDir() when it names none, and is unlinked at once: it goes
// away when it is closed, or when the process ends.
package spool

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/workerpool/workerpool/job"
)

// DefaultSpillAfter is how much of each captured stream stays in memory:
// enough for most outputs, little enough that a thousand running tasks fit
// in a few hundred MB.
const DefaultSpillAfter = 256 << 10

// Buffer keeps the bytes of one stream as they are read into it. It keeps
// the first Limit bytes (all of them when Limit is zero) and drops the
// rest; of those it keeps, the first InMemory stay in memory, and the
// others go to an unlinked temporary file in TempDir (os.TempDir() when
// empty), made when first needed. Bytes that cannot be written to that
// file are dropped too, and Output says why.
//
// A Buffer is used by one goroutine at a time. Output hands its bytes
// over; Release gives back the memory it reads through.
type Buffer struct {
	Limit    int64
	InMemory int
	TempDir  string

	head    []byte
	file    *os.File
	spilled int64
	scratch *[chunk]byte
	dropped bool  // bytes were read and not kept
	err     error // from the spill file; what cannot be kept is dropped
}

// chunk is the most read at once.
const chunk = 64 << 10

// ReadFrom reads r to its end, or to its first error, which it returns;
// the end of r is not an error.
func (b *Buffer) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for {
		n, err := b.ReadOnce(r.Read)
		total += int64(n)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

func (b *Buffer) size() int64 { return int64(len(b.head)) + b.spilled }

// ReadOnce makes one call of read, into a scratch chunk, and keeps what it
// got: in memory while the head is under InMemory, then in the spill file;
// past Limit it is dropped. It returns what read returned.
func (b *Buffer) ReadOnce(read func([]byte) (int, error)) (int, error) {
	buf := b.scratchBuf()
	room := int64(len(buf))
	if b.Limit > 0 {
		room = min(room, max(b.Limit-b.size(), 0))
	}
	if room == 0 || b.err != nil {
		n, err := read(buf)
		b.dropped = b.dropped || n > 0
		return n, err
	}
	n, err := read(buf[:room])
	if n <= 0 {
		return n, err
	}
	got := buf[:n]
	if inMem := min(len(got), b.InMemory-len(b.head)); inMem > 0 {
		b.head = append(b.head, got[:inMem]...)
		got = got[inMem:]
	}
	if len(got) > 0 {
		b.keep(got)
	}
	return n, err
}

// keep appends p to the spill file, creating it (unlinked) on first use.
func (b *Buffer) keep(p []byte) {
	if b.file == nil {
		f, err := createTemp(b.TempDir, "workerpool-output-*")
		if err != nil {
			b.err, b.dropped = err, true
			return
		}
		b.file = f
	}
	n, err := b.file.Write(p)
	b.spilled += int64(n)
	if err != nil {
		b.err, b.dropped = err, true
	}
}

// createTemp makes a temporary file in dir (os.TempDir() when empty), and
// unlinks it.
func createTemp(dir, pattern string) (*os.File, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	return f, nil
}

// Output hands over what was kept, which the caller closes, and says
// whether bytes were dropped: past the limit, or because they could not
// be kept. When some could not be kept, err says why, naming the stream
// ("stdout" or "stderr"): the spill file could not be made or written.
func (b *Buffer) Output(stream string) (out job.Output, dropped bool, err error) {
	if b.err != nil {
		err = fmt.Errorf("cannot keep %s: %w", stream, b.err)
	}
	if b.file == nil {
		return job.BytesOutput(b.head), b.dropped, err
	}
	return job.NewOutput(b.head, &ownFile{io.NewSectionReader(b.file, 0, b.spilled), b.file}), b.dropped, err
}

// scratchPool holds the chunks that streams are read through, so that a
// stream of few bytes allocates only what it holds.
var scratchPool = sync.Pool{New: func() any { return new([chunk]byte) }}

func (b *Buffer) scratchBuf() []byte {
	if b.scratch == nil {
		b.scratch = scratchPool.Get().(*[chunk]byte)
	}
	return b.scratch[:]
}

// Release gives back the scratch chunk; the buffer may read again after
// it.
func (b *Buffer) Release() {
	if b.scratch != nil {
		scratchPool.Put(b.scratch)
		b.scratch = nil
	}
}

// ownFile is the spill file of one output's own: closing it closes the
// file.
type ownFile struct {
	*io.SectionReader
	f *os.File
}

func (s *ownFile) Close() error { return s.f.Close() }

// ReadOutput reads r to its end and keeps what it read as a task's output
// stream is kept (stream names it, "stdout" or "stderr"): the first
// DefaultSpillAfter bytes in memory, the rest in an unlinked temporary file
// in tempDir (os.TempDir() when empty). The caller closes the Output. It
// reads r to its end even when the bytes cannot be kept, so that a stream
// framed by length stays in step; the bytes not kept are then dropped, as
// truncated reports, and the error says why (see Buffer.Output). An error
// reading r is returned as it is, before any such error.
func ReadOutput(r io.Reader, stream, tempDir string) (out job.Output, truncated bool, err error) {
	b := Buffer{InMemory: DefaultSpillAfter, TempDir: tempDir}
	defer b.Release()
	_, rerr := b.ReadFrom(r)
	out, truncated, err = b.Output(stream)
	if rerr != nil {
		err = rerr
	}
	return out, truncated, err
}
