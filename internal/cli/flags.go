package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kong"

	"github.com/workerpool/workerpool/decode"
	"github.com/workerpool/workerpool/dispatch"
	"github.com/workerpool/workerpool/encode"
	"github.com/workerpool/workerpool/job"
	"github.com/workerpool/workerpool/pipeline"
	"github.com/workerpool/workerpool/remote"
)

// description opens --help, and descriptionEnd ends it, after the
// replacement strings (see helpDescription).
const description = `Run child processes in parallel and report one JSON result per task.

A task is a JSON object: "command" (required; no shell is involved) and optional "identifier", "args", "env", "dir", "stdin", "timeout", "limits" and "meta". Its result has "identifier", "exit_code", "result_body" (stdout), "stderr", "seq", "duration_ms", "started_at" and "ended_at", what it cost ("user_ms", "sys_ms", "max_rss_kb"), and "error", "signal", "timed_out" or "limit" when they apply. Tasks come as a JSON array (inline, in --infile, or on stdin) or as NDJSON on stdin; every task read gets exactly one result.

Ways to use it:

  workerpool -i tasks.json -t 4                  classic: one JSON array, the last line of stdout
  generate | workerpool --ndjson | jq .          pipe: one result line per task as each finishes
  proc_open('workerpool --ndjson --events', ...) PHP: write task lines, read results while tasks run
  seq 10 | workerpool --ndjson -- echo {}        template: each input line is a task ({} the line, {#} its number)
  workerpool --raw -- echo {1}{2} ::: a b ::: 1 2 template with input sources (GNU parallel's): every value with every value

In a command after --, these strings (GNU parallel's) are replaced in each task's words; with none of them, the input line (the item, with -0; the arguments, with input sources) is appended:`

const descriptionEnd = `Exit status: 0 every task exited 0, or --halt stopped the run on success; 1 at least one task failed; 2 usage or input error; 129, 130 or 143 interrupted by SIGHUP, SIGINT or SIGTERM; 141 the reader of the results went away.`

// helpDescription is the text of --help between its usage and its
// flags: description, a table of the replacement strings, descriptionEnd.
func helpDescription() string {
	var b strings.Builder
	b.WriteString(description + "\n\n")
	for _, r := range decode.Replacements {
		fmt.Fprintf(&b, "  %-6s %s\n", r.String, r.Means)
	}
	b.WriteString("\n" + descriptionEnd)
	return b.String()
}

// printHelp prints --help: a usage that shows template mode, which kong
// cannot tell of (the words after -- never reach it), then kong's help
// without its own usage.
func printHelp(options kong.HelpOptions, ctx *kong.Context) error {
	name := ctx.Model.Name
	if _, err := fmt.Fprintf(ctx.Stdout, "Usage: %s [flags] [<tasks>]\n       %s [flags] -- CMD [ARG...] [::: VALUE... | :::: FILE...]...\n", name, name); err != nil {
		return err
	}
	options.NoAppSummary = true
	return kong.DefaultHelpPrinter(options, ctx)
}

