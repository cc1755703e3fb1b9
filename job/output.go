package job

import (
	"bytes"
	"io"
	"os"
)

// Output is one captured stream of a child: its first bytes in memory and,
// past the executor's spill threshold, the rest in an unlinked temporary
// file, so that a task writing gigabytes does not hold them in memory.
// Whoever ends up with a Result closes it.
type Output struct {
	Head []byte
	// Spill holds the bytes after Head, SpillSize of them from SpillOffset;
	// nil if there are none.
	Spill       *os.File
	SpillOffset int64
	SpillSize   int64
	// Shared, when not nil, says that Spill is not this Output's own: many
	// outputs keep their bytes in it, each in a section of its own, and its
	// owner closes it. Close then closes Shared, which tells the owner that
	// the section is no longer read, and leaves Spill open.
	Shared io.Closer
}

// Len is the number of bytes captured.
func (o Output) Len() int64 { return int64(len(o.Head)) + o.SpillSize }

// Reader reads the captured bytes from the start. It reads the spill file
// at offsets (ReadAt), so it is not disturbed by others that read or write
// other sections of that file meanwhile.
func (o Output) Reader() io.Reader {
	if o.Spill == nil {
		return bytes.NewReader(o.Head)
	}
	return io.MultiReader(bytes.NewReader(o.Head), io.NewSectionReader(o.Spill, o.SpillOffset, o.SpillSize))
}

// Bytes returns every captured byte, reading any spill into memory.
func (o Output) Bytes() []byte {
	if o.Spill == nil {
		return o.Head
	}
	b := make([]byte, 0, o.Len())
	buf := bytes.NewBuffer(b)
	_, _ = buf.ReadFrom(o.Reader())
	return buf.Bytes()
}

// String returns every captured byte as text.
func (o Output) String() string { return string(o.Bytes()) }

// Close releases the spill file, if any: it closes Shared when it is set,
// and Spill otherwise.
func (o Output) Close() error {
	switch {
	case o.Shared != nil:
		return o.Shared.Close()
	case o.Spill != nil:
		return o.Spill.Close()
	}
	return nil
}
