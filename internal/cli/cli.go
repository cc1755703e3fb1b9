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
	"slices"

	"github.com/alecthomas/kong"

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
	if err == nil && sum.Failed > 0 {
		err = errTasksFailed
	}
	return err
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
	if perr != nil {
		return false, usageError(perr)
	}
	for _, f := range kctx.Flags() {
		c.threadsSet = c.threadsSet || f.Name == "max_threads" && f.Set
	}
	if c.Completion != nil {
		return true, printCompletion(stdout, string(*c.Completion))
	}
	return false, nil
}
