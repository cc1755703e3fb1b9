package job

import (
	"bytes"
	"io"
)

// Output is one captured stream of a child: its first bytes in memory and,
// past the executor's spill threshold, the rest in a Spill, so that a task
// writing gigabytes does not hold them in memory. The zero Output holds no
// bytes. Whoever ends up with a Result closes it.
type Output struct {
	head  []byte
	spill Spill // nil when every byte is in head
}

// Spill holds the bytes of an Output after those it keeps in memory, out of
// memory: in a file of the Output's own or in a section of a file it shares
// with others (package spool makes both). ReadAt reads at offsets from the
// start of those bytes, and does not disturb other reads of the same file.
// Close releases them: it closes a file of the Output's own, and gives a
// section back to the file's owner.
type Spill interface {
	io.ReaderAt
	io.Closer
	// Size is the number of bytes held.
	Size() int64
}

// BytesOutput returns an Output that holds b, in memory.
func BytesOutput(b []byte) Output { return Output{head: b} }

// NewOutput returns an Output of head, in memory, then the bytes of spill,
// which may be nil. The Output takes spill over: closing it closes spill.
func NewOutput(head []byte, spill Spill) Output { return Output{head: head, spill: spill} }

// Head returns the bytes held in memory: all of them when Spill is nil.
func (o Output) Head() []byte { return o.head }

// Spill returns where the bytes after Head are held, or nil when there are
// none.
func (o Output) Spill() Spill { return o.spill }

// Len is the number of bytes captured.
func (o Output) Len() int64 {
	if o.spill == nil {
		return int64(len(o.head))
	}
	return int64(len(o.head)) + o.spill.Size()
}

// Reader reads the captured bytes from the start. It reads the spill at
// offsets (ReadAt), so it is not disturbed by others that read or write
// other sections of the same file meanwhile.
func (o Output) Reader() io.Reader {
	if o.spill == nil {
		return bytes.NewReader(o.head)
	}
	return io.MultiReader(bytes.NewReader(o.head), io.NewSectionReader(o.spill, 0, o.spill.Size()))
}

// Bytes returns every captured byte, reading any spill into memory.
func (o Output) Bytes() []byte {
	if o.spill == nil {
		return o.head
	}
	buf := bytes.NewBuffer(make([]byte, 0, o.Len()))
	_, _ = buf.ReadFrom(o.Reader())
	return buf.Bytes()
}

// String returns every captured byte as text.
func (o Output) String() string { return string(o.Bytes()) }

// Close releases the spill, if there is one (see Spill.Close).
func (o Output) Close() error {
	if o.spill == nil {
		return nil
	}
	return o.spill.Close()
}
