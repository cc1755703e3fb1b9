// Command workerpool runs child processes in parallel and reports one JSON
// result per task.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"github.com/posener/complete"
	"github.com/willabides/kongplete"
	"golang.org/x/term"

	"github.com/workerpool/workerpool/decode"
	"github.com/workerpool/workerpool/encode"
)

// Exit statuses of the pool.
const (
	exitOK          = 0   // every task ran and exited 0
	exitFailed      = 1   // at least one task failed
	exitUsage       = 2   // bad flag, unreadable input, or output that cannot be written
	exitInterrupted = 130 // SIGINT
	exitBrokenPipe  = 141 // the reader of the results went away
	exitTerminated  = 143 // SIGTERM
)

// version is set at build time with -ldflags "-X main.version=...".
var version string

const description = `Run child processes in parallel and report one JSON result per task.

A task is a JSON object: "command" (required; no shell is involved) and optional "identifier", "args", "env", "dir", "stdin", "timeout" and "meta". Its result has "identifier", "exit_code", "result_body" (stdout), "stderr", "seq" and "duration_ms", and "error", "signal" or "timed_out" when they apply. Tasks come as a JSON array (inline, in --infile, or on stdin) or as NDJSON on stdin; every task read gets exactly one result.

Ways to use it:

  workerpool -i tasks.json -t 4                  classic: one JSON array, the last line of stdout
  generate | workerpool --ndjson | jq .          pipe: one result line per task as each finishes
  proc_open('workerpool --ndjson --events', ...) PHP: write task lines, read results while tasks run
  seq 10 | workerpool --ndjson -- echo {}        template: each input line is a task ({} the line, {#} its number)

Exit status: 0 every task exited 0; 1 at least one task failed; 2 usage or input error; 130 or 143 interrupted by SIGINT or SIGTERM; 141 the reader of the results went away.`

// cli is the command line.
type cli struct {
	Tasks      string           `arg:"" optional:"" name:"tasks" help:"Tasks as a JSON array (or NDJSON), inline."`
	MaxThreads int              `short:"t" name:"max_threads" aliases:"jobs,max-threads" default:"2" help:"Tasks run at once (also --jobs); 0 means one per CPU core (default ${default})."`
	Infile     string           `short:"i" predictor:"file" placeholder:"PATH" help:"Read tasks from a file; - is stdin."`
	Outfile    string           `short:"o" predictor:"file" placeholder:"PATH" help:"Write results to a file: the array atomically, NDJSON appended line by line."`
	Verbose    bool             `short:"v" help:"Log progress to stderr."`
	Version    kong.VersionFlag `short:"V" help:"Print the version and exit."`
	NDJSON     bool             `name:"ndjson" help:"Write one result per line as each task finishes."`
	Ordered    bool             `short:"k" aliases:"keep-order" help:"With --ndjson, write results in input order (also --keep-order)."`
	Timeout    time.Duration    `placeholder:"D" help:"Time limit per task, e.g. 30s; 0 means none (default ${default})." default:"0s"`
	Grace      time.Duration    `placeholder:"D" default:"5s" help:"Time between SIGTERM and SIGKILL when a task is stopped (default ${default})."`
	Retries    int              `placeholder:"N" help:"Run a failed task up to N more times (default ${default})." default:"0"`
	FailFast   bool             `help:"After the first failure start no new task; the rest are reported as skipped."`
	Stderr     string           `enum:"capture,inherit,discard" default:"capture" placeholder:"MODE" help:"Children's stderr: capture, inherit or discard (default ${default})."`
	MaxOutput  int64            `placeholder:"BYTES" help:"Cap the captured bytes per stream; 0 means no cap (default ${default})." default:"0"`
	Binary     bool             `help:"Send result_body and stderr base64-encoded, so no byte is lost."`
	Resume     bool             `help:"With --ndjson and --outfile: skip the tasks the file records as exited 0, run the rest, append."`
	Events     bool             `help:"With --ndjson, also write a line when a task starts or is retried."`
	Progress   bool             `help:"Show a live progress line on stderr, when it is a terminal."`
	DryRun     bool             `help:"Check the tasks and print how each would run (command path included); run nothing."`
	Completion string           `enum:",bash,zsh" default:"" placeholder:"SHELL" help:"Print the line that enables tab completion in bash or zsh, e.g. eval \"$$(workerpool --completion bash)\"."`
}

