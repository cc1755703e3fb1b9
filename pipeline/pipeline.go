// Package pipeline is one run of workerpool: it reads tasks (decode), runs
// them (dispatch) and writes one result for each (encode), and owns what
// joins the stages: where input and output are, the order of results, the
// resume journal, progress and events, and stopping.
//
// A task travels from the input to the output like this: the decoder
// reads it (decode.Decoder.Stream); admit drops it if the journal already
// records it and, when order is kept, holds it until it is within the
// sequencer's window; the pool runs it (dispatch.Pool.Run) and tells the
// run's Observe of its start and finish; the sequencer puts its result in
// turn; and write, the one goroutine that writes the output, encodes it.
package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/workerpool/workerpool/decode"
	"github.com/workerpool/workerpool/dispatch"
	"github.com/workerpool/workerpool/encode"
	"github.com/workerpool/workerpool/job"
	"github.com/workerpool/workerpool/report"
)

// Config is what a run is asked to do.
type Config struct {
	// Inline holds tasks given on the command line; Infile names a file of
	// tasks ("-" is stdin). With neither, tasks come from stdin.
	Inline, Infile string
	// InfileFlag is the flag that named Infile, for messages; empty means
	// --infile.
	InfileFlag string
	// Template, when not empty, makes each input line a task (see
	// decode.Options).
	Template []string
	// Null splits template input at NUL bytes (see decode.Options).
	Null bool
	// Pipe, with a template, cuts the input into chunks, each the stdin
	// of one task (see decode.Pipe).
	Pipe *decode.Pipe
	// Sources are the input sources of the template given after it (:::,
	// ::::); with some, stdin is read only when one of them names it.
	Sources []decode.Source
	// Args say how items become the arguments of tasks (see decode.Args).
	Args decode.Args
	// Transfer and Return name each task's files to stage on the host
	// that runs it (see decode.Options).
	Transfer, Return []string
	// Outfile, when set, receives the results instead of stdout.
	Outfile string
	// Report, when set, is the file that receives an HTML report of the
	// run (see package report) once it ends, however it ends: drawn from
	// every result written.
	Report string

	// Mode is the form of the output (see encode.Mode); nil means the
	// classic array, encode.Array.
	Mode     encode.Mode
	Ordered  bool // results in input order in a Mode that does not always keep it
	Binary   bool // result_body and stderr base64-encoded
	Events   bool // NDJSON lines for each task's start and retries
	Resume   bool // skip the tasks Outfile (in NDJSON), or Joblog, records as done
	DryRun   bool // print how each task would run; run none
	Progress bool // a live progress line on Stderr, when it is a terminal

	// Executor runs the tasks; it is required, but for DryRun. When it is
	// a dispatch.Slots, its slots decide how many tasks run at once.
	Executor dispatch.Executor
	// Resolve, for DryRun, returns the program a task would run, or why it
	// cannot run (see dispatch.Local.Resolve); nil takes every command as
	// it is, as hosts that find it on their own PATH do.
	Resolve func(*job.Task) (string, error)

	// Memory is how much memory the tasks run on this machine may reserve
	// at once (their "memory"); 0 is no bound. Hosts say their own.
	Memory int64
	// Fit, for DryRun, says where a task's request could run, or why
	// nowhere; nil says nothing of it.
	Fit func(job.Request) (string, error)

	Workers  int // tasks at once; 0 means one per CPU core
	Retries  int
	FailFast bool // halt soon after the first failure, when Halt is never
	// Gates hold back the starts of tasks (see dispatch.Options.Gates).
	Gates dispatch.Gates
	// Halt says when the run stops early (GNU parallel's --halt).
	Halt Halt
	// LineBuffer, in a mode that writes the tasks' outputs apart from
	// their results (encode.Raw), writes each line of them as it comes,
	// rather than each output whole as its task ends: tasks run by an
	// executor that tells their lines (job.Task.Lines) have them written
	// so, the others whole at their end. Results are then not Ordered.
	LineBuffer bool
	// Shuffle runs the tasks in a random order: all are read first. With
	// Ordered, results are written in the order the tasks were started.
	Shuffle bool
	// Joblog, when set, is the file that gets a line in GNU parallel's
	// joblog format for each task that was attempted, as it ends. With
	// Resume or ResumeFailed, the tasks it records are not run again:
	// matched by Seq, those that ended at all with Resume, those that
	// exited 0 with ResumeFailed; lines are appended to it.
	Joblog       string
	ResumeFailed bool
	// Results, when set, is the directory (or the path template, with
	// {} or {#} in it) that receives each attempted task's stdout,
	// stderr, seq and result, as GNU parallel's --results lays them out
	// (see resultsDir).
	Results string
	// Defaults are the time limit and limits of every task that sets none
	// of its own. They are applied as each task is read, before the
	// executor or the dry run sees it.
	Defaults job.Defaults
	// TempDir holds the bytes of the results that wait for their turn,
	// past the few KiB of each kept in memory: the directory the executor
	// keeps its outputs in (see dispatch.ProcessOptions). Empty means
	// os.TempDir().
	TempDir string
	// ChildStderr says what becomes of the tasks' stderr: the results
	// leave out a stderr that was not captured.
	ChildStderr dispatch.StderrMode
	// Stderr receives the progress line, and the tasks' stderr in a mode
	// that writes it apart from the results (encode.Raw); nil means
	// os.Stderr.
	Stderr io.Writer
	// Log receives what the run logs (--verbose); nil means nowhere.
	Log *slog.Logger
}

