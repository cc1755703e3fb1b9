// Package cli is workerpool's command line: its flags, its completion, and
// how the program ends. The run itself is package pipeline; cli builds
// what it needs, the executor first, and maps how it ends to an exit
// status (see Error). Nothing else in the program prints an error or
// chooses an exit status.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/alecthomas/kong"
	"github.com/kballard/go-shellquote"

	"github.com/workerpool/workerpool/decode"
	"github.com/workerpool/workerpool/dispatch"
	"github.com/workerpool/workerpool/pipeline"
	"github.com/workerpool/workerpool/remote"
)

// Main is the program, given the version it was built as (empty for
// none): it runs the command line in os.Args and returns the exit status.
func Main(buildVersion string) int {
	version = buildVersion
	if len(os.Args) > 1 && os.Args[1] == dispatch.LimitsArg {
		return limited(os.Args[2:])
	}
	// First, before the run makes threads that the limit may not allow.
	if err := checkAddressSpace(); err != nil {
		return exitCode(os.Stderr, err)
	}
	closeInheritedOnExec()
	ctx, stop := signalContext(context.Background())
	defer stop()
	return exitCode(os.Stderr, run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// limited is the program as the pool starts a task that has limits (see
// dispatch.LimitsArg): it sets them, then becomes the task's program. When
// that fails, it returns the exit status a shell's would: 127 when the
// program is not found, 126 otherwise.
func limited(args []string) int {
	err := dispatch.ExecLimited(args)
	fmt.Fprintf(os.Stderr, "workerpool: %v\n", err)
	if errors.Is(err, fs.ErrNotExist) {
		return 127
	}
	return 126
}

// run is the whole program but for its exit: it returns nil when every task
// ran and exited 0, and is stopped through ctx as if by a signal.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if f, ok := stdout.(*os.File); ok && closedAtStart(f) {
		return usageError(errors.New("stdout is closed: nowhere to write the results"))
	}
	if len(args) > 0 && args[0] == "report" {
		return runReport(args[1:], stdin, stdout, stderr)
	}
	var c cli
	if i := slices.Index(args, "--"); i >= 0 {
		args, c.template = args[:i], args[i+1:]
		if len(c.template) == 0 {
			return usageError(errors.New("no command after --"))
		}
	}
	if answered, err := c.parse(args, stdout, stderr); answered || err != nil {
		return err
	}
	if err := c.takeSources(); err != nil {
		return usageError(err)
	}
	if c.Agent {
		if err := remote.Serve(ctx, stdin, stdout, c.agent()); err != nil {
			return usageError(fmt.Errorf("agent: %w", err))
		}
		return nil
	}
	cfg := c.config(stderr)
	release, err := c.executor(ctx, &cfg, stderr)
	if err != nil {
		if ctx.Err() != nil { // interrupted while waiting for an allocation
			return context.Cause(ctx)
		}
		return usageError(err)
	}
	defer release()
	sum, err := pipeline.Run(ctx, cfg, stdin, stdout)
	if err == nil && sum.Failed > 0 && !sum.HaltedOnSuccess {
		err = errTasksFailed
	}
	return err
}

// takeSources splits the input sources (:::, ::::) from the command after
// --. The file of -a or -i, given with them, is the first of them, as GNU
// parallel's -a FILE.
func (c *cli) takeSources() error {
	command, sources, err := decode.ParseSources(c.template)
	switch {
	case err != nil || len(sources) == 0:
		return err
	case c.Pipe || c.PipePart:
		return errors.New("--pipe cuts stdin into chunks: it takes no input sources (::: and ::::); name a file with -a")
	}
	if in := c.infile(); in != "" {
		if in == "-" && slices.ContainsFunc(sources, func(s decode.Source) bool { return s.Values == nil && s.Path == "-" }) {
			return errors.New("the input file - and :::: - both name stdin, which can be read once")
		}
		sources = append([]decode.Source{{Path: in}}, sources...)
		c.Infile, c.ArgFile = "", ""
	}
	c.template, c.sources = command, sources
	return nil
}

