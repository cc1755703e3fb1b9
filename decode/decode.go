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
	"regexp"
	"strconv"
	"strings"

	json "github.com/goccy/go-json"

	"github.com/workerpool/workerpool/job"
)

// Options configure a Decoder.
type Options struct {
	// Template, when not empty, makes every item of input one task, or
	// with Args.MaxArgs or Args.Fit several items one task: the template's words
	// with GNU parallel's replacement strings replaced (see Replacements):
	// "{}" the item, "{/}" its base name, "{//}" its directory, "{.}" the
	// item without its extension, "{/.}" the base name without it, "{#}"
	// the task's number, "{%}" the number of the slot the task runs in
	// (see job.Task.SlotWords), and "{1}" to "{n}" (with the same path
	// forms, "{1/}", and "{-1}" for the last) the task's arguments one
	// by one: the values of its items, each item one value, or one per
	// source and column. A positional string past the last argument is
	// replaced by nothing, as in parallel. With none of them, the
	// arguments are appended as words of their own. The path strings
	// follow parallel's own rules, not a path library's: the base name of
	// "a/" is "" and its directory "." (see pathRules). An item longer
	// than MaxItem makes a task that reports it instead of a command.
	Template []string
	// Null, with a template, splits the input at NUL bytes rather than at
	// line ends (as find -print0 writes names), and keeps each item whole.
	Null bool
	// Pipe, with a template, cuts the input into chunks, each the stdin
	// of one task, rather than make a task of each line (see Pipe).
	Pipe *Pipe
	// Sources are the input sources of a template (see ParseSources), the
	// Reader of each file set. Each task's item is one item of every
	// source: the first source's varying slowest, or side by side for
	// linked sources. With none, the input given to New is the one source;
	// with some, it is not read.
	Sources []Source
	// Args say how items become the arguments of tasks.
	Args Args
	// Defaults are applied to every task read (job.Defaults.Apply): this
	// is where a task is admitted to the run.
	Defaults job.Defaults
	// Transfer and Return become every task's job.Task.Transfer and
	// Return: with a template, with its replacement strings filled in as
	// in the command's words ("{%}" but), and as they are otherwise.
	Transfer []string
	Return   []string
}

// Args say how the items of template mode become the arguments of tasks,
// as GNU parallel's options of the same names do.
type Args struct {
	// Link makes every one of Options.Sources linked to the one before (GNU
	// parallel's --link): the task's items go side by side, as far as the
	// longest source goes, the shorter ones starting over.
	Link bool
	// Colsep, a regular expression, splits each item into columns, each
	// one argument of the task (--colsep).
	Colsep string
	// Header takes the first item of each source as the names of its
	// columns, at tabs unless Colsep says otherwise, so that "{name}"
	// stands for the column of that name (GNU parallel's --header :).
	Header bool
	// MaxArgs, when above 0, puts up to MaxArgs items in a task (-n); the
	// task's arguments are the values of them all.
	MaxArgs int
	// Context repeats a word that holds "{}" for each of a task's items,
	// as GNU parallel does with -N and -X (see template.expand).
	Context bool
	// Fit puts in a task as many items as its command line has room for,
	// up to MaxCommandLine bytes (and MaxArgs, when set), as GNU
	// parallel's -X does. When the input ends, the items not yet in a
	// task are spread evenly over Slots tasks, as parallel spreads them
	// over its job slots.
	Fit   bool
	Slots int
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
	{"{}", "the line (with several items or columns: each of them, as words of their own)"},
	{"{/}", "its base name"},
	{"{//}", "its directory"},
	{"{.}", "the line without its extension"},
	{"{/.}", "the base name without its extension"},
	{"{#}", "the task's number, from 1"},
	{slotString, "the task's slot, from 1 to the number run at once"},
	{"{1}", "the first argument: the first input source's item, or the first column (--colsep), or item (-n, -N); {2} the second, and so on; {-1} the last"},
	{"{1/}", "with /, //, . and /.: its base name, directory, and so on"},
	{"{name}", "with --header :, the column so named (also {name/} and the rest)"},
}

// slotString stands for the number of the slot a task runs in.
const slotString = "{%}"

// Decoder reads tasks from a stream.
type Decoder struct {
	r    *bufio.Reader
	opts Options
	seq  int64
	err  error
	// skipped counts the blank lines before the first task, which
	// firstByte consumes.
	skipped int
	// colsep splits items into columns; nil for none.
	colsep *regexp.Regexp
	// tp is the template, taken apart once the header's names are known.
	tp *template
	// files are the names of the files tasks stage, taken apart likewise.
	files *fileNames
}

// New returns a Decoder reading from r. A UTF-8 byte-order mark at the
// start of the input is skipped, whatever the framing.
func New(r io.Reader, opts Options) *Decoder {
	return &Decoder{r: bufio.NewReaderSize(r, 64<<10), opts: opts}
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
	if len(d.opts.Template) > 0 {
		return d.items(ctx, out)
	}
	if err := skipBOM(d.r); err != nil {
		return err
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
func skipBOM(r *bufio.Reader) error {
	first, err := r.Peek(1)
	if err != nil || first[0] != bom[0] {
		return ignoreEOF(err)
	}
	if head, err := r.Peek(len(bom)); err != nil || string(head) != bom {
		return ignoreEOF(err)
	}
	_, err = r.Discard(len(bom))
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
	if t.Transfer == nil && t.Return == nil {
		t.Transfer, t.Return = d.opts.Transfer, d.opts.Return
	}
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

// wrap prefixes a task's error with where the task was read.
func (d *Decoder) wrap(t *job.Task, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("task %q (%s): %w", t.Identifier, t.Where, err)
}