func (c *Config) decodeOptions() decode.Options {
	return decode.Options{Template: c.Template, Null: c.Null, Pipe: c.Pipe, Sources: c.Sources, Args: c.Args, Defaults: c.Defaults,
		Transfer: c.Transfer, Return: c.Return}
}

// mode is the form of the output.
func (c *Config) mode() encode.Mode {
	if c.Mode == nil {
		return encode.Array{}
	}
	return c.Mode
}

// ordered reports whether results are written in input order: always when
// the mode keeps it, otherwise with Ordered.
func (c *Config) ordered() bool { return c.mode().Traits().InOrder || c.Ordered }

// Summary counts what a run did.
type Summary struct {
	Tasks    int64 // read from the input
	Recorded int64 // skipped because the journal records them as done
	Results  int64 // written
	Failed   int64 // written, and failed
	// HaltedOnSuccess says that the run halted when enough tasks
	// succeeded (Halt.Success): it succeeded, whatever failed.
	HaltedOnSuccess bool
}

// Run reads tasks from stdin (or where cfg says), runs them and writes their
// results to stdout (or where cfg says); every task read gets exactly one
// result. It returns when every result is written, or the run is stopped:
// when ctx is done (see SignalContext) it stops reading, stops the running
// tasks, and still writes every result. A failed task is data, not an
// error; the error returned is a failure of the run itself: ctx's cause
// when it was stopped so, ErrReaderGone when nobody reads the results any
// more, or why the input or output failed.
func Run(ctx context.Context, cfg Config, stdin io.Reader, stdout io.Writer) (Summary, error) {
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Executor == nil && !cfg.DryRun {
		return Summary{}, errors.New("no executor to run the tasks")
	}
	files, err := cfg.open(ctx, stdin, stdout)
	if err != nil {
		return Summary{}, err
	}
	defer files.closeInput()
	r := &run{cfg: &cfg, journal: files.journal, joblog: files.joblog, results: files.results, stop: newStopper(ctx), log: cfg.Log}
	r.halt.Halt = cfg.halt()
	if files.report != nil {
		r.report = &report.Builder{}
	}
	defer r.stop.release()
	r.sources = files.sources
	if cfg.DryRun {
		err = r.dryRun(files.input, files.out.w)
	} else {
		err = r.run(files.input, files.out.w)
	}
	// What was written is kept, whole, unless writing it failed.
	var werr *writeError
	if ferr := files.out.finish(!errors.As(err, &werr)); ferr != nil && err == nil {
		err = ferr
	}
	if files.report != nil {
		if rerr := r.writeReport(files.report); rerr != nil && err == nil {
			err = rerr
		}
	}
	if files.joblog != nil {
		if jerr := files.joblog.close(); jerr != nil && err == nil {
			err = jerr
		}
	}
	if h := r.stop.halted(); h != nil && h.halt.Success {
		r.sum.HaltedOnSuccess = true
	}
	return r.sum, err
}