// parse reads the command line into c. answered reports that it was
// answered already (--help, --version, --completion, a shell's completion
// request); err is then the exit status, if it is not 0.
func (c *cli) parse(args []string, stdout, stderr io.Writer) (answered bool, err error) {
	exit := func(status int) {
		answered = true
		if status != 0 {
			err = &Error{Code: status, Err: fmt.Errorf("exit status %d", status), Quiet: true}
		}
	}
	parser, perr := kong.New(c,
		kong.Name("workerpool"),
		kong.Description(helpDescription()),
		kong.Help(printHelp),
		kong.Vars{"version": versionString()},
		kong.Writers(stdout, stderr),
		kong.Exit(exit),
		kong.ConfigureHelp(kong.HelpOptions{NoExpandSubcommands: true}),
	)
	if perr != nil {
		return false, perr
	}
	if answerCompletion(parser, args, exit); answered {
		return true, err
	}
	kctx, perr := parser.Parse(args)
	if answered {
		return true, err
	}
	if len(c.template) == 0 {
		// Before kong's error: the command's own flags may be what kong
		// failed on (-t {}).
		if ferr := forgottenDashes(parser.Model.Node, args); ferr != nil {
			return false, usageError(ferr)
		}
	}
	if perr != nil {
		return false, usageError(perr)
	}
	// Given on the command line, not its default: kong's Value.Set is
	// true for a default too.
	for _, p := range kctx.Path {
		c.threadsSet = c.threadsSet || p.Flag != nil && p.Flag.Name == "max_threads"
	}
	if c.Completion != nil {
		return true, printCompletion(stdout, string(*c.Completion))
	}
	return false, nil
}

// forgottenDashes returns the error for a command line that holds a command
// to run for each input line without the "--" before it, or nil: the first
// of args that is neither a flag nor a flag's value is not JSON tasks (it
// starts with neither "[" nor "{"), and words follow it or it names a
// program. A file name on its own, such as tasks.json, is left to the
// error that says to read a file with -i. The error gives the command line
// with the "--" in place.
func forgottenDashes(app *kong.Node, args []string) error {
	i := firstArg(app, args)
	if i == len(args) {
		return nil
	}
	first := strings.TrimLeftFunc(args[i], func(r rune) bool { return unicode.IsSpace(r) || r == '\uFEFF' })
	if first == "" || first[0] == '[' || first[0] == '{' {
		return nil
	}
	if i == len(args)-1 {
		if _, err := exec.LookPath(args[i]); err != nil {
			return nil
		}
	}
	line := slices.Concat(args[:i], []string{"--"}, args[i:])
	return fmt.Errorf("to run a command for each input line, put it after --: workerpool %s", shellWords(line))
}

// firstArg returns the index in args of the first word that is neither a
// flag of app nor a flag's value, as kong reads them, or len(args) when
// there is none or a flag before it is unknown (whether it takes a value
// cannot be told). A flag that takes a value takes the rest of its word
// after "=", or after its letter in a cluster of short flags (-kt4), or
// else the next word.
func firstArg(app *kong.Node, args []string) int {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case strings.HasPrefix(a, "--"):
			name, _, inWord := strings.Cut(a, "=")
			f := flagNamed(app, name)
			if f == nil {
				return len(args)
			}
			if !inWord && !f.IsBool() {
				i++
			}
		case len(a) > 1 && a[0] == '-':
			for j, r := range a[1:] {
				f := flagNamed(app, "-"+string(r))
				if f == nil {
					return len(args)
				}
				if !f.IsBool() {
					if 1+j+utf8.RuneLen(r) == len(a) {
						i++
					}
					break
				}
			}
		default:
			return i
		}
	}
	return len(args)
}

// flagNamed returns the flag of app that word names, or nil: "--name",
// "-s", or an alias ("--alias", or "-a" for one of one letter).
func flagNamed(app *kong.Node, word string) *kong.Flag {
	for _, f := range app.Flags {
		names := flagNames(f)
		for _, alias := range f.Aliases {
			if utf8.RuneCountInString(alias) == 1 {
				names = append(names, "-"+alias)
			} else {
				names = append(names, "--"+alias)
			}
		}
		if slices.Contains(names, word) {
			return f
		}
	}
	return nil
}

// shellWords joins words as a shell splits them back, as shellquote.Join
// does, but leaves bare a word that needs quoting only for its replacement
// strings: {} rather than \{}.
func shellWords(words []string) string {
	var pairs []string
	for _, r := range decode.Replacements {
		pairs = append(pairs, r.String, "")
	}
	strip := strings.NewReplacer(pairs...)
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = shellquote.Join(w)
		if rest := strip.Replace(w); w != "" && (rest == "" || shellquote.Join(rest) == rest) {
			quoted[i] = w
		}
	}
	return strings.Join(quoted, " ")
}