// cli is the command line. kong takes an alias of one letter as a short
// flag: -j and -P are other names of -t, and --j and --p are none.
type cli struct {
	Tasks       string           `arg:"" optional:"" name:"tasks" help:"Tasks as a JSON array (or NDJSON), inline."`
	MaxThreads  threads          `short:"t" name:"max_threads" aliases:"jobs,max-threads,j,P" default:"2" placeholder:"N" help:"Tasks run at once (also -j, -P, --jobs); 0 means one per CPU core (default ${default}); with hosts, when given, on each host whose login names no count."`
	Null        bool             `short:"0" name:"null" help:"With a command after --, read items separated by NUL bytes rather than lines (find -print0, xargs -0)."`
	Colsep      string           `placeholder:"REGEX" help:"With a command after --, split each item into columns at the matches of REGEX (Go's syntax), {1} to {n} (GNU parallel's --colsep)."`
	Header      string           `placeholder:":" help:"With a command after --, take the first item of each input source as the names of its columns, so that {name} stands for a column; : is the one value (GNU parallel's --header :)."`
	Link        bool             `help:"Pair the items of the input sources (::: and ::::) one by one, the shorter sources starting over, rather than each with each (GNU parallel's --link)."`
	MaxArgs     *int             `short:"n" name:"max-args" placeholder:"N" help:"With a command after --, put up to N items in each task, the arguments where {} is, or appended (GNU parallel's -n)."`
	ExactArgs   *int             `short:"N" name:"max-replace-args" placeholder:"N" help:"As -n, with {1} to {N} the task's items one by one, and a word that holds {} repeated for each item (GNU parallel's -N)."`
	Fit         bool             `short:"X" name:"context-replace" help:"With a command after --, put in each task as many items as its command line has room for, a word that holds {} repeated for each; the last ones spread over the slots (GNU parallel's -X)."`
	Infile      string           `short:"i" predictor:"file" placeholder:"PATH" help:"Read tasks from a file; - is stdin."`
	Outfile     string           `short:"o" predictor:"file" placeholder:"PATH" help:"Write results to a file: the array atomically, NDJSON appended line by line."`
	Report      string           `predictor:"file" placeholder:"PATH" help:"When the run ends, write an HTML report of it there: timeline, durations, failures, cost (see also: workerpool report FILE...)."`
	Verbose     bool             `short:"v" help:"Log progress to stderr."`
	Version     kong.VersionFlag `short:"V" help:"Print the version and exit."`
	NDJSON      bool             `name:"ndjson" help:"Write one result per line as each task finishes."`
	Ordered     bool             `short:"k" aliases:"keep-order" help:"With --ndjson, write results in input order (also --keep-order)."`
	Timeout     duration         `placeholder:"D" help:"Time limit per task, e.g. 30s or 2.5 (seconds); 0 means none (default ${default})." default:"0s"`
	Grace       duration         `placeholder:"D" default:"5s" help:"Time between SIGTERM and SIGKILL when a task is stopped (default ${default})."`
	Retries     int              `placeholder:"N" help:"Run a failed task up to N more times (default ${default})." default:"0"`
	FailFast    bool             `help:"After the first failure start no new task; the rest are reported as skipped (--halt soon,fail=1)."`
	Halt        halt             `placeholder:"WHEN,COND" help:"Stop early, as GNU parallel: soon,fail=N starts no new task once N have failed, now,fail=N stops the running ones too; fail=N% counts a share of all the tasks; success=N counts successes, and exits 0; never (the default) runs every task."`
	Joblog      string           `predictor:"file" placeholder:"FILE" help:"Write a line to FILE for each task as it ends, in GNU parallel's joblog format (Seq, Host, Starttime, JobRuntime, Send, Receive, Exitval, Signal, Command)."`
	ResumeFail  bool             `name:"resume-failed" help:"With --joblog, or --ndjson and --outfile: skip the tasks recorded as exited 0, run the rest, append."`
	Results     string           `predictor:"file" placeholder:"DIR" help:"Also write each task's stdout, stderr, seq and result.json to DIR/1/VALUE/ (GNU parallel's layout; DIR/1/ID/ for a JSON task); with {} or {#} in DIR, to DIR, DIR.err, DIR.seq and DIR.json."`
	LineBuffer  bool             `name:"line-buffer" aliases:"lb" help:"With --raw or --tag, write the tasks' output a whole line at a time as it comes, rather than each task's whole as it ends (also --lb)."`
	Shuf        bool             `help:"Run the tasks in a random order, once all are read; with -k, results come in that order."`
	Nice        int              `placeholder:"N" help:"Run the tasks at niceness N (1 to 19 lowers their priority); not on Windows."`
	Stderr      string           `enum:"capture,inherit,discard" default:"capture" placeholder:"MODE" help:"Children's stderr: capture, inherit or discard (default ${default})."`
	MaxOutput   size             `placeholder:"SIZE" help:"Cap the captured bytes per stream, e.g. 1M; 0 means no cap (default ${default})." default:"0"`
	Binary      bool             `help:"Send result_body and stderr base64-encoded, so no byte is lost."`
	Raw         bool             `help:"Write each task's stdout as it is, whole, as the task ends (GNU parallel's --group), rather than JSON; its stderr goes to stderr, then why it failed, unless by its own exit status."`
	Tag         bool             `help:"With --raw (which it implies), start each line with the task's identifier and a tab."`
	Resume      bool             `help:"With --ndjson and --outfile: skip the tasks the file records as exited 0, run the rest, append; with --joblog, skip every task it records."`
	Events      bool             `help:"With --ndjson, also write a line when a task starts or is retried, waits at a gate (--memfree, --load, --delay, --rate) for more than a second, or is requeued by --memfree."`
	Progress    bool             `help:"Show a live progress line on stderr, when it is a terminal."`
	DryRun      bool             `help:"Check the tasks and print how each would run (command path included); run nothing."`
	LimitMemory memory           `placeholder:"SIZE" help:"Cap each task's memory (address space), e.g. 512M, at least 4M; a task's \"limits\" overrides it."`
	LimitCPU    duration         `placeholder:"D" help:"Cap each task's CPU time, e.g. 30s (whole seconds, rounded up); past it the task gets SIGXCPU."`
	LimitFiles  int64            `placeholder:"N" help:"Cap the files each task may have open."`
	LimitFSize  size             `name:"limit-fsize" placeholder:"SIZE" help:"Cap the size of a file a task writes, e.g. 1G; past it the task gets SIGXFSZ."`
	CPUs        int              `name:"cpus" placeholder:"N" help:"Slots each task occupies, unless its \"cpus\" says otherwise (default 1): it starts only once that many are free."`
	Memory      memory           `name:"memory" placeholder:"SIZE" help:"Memory reserved for each task while it runs, e.g. 2G, unless its \"memory\" says otherwise: it starts only where that much is free, and it is the task's memory limit too."`
	MemCapacity size             `name:"mem-capacity" placeholder:"SIZE" help:"Memory the tasks run here may reserve at once (default: the memory available when the run starts)."`
	SSHLogin    []string         `short:"S" name:"sshlogin" sep:"none" placeholder:"[N/]HOST" help:"Run tasks on HOST over ssh, N at once (default: -j if given, else its CPUs); repeat, or separate with commas; : is this machine."`
	LoginFile   string           `name:"sshloginfile" predictor:"file" placeholder:"FILE" help:"Hosts as for -S, one a line; read again when the file changes."`
	SSH         string           `name:"ssh" placeholder:"CMD" help:"The ssh command for -S, split into words like a shell does (default ssh)."`
	RemotePath  string           `placeholder:"PATH" help:"The workerpool to run on the hosts (default workerpool, on the remote PATH)."`
	Push        bool             `help:"Copy this workerpool to each host that lacks it (same OS and architecture), under ~/.cache/workerpool, where the 3 versions used last are kept; with --slurm, to each node's /tmp with sbcast."`
	PushClean   bool             `help:"As --push, and remove every other version from ~/.cache/workerpool on each host."`
	SendFile    []string         `name:"transferfile" aliases:"tf" sep:"none" placeholder:"FILE" help:"With hosts (-S, --slurm): send FILE (also --tf), relative to the task's dir, to the task's own directory on its host before it runs there; replacement strings such as {} work in it; repeatable."`
	Transfer    bool             `help:"Send each task's input file: --transferfile {}."`
	Return      []string         `sep:"none" placeholder:"FILE" help:"With hosts: bring FILE back from the task's directory on its host once it has ended, to the same path relative to the task's dir here; repeatable."`
	Cleanup     bool             `help:"With hosts: remove the files sent and returned, and the task's directory, from the host once the task has ended."`
	TRC         []string         `name:"trc" sep:"none" placeholder:"FILE" help:"--return FILE --cleanup, and --transferfile {} unless files to send are named; repeatable."`
	Heartbeat   duration         `placeholder:"D" default:"2s" help:"How often the pool and each agent (-S, --slurm) say they are alive; one silent for three of them is lost (default ${default})."`
	Slurm       bool             `name:"slurm" help:"Run tasks on the nodes of the Slurm allocation this runs in (salloc, sbatch), one agent per node through srun, as many at once on a node as it has CPUs in the allocation, or as -j says."`
	SlurmAlloc  sallocArgs       `name:"slurm-alloc" placeholder:"'ARGS'" help:"As --slurm, in an allocation of its own: salloc --no-shell --no-kill ARGS (e.g. '-N 4 -c 8'), given back (scancel) when the run ends."`
	Agent       bool             `hidden:"" help:"Serve a pool over stdin and stdout: what -S starts on each host."`
	Pipe        bool             `help:"With a command after --, cut stdin into chunks of about --block bytes, at record boundaries, each the stdin of one task; {#} is the chunk's number, and the identifier (GNU parallel's --pipe)."`
	PipePart    bool             `name:"pipepart" help:"As --pipe, for the regular file -a names: the chunks are found by their offsets, and each task reads its own from the file."`
	ArgFile     string           `short:"a" name:"arg-file" predictor:"file" placeholder:"FILE" help:"With a command after --, read the input lines (or with --pipe the chunks) from FILE rather than stdin."`
	Block       size             `name:"block" aliases:"block-size" placeholder:"SIZE" default:"1M" help:"With --pipe, the size of a chunk, e.g. 10M; a chunk ends after its last whole record, and one record longer than the block makes the block grow (default ${default})."`
	MaxLines    int              `short:"L" name:"max-lines" placeholder:"N" help:"With --pipe, a record is N lines, and a chunk holds whole records of N lines."`
	RecStart    *string          `name:"recstart" placeholder:"STR" help:"With --pipe, the string a record starts with: chunks are cut before it (after --recend, when both are given)."`
	RecEnd      *string          `name:"recend" placeholder:"STR" help:"With --pipe, the string a record ends with: chunks are cut after it (\\n when neither --recstart nor --recend is given)."`
	MemFree     size             `name:"memfree" placeholder:"SIZE" help:"Start no task while less than SIZE of memory is available, e.g. 2G; below half of it, stop the youngest task and run it again later. With hosts, each host holds back its own starts."`
	Load        float64          `placeholder:"N" help:"Start no task while the load average over the last minute is N or more. With hosts, each host holds back its own starts."`
	Delay       duration         `placeholder:"D" default:"0s" help:"Leave at least D between two starts, e.g. 0.2 or 1s, across all hosts (default none)."`
	Rate        startRate        `placeholder:"N/s" help:"Start at most N tasks a second (N/s) or a minute (N/m), across all hosts."`
	MemInfo     string           `name:"meminfo" hidden:"" help:"Read the memory available from this file, in the form of /proc/meminfo, rather than from the system."`
	LoadAvg     string           `name:"loadavg" hidden:"" help:"Read the load average from this file, in the form of /proc/loadavg, rather than from the system."`
	Completion  *shell           `enum:"bash,zsh,fish" placeholder:"SHELL" help:"Print the code that enables tab completion in bash, zsh or fish, e.g. eval \"$$(workerpool --completion bash)\", or workerpool --completion fish | source."`

	template   []string        // the words after --, before the input sources
	sources    []decode.Source // the input sources after the command (:::, ::::)
	threadsSet bool            // -t (or -j, -P, --jobs) was given: per host, with hosts
}