// writeReport writes the report of the results written to out, and puts
// it in place.
func (r *run) writeReport(out *output) error {
	w := bufio.NewWriter(out.w)
	err := r.report.Write(w, report.Options{})
	if err == nil {
		err = w.Flush()
	}
	if ferr := out.finish(err == nil); err != nil {
		return fmt.Errorf("cannot write --report: %w", err)
	} else if ferr != nil {
		return ferr
	}
	return nil
}

// files are what a run reads and writes.
type files struct {
	input      io.Reader
	closeInput func()
	sources    []decode.Source // with their readers, for Config.Sources
	out        *output
	journal    encode.Journal // with Resume
	report     *output        // with Report
	joblog     *joblog        // with Joblog
	results    *resultsDir    // with Results
}

// open opens the input, the output and, to resume, the journal, or says
// why it cannot. Opening a FIFO, or reading a journal from one, can block:
// when ctx is done first, open returns at once with ctx's cause, leaving
// the blocked open behind.
func (c *Config) open(ctx context.Context, stdin io.Reader, stdout io.Writer) (*files, error) {
	type opened struct {
		f   *files
		err error
	}
	done := make(chan opened, 1)
	go func() {
		f, err := c.openFiles(stdin, stdout)
		done <- opened{f, err}
	}()
	select {
	case o := <-done:
		return o.f, o.err
	case <-ctx.Done():
		return nil, abortError(context.Cause(ctx))
	}
}

func (c *Config) openFiles(stdin io.Reader, stdout io.Writer) (*files, error) {
	input, closeInput, err := c.openInput(stdin)
	if err != nil {
		return nil, err
	}
	if sameFile(input, c.Outfile) {
		closeInput()
		return nil, fmt.Errorf("the input and --outfile %s are the same file", c.Outfile)
	}
	f := &files{input: input, closeInput: closeInput}
	if len(c.Sources) > 0 {
		sources, closeSources, err := c.openSources(stdin)
		if err != nil {
			closeInput()
			return nil, err
		}
		closeFile := closeInput
		closeInput = func() { closeFile(); closeSources() }
		f.sources, f.closeInput = sources, closeInput
	}
	if (c.Resume || c.ResumeFailed) && c.Outfile != "" && c.mode().Traits().JSON && c.mode().Traits().Appends {
		f.out, f.journal, err = c.openJournal()
	} else {
		f.out, err = c.openOutput(stdout)
	}
	if err != nil {
		closeInput()
		return nil, err
	}
	if c.Report != "" && !c.DryRun {
		if f.report, err = c.openReport(); err != nil {
			closeInput()
			f.out.finish(false)
			return nil, err
		}
	}
	if c.Joblog != "" && !c.DryRun {
		if f.joblog, err = openJoblog(c.Joblog, c.Resume || c.ResumeFailed, c.ResumeFailed); err != nil {
			f.close()
			return nil, err
		}
	}
	if c.Results != "" && !c.DryRun {
		if f.results, err = c.newResultsDir(c.Results); err != nil {
			f.close()
			return nil, err
		}
	}
	return f, nil
}

// close closes what openFiles opened, keeping nothing it would put in
// place.
func (f *files) close() {
	f.closeInput()
	f.out.finish(false)
	if f.report != nil {
		f.report.finish(false)
	}
	if f.joblog != nil {
		f.joblog.close()
	}
}