func main() {
	ctx, stop := signalContext()
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// signal is the cause of a context cancelled by a signal.
type signalError struct{ sig os.Signal }

func (e signalError) Error() string { return "received " + e.sig.String() }

// signalContext returns a context cancelled, with a signalError as its
// cause, on SIGINT or SIGTERM. SIGPIPE is caught too, so that writing to a
// closed pipe fails with EPIPE instead of killing the pool.
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGPIPE)
	go func() {
		for sig := range sigs {
			if sig != syscall.SIGPIPE {
				cancel(signalError{sig})
			}
		}
	}()
	return ctx, func() { signal.Stop(sigs); cancel(nil) }
}

// run is the whole program: it returns the exit status, and is cancelled
// through ctx as if by a signal.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c cli
	template, exited, code, err := parseArgs(&c, args, stdout, stderr)
	if exited {
		return code
	}
	if err != nil {
		return usageError(stderr, err)
	}
	input, closeInput, err := c.openInput(stdin, template)
	if err != nil {
		return usageError(stderr, err)
	}
	defer closeInput()
	var journal encode.Journal
	if c.Resume {
		if journal, err = encode.OpenJournal(c.Outfile); err != nil {
			return usageError(stderr, fmt.Errorf("--resume: %w", err))
		}
	}
	out, err := c.openOutput(stdout)
	if err != nil {
		return usageError(stderr, err)
	}
	p := pipeline{cli: &c, template: template, journal: journal, log: newLogger(stderr, c.Verbose), stderr: stderr}
	if c.Progress {
		p.progress = newProgress(stderr)
		if p.progress != nil {
			if reopen := c.reopenInput(); reopen != nil {
				p.progress.countTasks(ctx, reopen, decode.Options{Template: template})
			}
		}
	}
	status := p.run(ctx, input, out)
	if err := out.finish(!p.writeFailed); err != nil && !p.writeFailed {
		return usageError(stderr, err)
	}
	return status
}

// usageError reports err as the one line that ends the run, and returns
// the usage exit status.
func usageError(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "workerpool: %v\n", err)
	return exitUsage
}

// parseArgs reads the command line into c. Words after "--" are the command
// template. exited reports that kong already answered (--help, --version)
// with status code.
func parseArgs(c *cli, args []string, stdout, stderr io.Writer) (template []string, exited bool, code int, err error) {
	if i := slices.Index(args, "--"); i >= 0 {
		args, template = args[:i], args[i+1:]
		if len(template) == 0 {
			return nil, false, 0, errors.New("no command after --")
		}
	}
	parser, err := kong.New(c,
		kong.Name("workerpool"),
		kong.Description(description),
		kong.Vars{"version": versionString()},
		kong.Writers(stdout, stderr),
		kong.Exit(func(status int) { exited, code = true, status }),
		kong.ConfigureHelp(kong.HelpOptions{NoExpandSubcommands: true}),
	)
	if err != nil {
		return nil, false, 0, err
	}
	// Answers the shell's tab completion (COMP_LINE set) and exits.
	kongplete.Complete(parser,
		kongplete.WithPredictor("file", complete.PredictFiles("*")),
		kongplete.WithExitFunc(func(status int) { exited, code = true, status }))
	if exited {
		return nil, true, code, nil
	}
	if _, err = parser.Parse(args); exited {
		return nil, true, code, nil
	}
	if err != nil {
		return nil, false, 0, err
	}
	if c.Completion != "" {
		return nil, true, printCompletion(stdout, c.Completion), nil
	}
	if c.MaxThreads < 0 {
		return nil, false, 0, fmt.Errorf("--max_threads must be 0 or more, not %d", c.MaxThreads)
	}
	if c.Retries < 0 || c.MaxOutput < 0 || c.Timeout < 0 || c.Grace < 0 {
		return nil, false, 0, errors.New("--retries, --max-output, --timeout and --grace cannot be negative")
	}
	if c.Resume && (!c.NDJSON || c.Outfile == "") {
		return nil, false, 0, errors.New("--resume needs --ndjson and --outfile, the journal it resumes from")
	}
	if c.Events && !c.NDJSON {
		return nil, false, 0, errors.New("--events needs --ndjson: the array has no room for them")
	}
	if template != nil && c.Tasks != "" {
		return nil, false, 0, fmt.Errorf("inline tasks %q cannot be combined with a command after --", abbreviate(c.Tasks))
	}
	return template, false, 0, nil
}