// The bounds of --heartbeat: often enough that a lost agent is noticed in
// reasonable time, and not so often that a busy machine misses one.
const (
	minHeartbeat = 100 * time.Millisecond
	maxHeartbeat = time.Minute
)

// Validate checks what the flags' types cannot; kong calls it after parsing.
func (c *cli) Validate() error {
	mode := c.mode()
	_, colsepErr := regexp.Compile(c.Colsep)
	switch {
	case c.MaxThreads < 0:
		return fmt.Errorf("--max_threads must be 0 or more, not %d", c.MaxThreads)
	case c.MaxThreads > dispatch.MaxWorkers:
		return fmt.Errorf("--max_threads must be at most %d, not %d", dispatch.MaxWorkers, c.MaxThreads)
	case c.Retries < 0 || c.LimitFiles < 0:
		return errors.New("--retries and --limit-files cannot be negative")
	case c.CPUs < 0:
		return fmt.Errorf("--cpus must be 1 or more, not %d", c.CPUs)
	case !c.remote() && c.CPUs > c.localSlots():
		return fmt.Errorf("--cpus %d is more than the %d slots of -j: no task could start", c.CPUs, c.localSlots())
	case c.remote() && c.MemCapacity > 0:
		return errors.New("--mem-capacity is the memory of this machine's tasks: with hosts, each host (: too) has the memory its agent finds available")
	case !c.remote() && c.MemCapacity > 0 && int64(c.Memory) > int64(c.MemCapacity):
		return fmt.Errorf("--memory %s is more than --mem-capacity %s: no task could start", job.FormatSize(int64(c.Memory)), job.FormatSize(int64(c.MemCapacity)))
	case (c.Resume || c.ResumeFail) && c.Joblog == "" && (!c.NDJSON || c.Outfile == ""):
		return errors.New("--resume and --resume-failed need --joblog, or --ndjson and --outfile, the journal they resume from")
	case c.LineBuffer && mode.Traits().JSON:
		return errors.New("--line-buffer writes the tasks' lines as they come: it needs --raw or --tag")
	case c.LineBuffer && c.Ordered:
		return errors.New("--line-buffer writes lines as they come, in no order: it does not go with -k")
	case c.Nice < -20 || c.Nice > 19:
		return fmt.Errorf("--nice must be from -20 to 19, not %d", c.Nice)
	case c.Nice != 0 && runtime.GOOS == "windows" && !c.remote():
		return errors.New("--nice is not supported on Windows")
	case c.Null && len(c.template) == 0:
		return errors.New("--null (-0) reads items for a command: give one after --")
	case len(c.template) == 0 && (c.Colsep != "" || c.Header != "" || c.Link || c.MaxArgs != nil || c.ExactArgs != nil || c.Fit):
		return errors.New("--colsep, --header, --link, -n, -N and -X say how items become a command's arguments: give the command after --")
	case c.MaxArgs != nil && *c.MaxArgs < 1 || c.ExactArgs != nil && *c.ExactArgs < 1 || c.MaxArgs != nil && c.ExactArgs != nil:
		return errors.New("-n and -N take a number of items, 1 or more, and cannot go together")
	case c.Header != "" && c.Header != ":":
		return fmt.Errorf("--header takes : (the first item names the columns), not %q", c.Header)
	case colsepErr != nil:
		return fmt.Errorf("--colsep %q is not a regular expression: %w", c.Colsep, colsepErr)
	case (c.Pipe || c.PipePart) && (c.Colsep != "" || c.Header != "" || c.Link || c.MaxArgs != nil || c.ExactArgs != nil || c.Fit):
		return errors.New("--colsep, --header, --link, -n, -N and -X make arguments of items, and --pipe gives no item as an argument: give one or the other")
	case c.ArgFile != "" && len(c.template) == 0:
		return errors.New("--arg-file (-a) reads input for a command: give one after --")
	case c.ArgFile != "" && c.Infile != "":
		return errors.New("--arg-file (-a) and --infile (-i) both name the input: give one of them")
	}
	if err := c.validatePipe(); err != nil {
		return err
	}
	switch {
	case !mode.Traits().JSON && (c.NDJSON || c.Events || c.Binary || (c.Resume || c.ResumeFail) && c.Joblog == ""):
		return fmt.Errorf("--%s writes no JSON: it goes with none of --ndjson, --events, --binary and --resume", mode)
	case c.Heartbeat < duration(minHeartbeat) || c.Heartbeat > duration(maxHeartbeat):
		return fmt.Errorf("--heartbeat must be from %s to %s, not %s", minHeartbeat, maxHeartbeat, time.Duration(c.Heartbeat))
	case c.Report != "" && c.DryRun:
		return errors.New("--report draws a run, and --dry-run runs nothing")
	case c.Events && !c.NDJSON:
		return errors.New("--events needs --ndjson: the array has no room for them")
	case c.slurm() && (len(c.SSHLogin) > 0 || c.LoginFile != "" || c.SSH != ""):
		return errors.New("--slurm runs on the allocation's nodes through srun: it goes with none of -S, --sshloginfile and --ssh")
	case c.SlurmAlloc != "" && strings.TrimSpace(string(c.SlurmAlloc)) == "":
		return errors.New("--slurm-alloc needs salloc's arguments, such as '-N 2'")
	case c.SSH != "" && len(c.SSHLogin) == 0 && c.LoginFile == "",
		(c.Push || c.PushClean || c.RemotePath != "") && len(c.SSHLogin) == 0 && c.LoginFile == "" && !c.slurm():
		return errors.New("--push, --push-clean, --remote-path and --ssh need hosts: -S HOST, --sshloginfile FILE or --slurm")
	case len(c.SendFile) > 0 || c.Transfer || len(c.Return) > 0 || c.Cleanup || len(c.TRC) > 0:
		if err := c.validateStaging(); err != nil {
			return err
		}
	}
	return c.validateGates()
}

