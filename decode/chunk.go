package decode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"

	"github.com/workerpool/workerpool/job"
)

// Pipe makes the decoder cut its input into chunks, each the stdin of one
// task of the template (GNU parallel's --pipe and --pipepart). Chunks end
// at record boundaries. Records are split between RecEnd and RecStart,
// where the two follow each other, or, with Lines, after every Lines
// lines.
type Pipe struct {
	// Block is the size a chunk is cut at: about that many bytes, more
	// when a record is longer. It must be more than 0.
	Block int64
	// Lines, when more than 0, makes a record that many lines, and
	// RecStart and RecEnd are not used (-L with --pipe).
	Lines int
	// RecStart and RecEnd are the strings that start and end a record;
	// either may be empty. parallel's defaults are RecEnd "\n" and
	// RecStart "" when neither is given, and "" for the other when one
	// is; the caller chooses them.
	RecStart, RecEnd string
	// Part, when set, names a regular file whose chunks are found by
	// their offsets and read by each task from the file itself, when it
	// runs (--pipepart); the decoder's input is then not read.
	Part string
}

// maxBlock is the most a chunk read from a stream may grow to when a
// record is longer than the block, as parallel caps it: 2 GiB less a byte.
const maxBlock = 1<<31 - 1

// chunks makes a task of each chunk of the input (see Options.Pipe).
func (d *Decoder) chunks(ctx context.Context, out chan<- job.Task) error {
	p := d.opts.Pipe
	if p.Block <= 0 {
		return errors.New("the block size of --pipe must be more than 0")
	}
	if p.Part != "" {
		return d.fileChunks(ctx, out)
	}
	c := newChunker(d.r, p)
	for {
		offset := c.offset
		data, err := c.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		t := d.chunkTask(job.Chunk{Offset: offset, Length: int64(len(data))})
		t.Stdin = string(data)
		if err := d.send(ctx, out, t); err != nil {
			return err
		}
	}
}

// fileChunks makes a task of each chunk of the file Pipe.Part names. The
// tasks read their chunk from the file: the decoder reads only around the
// points where chunks are cut.
func (d *Decoder) fileChunks(ctx context.Context, out chan<- job.Task) error {
	p := d.opts.Pipe
	f, err := os.Open(p.Part)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return &FramingError{Msg: fmt.Sprintf("--pipepart reads chunks of a regular file by their offsets, and %s is not one", p.Part)}
	}
	cuts := newCutter(f, info.Size(), p)
	for {
		start, end, err := cuts.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := d.send(ctx, out, d.chunkTask(job.Chunk{Path: p.Part, Offset: start, Length: end - start})); err != nil {
			return err
		}
	}
}

// chunkTask makes the next task, of chunk: the template with the
// replacement strings replaced, "{}" by nothing (the chunk is the task's
// stdin, not an argument), and the chunk's number as its identifier.
func (d *Decoder) chunkTask(chunk job.Chunk) job.Task {
	d.seq++
	n := strconv.FormatInt(d.seq, 10)
	t := job.Task{Seq: d.seq, Where: "chunk " + n, HasStdin: true, Chunk: &chunk}
	err := d.templateTask(nil, &t)
	t.Identifier = n
	t.Err = d.wrap(&t, err)
	return t
}

// chunker cuts a stream into chunks as GNU parallel's --pipe does: it reads
// up to the next multiple of the block size, and cuts after the last record
// boundary in what it holds; what follows waits for the next chunk. When
// what it holds has no boundary, the block grows by 30% (up to maxBlock)
// and more is read. At the end of the input, what is left is the last
// chunk, boundary or not.
type chunker struct {
	r      io.Reader
	block  int
	lines  int    // records of this many lines, when more than 0
	sep    []byte // RecEnd then RecStart: a boundary is between the two
	endLen int    // the length of RecEnd, where a boundary lies in sep
	buf    []byte // what is read and not yet in a chunk
	taken  int    // the bytes at buf's start that the last chunk returned
	eof    bool   // the input has ended
	// offset is where in the input the next chunk starts.
	offset int64
}

func newChunker(r io.Reader, p *Pipe) *chunker {
	return &chunker{r: r, block: int(min(p.Block, maxBlock)), lines: p.Lines,
		sep: []byte(p.RecEnd + p.RecStart), endLen: len(p.RecEnd)}
}