// printCompletion prints the shell line that has the shell ask workerpool
// itself for completions.
func printCompletion(w io.Writer, shell string) int {
	bin, err := os.Executable()
	if err != nil {
		bin = "workerpool"
	}
	if shell == "zsh" {
		fmt.Fprintln(w, "autoload -U +X bashcompinit && bashcompinit")
	}
	fmt.Fprintf(w, "complete -C %s workerpool\n", bin)
	return exitOK
}

func versionString() string {
	if version != "" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return "dev"
}

// openInput picks the source of tasks: --infile, then the inline argument,
// then stdin, which must not be a terminal.
func (c *cli) openInput(stdin io.Reader, template []string) (io.Reader, func(), error) {
	nothing := func() {}
	switch {
	case c.Infile != "" && c.Infile != "-":
		f, err := os.Open(c.Infile)
		if err != nil {
			return nil, nil, fmt.Errorf("cannot read --infile %s: %w", c.Infile, pathCause(err))
		}
		if info, err := f.Stat(); err == nil && info.IsDir() {
			f.Close()
			return nil, nil, fmt.Errorf("cannot read --infile %s: it is a directory", c.Infile)
		}
		return f, func() { f.Close() }, nil
	case c.Infile == "" && c.Tasks != "":
		first := strings.TrimLeft(c.Tasks, " \t\r\n")
		if !strings.HasPrefix(first, "[") && !strings.HasPrefix(first, "{") {
			return nil, nil, fmt.Errorf("the argument %q is not JSON tasks (a JSON array or NDJSON); to read a file use -i", abbreviate(c.Tasks))
		}
		return strings.NewReader(c.Tasks), nothing, nil
	}
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		what := "tasks as JSON"
		if template != nil {
			what = "input lines"
		}
		return nil, nil, fmt.Errorf("no tasks: give %s on stdin, with -i PATH, or inline (see --help)", what)
	}
	return stdin, nothing, nil
}

// pathCause drops the operation and path from a file error, for messages
// that already name the file.
func pathCause(err error) error {
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) {
		return pathErr.Err
	}
	return err
}

// ordered reports whether results are written in input order: always in
// the array, with --ordered in NDJSON.
func (c *cli) ordered() bool { return !c.NDJSON || c.Ordered }

// reopenInput returns a way to read the input once more, for counting the
// tasks ahead of the run, when the input is an inline argument or a regular
// file; nil otherwise.
func (c *cli) reopenInput() func() (io.ReadCloser, error) {
	switch {
	case c.Infile != "" && c.Infile != "-":
		if info, err := os.Stat(c.Infile); err != nil || !info.Mode().IsRegular() {
			return nil
		}
		return func() (io.ReadCloser, error) { return os.Open(c.Infile) }
	case c.Infile == "" && c.Tasks != "":
		return func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(c.Tasks)), nil }
	}
	return nil
}

func abbreviate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func newLogger(w io.Writer, verbose bool) *slog.Logger {
	if !verbose {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// output is where results go: stdout, a file appended to, or a temporary
// file renamed over the target once complete.
type output struct {
	io.Writer
	finish func(keep bool) error
}

func (c *cli) openOutput(stdout io.Writer) (*output, error) {
	if c.Outfile == "" {
		return &output{Writer: stdout, finish: func(bool) error { return nil }}, nil
	}
	if c.NDJSON {
		f, err := os.OpenFile(c.Outfile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("cannot open --outfile %s: %w", c.Outfile, pathCause(err))
		}
		return &output{Writer: f, finish: func(bool) error { return f.Close() }}, nil
	}
	f, err := os.CreateTemp(filepath.Dir(c.Outfile), "."+filepath.Base(c.Outfile)+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("cannot open --outfile %s: %w", c.Outfile, pathCause(err))
	}
	finish := func(keep bool) error {
		err := errors.Join(f.Chmod(0o644), f.Close())
		if err == nil && keep {
			err = os.Rename(f.Name(), c.Outfile)
		}
		if err != nil || !keep {
			os.Remove(f.Name())
		}
		if err != nil {
			return fmt.Errorf("cannot write --outfile: %w", err)
		}
		return nil
	}
	return &output{Writer: f, finish: finish}, nil
}