// validatePipe checks the flags of --pipe and --pipepart.
func (c *cli) validatePipe() error {
	pipe := c.Pipe || c.PipePart
	switch {
	case !pipe && (c.MaxLines != 0 || c.RecStart != nil || c.RecEnd != nil):
		return errors.New("-L, --recstart and --recend say where --pipe cuts its input: give --pipe too")
	case !pipe:
		return nil
	case len(c.template) == 0:
		return errors.New("--pipe cuts the input into chunks for a command: give one after --")
	case c.Block <= 0:
		return fmt.Errorf("--block must be more than 0, not %d", c.Block)
	case c.MaxLines < 0:
		return fmt.Errorf("-L must be more than 0, not %d", c.MaxLines)
	case c.Null:
		return errors.New("--null (-0) splits the input into arguments, and --pipe into chunks at --recend and --recstart: give one of them")
	case c.PipePart && (c.infile() == "" || c.infile() == "-"):
		return errors.New("--pipepart cuts a file it can seek in: name it with -a FILE")
	case c.PipePart && c.MaxLines != 0:
		return errors.New("-L goes with --pipe, not --pipepart, which cuts at --recend and --recstart")
	case c.PipePart && c.remote():
		return errors.New("--pipepart has tasks read their chunks from the file here: with hosts, use --pipe")
	}
	return nil
}