// halt is the run's Halt: FailFast's when it is never.
func (c *Config) halt() Halt {
	if c.Halt.When == HaltNever && c.FailFast {
		return Halt{When: HaltSoon, Count: 1}
	}
	return c.Halt
}

// run is one call of Run.
type run struct {
	cfg      *Config
	journal  encode.Journal
	joblog   *joblog     // nil without Joblog
	results  *resultsDir // nil without Results
	halt     halter
	stop     *stopper
	log      *slog.Logger
	seq      *sequencer     // nil unless results are ordered
	lines    chan taskLine  // to the writer; nil without LineBuffer
	tellers  sync.Map       // with LineBuffer, the *taskLines of each task under way, by seq
	progress *progress      // nil unless a progress line is drawn
	events   chan job.Event // to the writer; nil unless events are written
	sum      Summary
	cost     cost
	report   *report.Builder // of the results written; nil without Report
	sources  []decode.Source // Config.Sources with their readers set
}

// decodeOptions are the decoder's options for this run: the sources' files
// open, read until the intake closes (see decode.Interruptible), and -X's
// tasks spread over the pool's workers.
func (r *run) decodeOptions(workers int) decode.Options {
	opts := r.cfg.decodeOptions()
	opts.Sources = make([]decode.Source, len(r.sources))
	for i, src := range r.sources {
		if src.Reader != nil {
			src.Reader = decode.Interruptible(src.Reader, r.stop.intake.Done())
		}
		opts.Sources[i] = src
	}
	opts.Args.Slots = workers
	return opts
}

// run streams the tasks in input through the pool to out.
func (r *run) run(input io.Reader, out io.Writer) error {
	pool := dispatch.NewPool(r.cfg.Executor, dispatch.Options{Workers: r.cfg.Workers, Memory: r.cfg.Memory, Retries: r.cfg.Retries, Observer: r, Log: r.log, Gates: r.cfg.Gates})
	if r.cfg.ordered() {
		// The reorder buffer holds at most this many results.
		r.seq = newSequencer(max(128, 16*pool.Workers()), r.cfg.TempDir)
	}
	if r.cfg.Events {
		r.events = make(chan job.Event)
	}
	if r.cfg.LineBuffer {
		r.lines = make(chan taskLine)
	}
	start := time.Now()
	if r.cfg.Progress {
		r.progress = newProgress(r.cfg.Stderr, r.memoryCapacity())
		if r.progress != nil {
			defer func() { r.progress.finish(r.cost.summary(r.sum, time.Since(start))) }()
			if reopen := r.cfg.reopenInput(); reopen != nil {
				r.progress.countTasks(r.stop.intake, reopen, r.cfg.decodeOptions())
			}
		}
	}
	defer watchReader(out, func() { r.stop.stop(ErrReaderGone) })()

	// Once the intake closes, reads fail and the decoder ends after the
	// tasks it has already read, each of which gets a result: it is never
	// cancelled.
	dec := decode.New(decode.Interruptible(input, r.stop.intake.Done()), r.decodeOptions(pool.Workers()))
	results := pool.Run(r.stop.tasks, r.stop.intake, r.admit(dec.Stream(context.Background())))
	if r.seq != nil {
		results = r.seq.order(results)
	}
	r.log.Info("pool started", "workers", pool.Workers(), "ordered", r.cfg.ordered(), "output", r.cfg.mode().String())
	r.write(out, results)
	r.sum.Tasks = dec.Count()
	r.log.Info("done", append([]any{"tasks", r.sum.Tasks, "written", r.sum.Results, "failed", r.sum.Failed,
		"elapsed", time.Since(start).Round(time.Millisecond), "max_rss_kb", dispatch.PeakMemory()}, r.cost.attrs()...)...)
	return r.end(dec.Err())
}

// memoryCapacity is the memory the tasks may reserve, for the progress
// line: this machine's, or, with hosts, theirs as far as they have said
// (the executor's Memory method); 0 when not known.
func (r *run) memoryCapacity() func() int64 {
	if m, ok := r.cfg.Executor.(interface{ Memory() int64 }); ok {
		return m.Memory
	}
	return func() int64 { return r.cfg.Memory }
}

