// Package decode turns a byte stream into tasks: a JSON array read element
// by element, NDJSON read line by line, or plain lines expanded through a
// command template. The input is never held whole: the decoder reads one
// task ahead of whoever receives them.
package decode

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	json "github.com/goccy/go-json"

	"github.com/workerpool/workerpool/internal/shorten"
	"github.com/workerpool/workerpool/job"
)

// Options configure a Decoder.
type Options struct {
	// Template, when not empty, makes every input line one task: the
	// template's words with GNU parallel's replacement strings replaced:
	// "{}" the line, "{/}" its base name, "{//}" its directory, "{.}" the
	// line without its extension, "{/.}" the base name without it, "{#}"
	// the task's number, and "{%}" the number of the slot the task runs
	// in (see job.Task.SlotWords). With none of them, the line is
	// appended as the last argument. The path strings follow parallel's
	// own rules, not a path library's: the base name of "a/" is "" and its
	// directory "." (see pathRules). A line longer than MaxItem makes a
	// task that reports it instead of a command.
	Template []string
	// Null, with a template, splits the input at NUL bytes rather than at
	// line ends (as find -print0 writes names), and keeps each item whole.
	Null bool
	// Pipe, with a template, cuts the input into chunks, each the stdin
	// of one task, rather than make a task of each line (see Pipe).
	Pipe *Pipe
	// Defaults are applied to every task read (job.Defaults.Apply): this
	// is where a task is admitted to the run.
	Defaults job.Defaults
}

// MaxItem is the most bytes an item of template mode may hold: a line
// without its line end, or with Options.Null an item without its NUL. Items
// become arguments, and no system the pool runs on takes an argument this
// long: Linux takes at most 128 KiB in one argument (MAX_ARG_STRLEN), the
// others at most 1 MiB for all the arguments and the environment together.
// A longer item is read past without being kept, so that an input without
// line ends cannot make the pool hold it whole; its task reports it.
const MaxItem = 1 << 20

// Replacement is one of the template's replacement strings (see
// Options.Template) and what it stands for.
type Replacement struct {
	String string // as written in a word of the template, e.g. "{/}"
	Means  string // what it is replaced with, e.g. "its base name"
}

// Replacements are the template's replacement strings, GNU parallel's.
var Replacements = []Replacement{
	{"{}", "the line"},
	{"{/}", "its base name"},
	{"{//}", "its directory"},
	{"{.}", "the line without its extension"},
	{"{/.}", "the base name without its extension"},
	{"{#}", "the task's number, from 1"},
	{slotString, "the task's slot, from 1 to the number run at once"},
}

// replacementStrings are the template's strings that stand for something
// of the task's: the strings of Replacements.
var replacementStrings = func() []string {
	strs := make([]string, len(Replacements))
	for i, r := range Replacements {
		strs[i] = r.String
	}
	return strs
}()

// pathStrings are the replacement strings that take the item apart as a
// path.
var pathStrings = []string{"{/}", "{//}", "{.}", "{/.}"}

// slotString stands for the number of the slot a task runs in.
const slotString = "{%}"

// Decoder reads tasks from a stream.
type Decoder struct {
	r    *bufio.Reader
	opts Options
	seq  int64
	err  error
	// placesLine reports whether the template has a replacement string;
	// without one the line is appended.
	placesLine bool
	// cutsPaths reports whether the template has one of the strings that
	// take the item apart as a path, so that they are worked out only when
	// they are used.
	cutsPaths bool
	// skipped counts the blank lines before the first task, which
	// firstByte consumes.
	skipped int
	// item holds the item of template mode being read; it is reused for
	// every item and never grows past MaxItem bytes.
	item []byte
}

// New returns a Decoder reading from r. A UTF-8 byte-order mark at the
// start of the input is skipped, whatever the framing.
func New(r io.Reader, opts Options) *Decoder {
	holds := func(strs []string) bool {
		return slices.ContainsFunc(opts.Template, func(w string) bool {
			return slices.ContainsFunc(strs, func(s string) bool { return strings.Contains(w, s) })
		})
	}
	return &Decoder{r: bufio.NewReaderSize(r, 64<<10), opts: opts, placesLine: holds(replacementStrings), cutsPaths: holds(pathStrings)}
}

// Stream reads tasks in a goroutine and sends them, numbered from 1, on the
// returned channel. A task that cannot be understood is still sent, with
// Err set, so that it gets a result. The channel is closed at the end of the
// input, when the input cannot be read any further (see Err), or when ctx is
// done. Stream must be called once.
func (d *Decoder) Stream(ctx context.Context) <-chan job.Task {
	out := make(chan job.Task)
	go func() {
		defer close(out)
		d.err = d.run(ctx, out)
	}()
	return out
}