// validateStaging checks the flags that stage files: they need hosts,
// and replacement strings in them need a command after --.
func (c *cli) validateStaging() error {
	sendsInput := c.Transfer || len(c.TRC) > 0 && len(c.SendFile) == 0
	switch {
	case !c.remote():
		return errors.New("--transferfile, --transfer, --return, --cleanup and --trc stage files on hosts: give -S HOST, --sshloginfile FILE or --slurm")
	case sendsInput && c.Pipe:
		return errors.New("--transfer and --trc send each task's input file ({}), and --pipe gives a task its input on stdin: name the files to send with --transferfile")
	}
	if len(c.template) > 0 {
		return nil
	}
	if sendsInput {
		return errors.New("--transfer and --trc send each task's input file ({}): give a command after --")
	}
	for _, f := range slices.Concat(c.SendFile, c.Return, c.TRC) {
		for _, r := range decode.Replacements {
			if strings.Contains(f, r.String) {
				return fmt.Errorf("%q: replacement strings such as %s work with a command after --; JSON tasks send and return files by their names", f, r.String)
			}
		}
	}
	return nil
}

// infile is the file the input comes from: -i or -a, or empty for stdin.
func (c *cli) infile() string {
	if c.ArgFile != "" {
		return c.ArgFile
	}
	return c.Infile
}

