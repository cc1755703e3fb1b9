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
	Head      []byte
	Spill     *os.File // the bytes after Head, from offset 0; nil if none
	SpillSize int64
}

// Len is the number of bytes captured.
func (o Output) Len() int64 { return int64(len(o.Head)) + o.SpillSize }

// Reader reads the captured bytes from the start. Readers of the same
// Output must not be used at once.
func (o Output) Reader() io.Reader {
	if o.Spill == nil {
		return bytes.NewReader(o.Head)
	}
	return io.MultiReader(bytes.NewReader(o.Head), io.NewSectionReader(o.Spill, 0, o.SpillSize))
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

// Close releases the spill file, if any.
func (o Output) Close() error {
	if o.Spill == nil {
		return nil
	}
	return o.Spill.Close()
}