// Err reports why reading stopped early: a *FramingError when the input's
// framing could not be read, the error from the reader otherwise. It is nil
// after a clean end of input, and valid once Stream's channel is closed.
func (d *Decoder) Err() error { return d.err }

// Count reports how many tasks were read; valid once Stream's channel is
// closed.
func (d *Decoder) Count() int64 { return d.seq }

// FramingError means the input as a whole could not be read.
type FramingError struct{ Msg string }

func (e *FramingError) Error() string { return e.Msg }

func (d *Decoder) run(ctx context.Context, out chan<- job.Task) error {
	if d.opts.Pipe != nil {
		return d.chunks(ctx, out)
	}
	if err := d.skipBOM(); err != nil {
		return err
	}
	if len(d.opts.Template) > 0 {
		return d.items(ctx, out)
	}
	first, err := d.firstByte()
	if err != nil {
		if err == io.EOF {
			return nil
		}
		return err
	}
	switch first {
	case '[':
		return d.array(ctx, out)
	case '{':
		return d.lines(ctx, out)
	}
	return &FramingError{Msg: "input is neither a JSON array nor NDJSON: it starts with " + d.describe(first)}
}

// bom is the UTF-8 byte-order mark that some Windows editors write first.
const bom = "\xef\xbb\xbf"

// skipBOM skips a byte-order mark at the start of the input. It waits for
// more than the first byte only when that byte can start the mark, so a
// short first line written by a program that then waits for its result is
// not held up.
func (d *Decoder) skipBOM() error {
	first, err := d.r.Peek(1)
	if err != nil || first[0] != bom[0] {
		return ignoreEOF(err)
	}
	if head, err := d.r.Peek(len(bom)); err != nil || string(head) != bom {
		return ignoreEOF(err)
	}
	_, err = d.r.Discard(len(bom))
	return err
}

// ignoreEOF returns err unless it is io.EOF: a short input is read on as
// usual, and ends there.
func ignoreEOF(err error) error {
	if err == io.EOF {
		return nil
	}
	return err
}

// describe names the first byte of an input that is neither framing: as a
// character when it is printable ASCII, otherwise as a byte, with a hint
// for UTF-16 text.
func (d *Decoder) describe(first byte) string {
	if first > ' ' && first <= '~' {
		return strconv.QuoteRune(rune(first))
	}
	desc := fmt.Sprintf("byte 0x%02x", first)
	if first == 0xff || first == 0xfe {
		if head, _ := d.r.Peek(2); string(head) == "\xff\xfe" || string(head) == "\xfe\xff" {
			desc += ", a UTF-16 byte-order mark: convert the input to UTF-8 (iconv -f UTF-16 -t UTF-8)"
		}
	}
	return desc
}

// firstByte peeks at the first byte that is not white space.
func (d *Decoder) firstByte() (byte, error) {
	for {
		b, err := d.r.ReadByte()
		if err != nil {
			return 0, err
		}
		if !isSpace(b) {
			return b, d.r.UnreadByte()
		}
		if b == '\n' {
			d.skipped++
		}
	}
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

// send delivers t, with the run's defaults applied, unless ctx is done
// first. A ctx already done wins: the task is not offered, so that no task
// is sent after a stop, whichever case a select would pick.
func (d *Decoder) send(ctx context.Context, out chan<- job.Task, t job.Task) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	d.opts.Defaults.Apply(&t)
	select {
	case out <- t:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// array reads a JSON array element by element.
func (d *Decoder) array(ctx context.Context, out chan<- job.Task) error {
	dec := json.NewDecoder(d.r)
	if _, err := dec.Token(); err != nil {
		return d.readError(err)
	}
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return d.readError(err)
		}
		d.seq++
		t := job.Task{Seq: d.seq, Where: "element " + strconv.FormatInt(d.seq, 10)}
		t.Err = d.wrap(&t, parseTask(raw, &t))
		if err := d.send(ctx, out, t); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return d.readError(err)
	}
	return d.trailing(io.MultiReader(dec.Buffered(), d.r))
}

// trailing reads what follows the array to the end: white space only, or
// the tasks after it would be lost without a word.
func (d *Decoder) trailing(r io.Reader) error {
	br := bufio.NewReader(r)
	for {
		b, err := br.ReadByte()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if !isSpace(b) {
			return &FramingError{Msg: fmt.Sprintf("the input goes on after the JSON array of %d tasks ends", d.seq)}
		}
	}
}

// readError turns an error from the array decoder into the decoder's error:
// the reader's own failure as it is, anything else as a framing error.
func (d *Decoder) readError(err error) error {
	var syntax *json.SyntaxError
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &FramingError{Msg: fmt.Sprintf("the JSON array ends early, after %d tasks", d.seq)}
	}
	if errors.As(err, &syntax) || strings.HasPrefix(err.Error(), "json:") {
		return &FramingError{Msg: fmt.Sprintf("the JSON array cannot be read after %d tasks: %s", d.seq, jsonError(err))}
	}
	return err
}