// infileFlag is the flag that named the input file, for messages.
func (c *cli) infileFlag() string {
	if c.ArgFile != "" {
		return "-a"
	}
	return ""
}

// pipe is how the input is cut into chunks, or nil when it is not
// (--pipe). Records end at a line end unless --recstart or --recend says
// otherwise, and one given alone leaves the other empty, as in parallel.
func (c *cli) pipe() *decode.Pipe {
	if !c.Pipe && !c.PipePart {
		return nil
	}
	p := &decode.Pipe{Block: int64(c.Block), Lines: c.MaxLines, RecEnd: "\n"}
	if c.RecStart != nil || c.RecEnd != nil {
		p.RecStart, p.RecEnd = deref(c.RecStart), deref(c.RecEnd)
	}
	if c.PipePart {
		p.Part = c.infile()
	}
	return p
}

// deref is the value p points to, or the zero value when p is nil.
func deref[T any](p *T) T {
	var v T
	if p != nil {
		v = *p
	}
	return v
}

// staged returns the files each task sends and returns, as the flags
// name them: --trc's with the others'.
func (c *cli) staged() (transfer, ret []string) {
	transfer, ret = slices.Clone(c.SendFile), slices.Concat(c.Return, c.TRC)
	if c.Transfer || len(c.TRC) > 0 && len(transfer) == 0 {
		transfer = append(transfer, "{}")
	}
	return transfer, ret
}