// admit passes tasks on to the pool, and closes its channel after tasks is
// closed. A task the journal records as done is dropped: it was not read
// for running, and has nothing to write. When order is kept, a task waits
// until it is within the sequencer's window. Every other task is passed on,
// even after a stop: the pool answers it.
func (r *run) admit(tasks <-chan job.Task) <-chan job.Task {
	if r.cfg.Shuffle || r.halt.Percent > 0 {
		tasks = r.gather(tasks)
	}
	if r.journal == nil && r.seq == nil && !r.joblog.resumes() && r.lines == nil {
		return tasks
	}
	out := make(chan job.Task)
	go func() {
		defer close(out)
		for t := range tasks {
			if t.Err == nil && (r.joblog.done(t.Seq) || r.journal.Take(t.Identifier)) {
				r.log.Debug("already recorded", "seq", t.Seq, "identifier", t.Identifier)
				r.sum.Recorded++
				if r.seq != nil {
					r.seq.skip(t.Seq)
				}
				if r.progress != nil {
					r.progress.recorded()
				}
				continue
			}
			if r.seq != nil {
				r.seq.admit(r.stop.intake.Done(), t.Seq)
			}
			if r.lines != nil {
				teller := &taskLines{id: t.Identifier, to: r.lines}
				r.tellers.Store(t.Seq, teller)
				t.Lines = teller
			}
			out <- t
		}
	}()
	return out
}

// gather receives every task before it sends the first on, in a random
// order with Shuffle, and tells the halter how many there are; it closes
// the returned channel after the last. With Shuffle, results kept in order
// by Ordered come in the order the tasks are sent in; those of a mode that
// is always in input order (the array) still come in input order, and the
// sequencer may then hold any number of them (spilled to its file), as
// any task may be sent first.
func (r *run) gather(tasks <-chan job.Task) <-chan job.Task {
	out := make(chan job.Task)
	go func() {
		defer close(out)
		var all []job.Task
		for t := range tasks {
			all = append(all, t)
		}
		r.halt.setTotal(int64(len(all)))
		if r.cfg.Shuffle {
			rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
			switch {
			case r.seq == nil:
			case r.cfg.mode().Traits().InOrder:
				r.seq.window = math.MaxInt64 / 2
			default:
				r.seq.reorder(all)
			}
		}
		for _, t := range all {
			out <- t
		}
	}()
	return out
}

// Observe is told of every task's life by the pool: it tells the progress
// line, hands events to the writer, logs the tasks that end in the joblog
// and --results, and stops the run when its Halt says so.
func (r *run) Observe(ev job.Event) {
	if r.progress != nil {
		r.progress.Observe(ev)
	}
	if ev.Result != nil {
		r.cost.add(ev.Task, ev.Result)
	}
	if ev.Kind != job.Finished && r.events != nil {
		r.events <- ev // the result line itself tells of the finish
	}
	if ev.Kind != job.Finished {
		return
	}
	if ev.Attempt > 0 {
		if err := r.joblog.add(ev.Task, ev.Result); err != nil {
			r.stop.stop(err)
		}
		if err := r.results.add(ev.Task, ev.Result); err != nil {
			r.stop.stop(err)
		}
	}
	if cause := r.halt.finished(ev.Result); cause != nil {
		r.stop.stop(cause)
	}
}