// lines reads NDJSON a line at a time, of any length, and makes a task of
// each line that is not blank.
func (d *Decoder) lines(ctx context.Context, out chan<- job.Task) error {
	for lineNo := 1 + d.skipped; ; lineNo++ {
		line, err := d.r.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return err
		}
		if text := bytes.TrimRight(line, "\r\n"); len(bytes.TrimSpace(text)) > 0 {
			d.seq++
			t := job.Task{Seq: d.seq, Where: "line " + strconv.Itoa(lineNo)}
			t.Err = d.wrap(&t, d.jsonTask(text, &t))
			if err := d.send(ctx, out, t); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
	}
}

func (d *Decoder) jsonTask(line []byte, t *job.Task) error {
	err := parseTask(line, t)
	if err != nil && bytes.HasPrefix(bytes.TrimSpace(line), []byte("{")) && !json.Valid(line) {
		err = fmt.Errorf("%w (NDJSON takes one task per line; jq -c writes that)", err)
	}
	return err
}

// items reads the input of template mode an item at a time: a line, or
// with Options.Null a NUL-separated item, and makes a task of each line
// that is not blank and each item that is not empty. An item longer than
// MaxItem is read past, not kept: its task holds an error, no command, and
// as identifier the item's first bytes.
func (d *Decoder) items(ctx context.Context, out chan<- job.Task) error {
	delim, cut, unit := byte('\n'), "\r", "line"
	if d.opts.Null {
		delim, cut, unit = 0, "", "item"
	}
	for n := 1; ; n++ {
		item, long, err := d.readItem(delim, cut)
		if err != nil && err != io.EOF {
			return err
		}
		blank := len(item) == 0
		if !d.opts.Null {
			blank = len(bytes.TrimSpace(item)) == 0
		}
		if long || !blank {
			d.seq++
			t := job.Task{Seq: d.seq, Where: unit + " " + strconv.Itoa(n)}
			if long {
				t.Identifier = shorten.Text(item, 40)
				t.Err = d.wrap(&t, fmt.Errorf("the %s is longer than %d MiB: items become arguments, which cannot be that long", unit, MaxItem>>20))
			} else {
				t.Err = d.wrap(&t, d.templateTask(item, &t))
			}
			if err := d.send(ctx, out, t); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
	}
}

// readItem reads to the next delim, or to the end of the input, and returns
// what came before it without the bytes of cut at its end. When that is
// longer than MaxItem, long is true and item holds only its first MaxItem
// bytes: the rest is read and dropped as it comes. err is io.EOF when the
// input ended before a delim. item is valid until the next call.
func (d *Decoder) readItem(delim byte, cut string) (item []byte, long bool, err error) {
	d.item = d.item[:0]
	for {
		chunk, err := d.r.ReadSlice(delim)
		if err == nil {
			chunk = chunk[:len(chunk)-1]
		}
		keep := min(len(chunk), MaxItem-len(d.item))
		d.item = append(d.item, chunk[:keep]...)
		// Past MaxItem, only bytes of cut may follow: they are not counted.
		long = long || len(bytes.TrimLeft(chunk[keep:], cut)) > 0
		if err == bufio.ErrBufferFull {
			continue
		}
		if long {
			return d.item, true, err
		}
		return bytes.TrimRight(d.item, cut), false, err
	}
}

func (d *Decoder) templateTask(line []byte, t *job.Task) error {
	text := string(line)
	var base, dir, noExt, baseNoExt string
	if d.cutsPaths {
		base, dir, noExt = hostPaths.base(text), hostPaths.dir(text), hostPaths.noExt(text)
		baseNoExt = hostPaths.noExt(base)
	}
	fill := strings.NewReplacer( // longest first where strings share a start
		"{//}", dir, "{/.}", baseNoExt, "{/}", base,
		"{.}", noExt, "{#}", strconv.FormatInt(t.Seq, 10), "{}", text)
	words := make([]string, 0, len(d.opts.Template)+1)
	var slotted [][]string
	for i, w := range d.opts.Template {
		parts := strings.Split(w, slotString)
		for j := range parts {
			parts[j] = fill.Replace(parts[j])
		}
		if len(parts) > 1 {
			if slotted == nil {
				slotted = make([][]string, len(d.opts.Template))
			}
			slotted[i] = parts
		}
		words = append(words, strings.Join(parts, "1")) // slot 1, until the pool says
	}
	if !d.placesLine && d.opts.Pipe == nil {
		words = append(words, text)
	}
	t.Identifier, t.Command, t.Args, t.SlotWords = text, words[0], words[1:], slotted
	return checkNUL(t)
}

// wrap prefixes a task's error with where the task was read.
func (d *Decoder) wrap(t *job.Task, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("task %q (%s): %w", t.Identifier, t.Where, err)
}