// cleanup reports whether staged files are removed from the hosts.
func (c *cli) cleanup() bool { return c.Cleanup || len(c.TRC) > 0 }

// mode is the form of output the command line asks for: --raw, which --tag
// implies, or --ndjson, or else the array. The two cannot go together
// (Validate says so), and --raw is chosen here so that Validate names it.
func (c *cli) mode() encode.Mode {
	switch {
	case c.Raw || c.Tag:
		return encode.Raw{Tag: c.Tag}
	case c.NDJSON:
		return encode.NDJSON{}
	}
	return encode.Array{}
}

// config is the run the command line asks for, but for its executor
// (see executor).
func (c *cli) config(stderr io.Writer) pipeline.Config {
	process := c.process(nil)
	memory := c.memoryCapacity()
	transfer, ret := c.staged()
	return pipeline.Config{
		Inline: c.Tasks, Infile: c.infile(), Template: c.template, Null: c.Null, Outfile: c.Outfile, Report: c.Report,
		InfileFlag: c.infileFlag(), Pipe: c.pipe(), Sources: c.sources, Args: c.args(),
		Transfer: transfer, Return: ret,
		Mode: c.mode(), Ordered: c.Ordered, Binary: c.Binary, Events: c.Events, Resume: c.Resume,
		DryRun: c.DryRun, Progress: c.Progress,
		Workers: int(c.MaxThreads), Retries: c.Retries, FailFast: c.FailFast, Halt: pipeline.Halt(c.Halt), Gates: c.poolGates(),
		Joblog: c.Joblog, ResumeFailed: c.ResumeFail, Results: c.Results, Shuffle: c.Shuf, LineBuffer: c.LineBuffer,
		Defaults: job.Defaults{
			Timeout: time.Duration(c.Timeout),
			Limits:  job.Limits{Memory: int64(c.LimitMemory), CPU: time.Duration(c.LimitCPU), Files: c.LimitFiles, FSize: int64(c.LimitFSize)},
			Request: job.Request{CPUs: c.CPUs, Memory: int64(c.Memory)},
		},
		Memory: memory, Fit: c.fit(memory),
		TempDir: process.TempDir, ChildStderr: process.Stderr, Stderr: stderr, Log: newLogger(stderr, c.Verbose),
	}
}

// args are how items become a command's arguments.
func (c *cli) args() decode.Args {
	return decode.Args{
		Link: c.Link, Colsep: c.Colsep, Header: c.Header != "",
		MaxArgs: max(deref(c.MaxArgs), deref(c.ExactArgs)), Context: c.ExactArgs != nil || c.Fit, Fit: c.Fit,
	}
}

// process is how the command line asks tasks to be run, here and by the
// agents; inheritTo receives their stderr in inherit mode.
func (c *cli) process(inheritTo io.Writer) dispatch.ProcessOptions {
	var mode dispatch.StderrMode
	_ = mode.UnmarshalText([]byte(c.Stderr)) // kong checked it is one
	return dispatch.ProcessOptions{Grace: time.Duration(c.Grace), MaxOutput: int64(c.MaxOutput), Stderr: mode, InheritTo: inheritTo, Nice: c.Nice}
}