// write is the one goroutine that writes out: the results in the order it
// receives them, and the events as they happen. An event is handed over
// before its task goes on, so it is written before the task's result. On a
// write error it stops the run, then goes on receiving, and dropping, until
// results is closed; the pool has then finished and no event can come.
func (r *run) write(out io.Writer, results <-chan job.Result) {
	enc := encode.NewEncoder(out, encode.Options{Mode: r.cfg.mode(), Binary: r.cfg.Binary, Events: r.cfg.Events,
		RawStderr: r.cfg.Stderr, OmitStderr: r.cfg.ChildStderr != dispatch.StderrCapture})
	// Results on the terminal the progress line is drawn on make way for
	// it: on stdout, when it is that terminal, and on stderr, which is.
	sameTerminal := r.progress != nil && (isTerminal(out) || r.cfg.mode().Traits().Stderr)
	failed := false
	fail := func(err error) {
		if err != nil && !failed {
			failed = true
			r.stop.stop(&writeError{err})
		}
	}
	for results != nil {
		select {
		case ev := <-r.events:
			if !failed {
				fail(enc.Event(ev))
			}
		case l := <-r.lines:
			if !failed {
				fail(r.writeLine(enc, l, sameTerminal))
			}
		case res, ok := <-results:
			switch {
			case !ok:
				results = nil
			case failed:
				res.Close()
			default:
				if r.report != nil {
					r.report.AddResult(&res)
				}
				if err := r.writeResult(enc, &res, sameTerminal); err != nil {
					fail(err)
					continue
				}
				r.sum.Results++
				if res.Failed() {
					r.sum.Failed++
				}
			}
		}
	}
	if !failed {
		fail(enc.Close())
	}
}

// writeLine writes a line of a running task's output, out of the progress
// line's way when both are on one terminal.
func (r *run) writeLine(enc *encode.Encoder, l taskLine, sameTerminal bool) error {
	if sameTerminal {
		return r.progress.around(func() error { return enc.Line(l.id, l.stderr, l.line) })
	}
	return enc.Line(l.id, l.stderr, l.line)
}

// writeResult writes res, out of the progress line's way when both are
// on one terminal. With LineBuffer, the outputs of a task whose lines were
// written as they came are not written again.
func (r *run) writeResult(enc *encode.Encoder, res *job.Result, sameTerminal bool) error {
	if teller, ok := r.tellers.LoadAndDelete(res.Seq); ok && teller.(*taskLines).told.Load() {
		res.Close()
		res.Stdout, res.Stderr = job.Output{}, job.Output{}
	}
	if sameTerminal {
		return r.progress.around(func() error { return enc.Result(res) })
	}
	return enc.Result(res)
}

// end decides how the run ends: a stop first, then an input that could not
// be read.
func (r *run) end(readErr error) error {
	if cause := r.stop.cause(); cause != nil {
		return abortError(cause)
	}
	if readErr != nil && !errors.Is(readErr, decode.ErrInterrupted) {
		return fmt.Errorf("cannot read tasks: %w", readErr)
	}
	return nil
}

// dryRun prints how each task would run, and runs none.
func (r *run) dryRun(input io.Reader, out io.Writer) error {
	resolve := r.cfg.Resolve
	if resolve == nil {
		resolve = func(*job.Task) (string, error) { return "", nil }
	}
	workers := r.cfg.Workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	dec := decode.New(input, r.decodeOptions(workers))
	tasks := dec.Stream(r.stop.intake)
	bad, werr := encode.WritePlan(out, tasks, resolve, r.cfg.Fit)
	if werr != nil {
		r.stop.stop(&writeError{werr})
		for range tasks {
		}
	}
	r.sum.Tasks, r.sum.Failed = dec.Count(), bad
	return r.end(dec.Err())
}

// taskLine is one line of a running task's output, on its way to the
// writer (LineBuffer).
type taskLine struct {
	id     string
	stderr bool
	line   []byte
}

// taskLines hands the lines of one task's outputs to the writer, and
// tells whether it has.
type taskLines struct {
	id   string
	to   chan<- taskLine
	told atomic.Bool
}

// Line hands a copy of line to the writer, and waits until it has it: the
// task's result, sent after its last line, is written after it.
func (t *taskLines) Line(stderr bool, line []byte) {
	t.told.Store(true)
	t.to <- taskLine{id: t.id, stderr: stderr, line: bytes.Clone(line)}
}
