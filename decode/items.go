package decode

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/workerpool/workerpool/job"
)

// items reads the input of template mode and makes tasks of its items, as
// Options.Template says. Every item read is in exactly one task; an item
// that cannot be an argument (longer than MaxItem) makes a task of its own
// that reports it.
func (d *Decoder) items(ctx context.Context, out chan<- job.Task) error {
	recs, names, err := d.records()
	if err != nil {
		return err
	}
	d.tp = parseTemplate(d.opts.Template, names)
	d.files = parseFileNames(d.opts, names)
	g := &grouper{d: d}
	if d.opts.Args.Fit {
		g.z = &sizer{tp: d.tp, context: d.opts.Args.Context, slotDigits: len(fmt.Sprint(max(d.opts.Args.Slots, 1)))}
	}
	for {
		rec, err := recs.next()
		if err != nil {
			if ferr := g.flush(ctx, out, true); ferr != nil {
				return ferr
			}
			return ignoreEOF(err)
		}
		if err := g.add(ctx, out, rec); err != nil {
			return err
		}
	}
}

// records returns the reader of the records of the input sources, and the
// columns' names of the header (Args.Header): the first record of each
// source, each name standing for its column's number, from 1, counted over
// the sources in order.
func (d *Decoder) records() (recordReader, map[string]int, error) {
	colsep, err := compileColsep(d.opts.Args.Colsep, d.opts.Args.Header)
	if err != nil {
		return nil, nil, &FramingError{Msg: err.Error()}
	}
	d.colsep = colsep
	var readers []recordReader
	if len(d.opts.Sources) == 0 {
		readers = append(readers, &itemReader{d: d, r: d.newItemStream(d.r)})
	}
	for _, src := range d.opts.Sources {
		if src.Values != nil {
			readers = append(readers, &valueReader{d: d, values: src.Values})
			continue
		}
		of := " of " + src.Path
		if src.Path == "-" {
			of = " of stdin"
		}
		readers = append(readers, &itemReader{d: d, r: d.newItemStream(bufio.NewReaderSize(src.Reader, 64<<10)), of: of})
	}
	names := map[string]int{}
	if d.opts.Args.Header {
		col := 0
		for _, r := range readers {
			rec, err := r.next()
			if err == io.EOF {
				continue
			}
			if err == nil && rec.err != nil {
				err = &FramingError{Msg: fmt.Sprintf("the header, %s: %v", rec.where, rec.err)}
			}
			if err != nil {
				return nil, nil, err
			}
			for _, name := range rec.values {
				col++
				if _, dup := names[name]; !dup {
					names[name] = col
				}
			}
		}
	}
	if len(readers) == 1 {
		return readers[0], names, nil
	}
	r, err := combine(readers, d.opts.Sources, d.opts.Args.Link)
	return r, names, err
}

// grouper puts records into tasks: one record a task, or as many as
// Args.MaxArgs and Args.Fit allow.
type grouper struct {
	d *Decoder
	z *sizer // with Fit
	// pending are the records of the task being filled, and args their
	// values.
	pending []record
	args    []string
	spread  bool // the last records were spread over the slots
}

// most returns the most records a task takes; 0 means as many as fit.
func (g *grouper) most() int {
	switch {
	case g.d.opts.Args.MaxArgs > 0:
		return g.d.opts.Args.MaxArgs
	case g.d.opts.Args.Fit:
		return 0
	}
	return 1
}

// add puts rec in the task being filled, after sending that task when rec
// does not fit in it, and sends it once it is full.
func (g *grouper) add(ctx context.Context, out chan<- job.Task, rec record) error {
	if rec.err != nil {
		if err := g.flush(ctx, out, false); err != nil {
			return err
		}
		return g.sendBad(ctx, out, rec)
	}
	had := len(g.args)
	g.args = append(g.args, rec.values...)
	if g.z != nil {
		for _, v := range rec.values {
			g.z.add(v)
		}
		if len(g.pending) > 0 && g.z.size(g.args, g.d.seq+1) > MaxCommandLine {
			g.args = g.args[:had]
			if err := g.flush(ctx, out, false); err != nil {
				return err
			}
			g.args = append(g.args, rec.values...)
			for _, v := range rec.values {
				g.z.add(v)
			}
		}
	}
	g.pending = append(g.pending, rec)
	if most := g.most(); most > 0 && len(g.pending) >= most {
		return g.flush(ctx, out, false)
	}
	return nil
}

// flush sends the task being filled, if it holds a record. At the end of
// the input (end) with Fit, the records not yet sent are spread evenly
// over Args.Slots tasks the first time, as GNU parallel spreads them
// over its job slots.
func (g *grouper) flush(ctx context.Context, out chan<- job.Task, end bool) error {
	recs := g.pending
	g.pending, g.args = nil, nil
	if g.z != nil {
		g.z.reset()
	}
	if len(recs) == 0 {
		return nil
	}
	per := len(recs)
	if end && g.d.opts.Args.Fit && !g.spread && g.d.opts.Args.Slots > 1 {
		g.spread = true
		per = (len(recs) + g.d.opts.Args.Slots - 1) / g.d.opts.Args.Slots
	}
	for len(recs) > 0 {
		n := min(per, len(recs))
		if err := g.send(ctx, out, recs[:n]); err != nil {
			return err
		}
		recs = recs[n:]
	}
	return nil
}

// send makes a task of recs: its arguments are their values, its
// identifier the arguments joined by spaces (the item, for a task of one
// item of one value), as GNU parallel's --tag shows them.
func (g *grouper) send(ctx context.Context, out chan<- job.Task, recs []record) error {
	var args []string
	inputs := make([][]string, 0, len(recs))
	for _, r := range recs {
		args = append(args, r.values...)
		inputs = append(inputs, r.values)
	}
	g.d.seq++
	t := job.Task{Seq: g.d.seq, Where: recs[0].where, Identifier: strings.Join(args, " "), Inputs: inputs}
	t.Err = g.d.wrap(&t, g.d.templateTask(args, &t))
	return g.d.send(ctx, out, t)
}

// templateTask sets the command of t, whose Seq is set: the template's
// words for args (none for a chunk of --pipe, whose "{}" stands for
// nothing).
func (d *Decoder) templateTask(args []string, t *job.Task) error {
	if d.tp == nil {
		d.tp, d.files = parseTemplate(d.opts.Template, nil), parseFileNames(d.opts, nil)
	}
	words, slotted := d.tp.expand(args, t.Seq, d.opts.Args.Context)
	if len(words) == 0 {
		return errNoCommand
	}
	t.Command, t.Args, t.SlotWords = words[0], words[1:], slotted
	t.Transfer, t.Return = d.files.expand(args, t.Seq)
	return checkNUL(t)
}

// errNoCommand is the error of a task whose command, a word made only of
// positional replacement strings ({2}), stands for arguments it does not
// have: such a word is left out, and leaves no command.
var errNoCommand = errors.New("no command: the first word of the command stands for an argument this task does not have")

// sendBad makes a task that reports an item that cannot be an argument.
func (g *grouper) sendBad(ctx context.Context, out chan<- job.Task, rec record) error {
	g.d.seq++
	t := job.Task{Seq: g.d.seq, Where: rec.where, Identifier: rec.values[0]}
	t.Err = g.d.wrap(&t, rec.err)
	return g.d.send(ctx, out, t)
}