// remote reports whether tasks run on other hosts.
func (c *cli) remote() bool { return len(c.SSHLogin) > 0 || c.LoginFile != "" || c.slurm() }

// slurm reports whether tasks run on the nodes of a Slurm allocation.
func (c *cli) slurm() bool { return c.Slurm || c.SlurmAlloc != "" }

// agent is the agent the command line asks for (--agent).
func (c *cli) agent() remote.AgentOptions {
	return remote.AgentOptions{Version: versionString(), Local: dispatch.LocalOptions{ProcessOptions: c.process(nil), EndOrphans: true}, Gates: c.gates().Host()}
}

func newLogger(w io.Writer, verbose bool) *slog.Logger {
	if !verbose {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// threads is the number of tasks run at once. Unlike kong's int, it takes
// a negative number as its value rather than as a flag, so that "-t -1"
// is told what it may be.
type threads int

func (t *threads) Decode(ctx *kong.DecodeContext) error {
	tok := ctx.Scan.Pop()
	n, err := strconv.Atoi(tok.String())
	if err != nil {
		return fmt.Errorf("expected a number of tasks, not %q", tok)
	}
	*t = threads(n)
	return nil
}

// shell is the shell --completion prints code for, one of the flag's
// enum (kong checks which). Unlike kong's string, it says which shells
// there are when none is given.
type shell string

func (s *shell) Decode(ctx *kong.DecodeContext) error {
	tok, err := ctx.Scan.PopValue("shell")
	if err != nil {
		shells := ctx.Value.EnumSlice()
		return fmt.Errorf("expected a shell: %s or %s", strings.Join(shells[:len(shells)-1], ", "), shells[len(shells)-1])
	}
	*s = shell(tok.String())
	return nil
}

// sallocArgs are the words --slurm-alloc passes to salloc. Unlike kong's
// string, it takes a value that starts with a dash, as salloc's
// arguments do ("-N 2"), rather than as a flag.
type sallocArgs string

func (a *sallocArgs) Decode(ctx *kong.DecodeContext) error {
	tok := ctx.Scan.Pop()
	if tok.IsEOL() {
		return errors.New("expected salloc's arguments, such as '-N 2'")
	}
	*a = sallocArgs(tok.String())
	return nil
}

// duration is a flag's time limit: a Go duration or a number of seconds.
type duration time.Duration

func (d *duration) UnmarshalText(text []byte) error {
	v, err := job.ParseDuration(string(text))
	*d = duration(v)
	return err
}

// halt is --halt, as pipeline.ParseHalt reads it.
type halt pipeline.Halt

func (h *halt) UnmarshalText(text []byte) error {
	v, err := pipeline.ParseHalt(string(text))
	*h = halt(v)
	return err
}

// size is a flag's number of bytes: a number, or one with a suffix K, M,
// G or T.
type size int64

func (s *size) UnmarshalText(text []byte) error {
	v, err := job.ParseSize(string(text))
	*s = size(v)
	return err
}

// memory is a flag's memory limit: a size, as size reads it, of at least
// job.MinMemory, or 0 for none.
type memory int64

func (m *memory) UnmarshalText(text []byte) error {
	v, err := job.ParseMemory(string(text))
	*m = memory(v)
	return err
}

// version is the version the program was built as (see Main), set at
// build time with -ldflags "-X main.version=...".
var version string

// versionString is what -V prints and an agent tells in its hello.
func versionString() string {
	info, _ := debug.ReadBuildInfo()
	return chooseVersion(version, info)
}

// chooseVersion picks the version of a build: the one set with -ldflags
// (make's git describe); else the main module's version as Go recorded
// it, v1.2.3 after go install MODULE@v1.2.3 or the pseudo-version it
// stamps from a checkout; else the VCS revision the build was made from,
// with +dirty for a modified tree; else dev. info is nil when the binary
// has no build information.
func chooseVersion(ldflag string, info *debug.BuildInfo) string {
	if ldflag != "" {
		return ldflag
	}
	if info == nil {
		return "dev"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var revision, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if revision == "" {
		return "dev"
	}
	if modified == "true" {
		revision += "+dirty"
	}
	return revision
}