// next returns the next chunk, which is valid until the following call, or
// io.EOF after the last one. It returns the reader's error when reading
// fails.
func (c *chunker) next() ([]byte, error) {
	c.buf = c.buf[:copy(c.buf, c.buf[c.taken:])]
	c.taken = 0
	for !c.eof {
		if err := c.fill(); err != nil {
			return nil, err
		}
		if cut := c.cut(); cut > 0 {
			return c.take(cut), nil
		}
		if !c.eof {
			c.block = int(min(math.Ceil(float64(c.block)*1.3+1), maxBlock)) // parallel's sum, in its floating point
		}
	}
	if len(c.buf) == 0 {
		return nil, io.EOF
	}
	return c.take(len(c.buf)), nil
}

func (c *chunker) take(n int) []byte {
	c.taken = n
	c.offset += int64(n)
	return c.buf[:n]
}

// fill reads until buf holds a multiple of the block size, or the input
// ends.
func (c *chunker) fill() error {
	want := len(c.buf) + c.block - len(c.buf)%c.block
	if cap(c.buf) < want {
		c.buf = append(make([]byte, 0, want), c.buf...)
	}
	n, err := io.ReadFull(c.r, c.buf[len(c.buf):want])
	c.buf = c.buf[:len(c.buf)+n]
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		c.eof, err = true, nil
	}
	return err
}

// cut returns where the chunk held in buf ends: after its last whole
// record, or 0 when it holds none. Records of lines are cut at the end of
// the input too; records between separators are not, as parallel does.
func (c *chunker) cut() int {
	if c.lines > 0 {
		return afterLines(c.buf, c.lines)
	}
	if c.eof {
		return 0
	}
	i := bytes.LastIndex(c.buf, c.sep)
	if i < 0 {
		return 0
	}
	return i + c.endLen
}

// afterLines returns the length of the longest start of buf that holds a
// whole number of records of n lines.
func afterLines(buf []byte, n int) int {
	extra := bytes.Count(buf, []byte{'\n'}) % n
	end := len(buf)
	for i := 0; i <= extra; i++ {
		end = bytes.LastIndexByte(buf[:end], '\n')
		if end < 0 {
			return 0
		}
	}
	return end + 1
}

// cutter finds where the chunks of a file begin and end, as GNU parallel's
// --pipepart does: a chunk ends at the first record boundary at or after
// its start plus the block size, or at the end of the file, and the search
// for the next boundary starts a block past it. Only the bytes between a
// cut point and the boundary after it are read.
type cutter struct {
	r      io.ReaderAt
	size   int64
	block  int64
	sep    []byte
	endLen int
	start  int64 // where the next chunk starts
	buf    []byte
}

func newCutter(r io.ReaderAt, size int64, p *Pipe) *cutter {
	return &cutter{r: r, size: size, block: p.Block, sep: []byte(p.RecEnd + p.RecStart), endLen: len(p.RecEnd)}
}

// next returns where the next chunk begins and ends, or io.EOF after the
// last chunk.
func (c *cutter) next() (start, end int64, err error) {
	if c.start >= c.size {
		return 0, 0, io.EOF
	}
	// Without a boundary past the block, there is none further on: the
	// chunk goes to the end.
	end = c.size
	switch from := c.start + c.block; {
	case from >= c.size:
	case len(c.sep) == 0:
		end = from
	default:
		at, found, err := c.find(from)
		if err != nil {
			return 0, 0, err
		}
		if found {
			end = at + int64(c.endLen)
		}
	}
	start, c.start = c.start, end
	return start, end, nil
}

// findWindow is how much of the file find reads at a time.
const findWindow = 128 << 10

// find returns the offset of the first separator that starts at or after
// from, reading the file a window at a time, and whether there is one.
func (c *cutter) find(from int64) (int64, bool, error) {
	if c.buf == nil {
		c.buf = make([]byte, findWindow+len(c.sep))
	}
	kept := 0 // bytes at buf's start carried from the last window, where a separator may begin
	for base := from; ; {
		n, err := c.r.ReadAt(c.buf[kept:kept+findWindow], base+int64(kept))
		data := c.buf[:kept+n]
		if i := bytes.Index(data, c.sep); i >= 0 {
			return base + int64(i), true, nil
		}
		if err == io.EOF || n == 0 {
			return 0, false, nil
		}
		if err != nil {
			return 0, false, err
		}
		kept = min(len(c.sep)-1, len(data))
		copy(c.buf, data[len(data)-kept:])
		base += int64(len(data) - kept)
	}
}
