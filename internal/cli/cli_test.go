package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/workerpool/workerpool/decode"
	"github.com/workerpool/workerpool/pipeline"
)

// TestCommandLine runs the command in-process, as main does but for the
// exit, from a table: what each command line prints and how it ends.
func TestCommandLine(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		stdin  string
		code   int
		stdout string // a substring; "" checks for nothing
		stderr string // the one line printed, if any
	}{
		{name: "classic array", args: []string{`[{"command":"echo","args":["hi"]}]`}, code: ExitOK, stdout: `"result_body":"hi\n"`},
		{name: "a task fails", args: []string{`[{"command":"false"}]`}, code: ExitFailed, stdout: `"exit_code":1`},
		{name: "stdin NDJSON", args: []string{"--ndjson"}, stdin: `{"command":"true"}` + "\n", code: ExitOK, stdout: `"exit_code":0`},
		{name: "template", args: []string{"--ndjson", "--", "echo", "x{}"}, stdin: "1\n", code: ExitOK, stdout: `"result_body":"x1\n"`},
		{name: "timeout in seconds", args: []string{"--timeout", "0.1", `[{"command":"sleep","args":["5"]}]`}, code: ExitFailed, stdout: `"timed_out":true`},
		{name: "help", args: []string{"-h"}, code: ExitOK, stdout: "Exit status"},
		{name: "completion", args: []string{"--completion", "zsh"}, code: ExitOK, stdout: "complete -F _workerpool_complete workerpool\n"},
		{name: "completion for no such shell", args: []string{"--completion", "tcsh"}, code: ExitUsage,
			stderr: "workerpool: --completion must be one of \"bash\",\"zsh\",\"fish\" but got \"tcsh\"\n"},
		{name: "completion for no shell", args: []string{"--completion"}, code: ExitUsage, stderr: "workerpool: --completion: expected a shell: bash, zsh or fish\n"},
		{name: "completion before a flag", args: []string{"--completion", "--ndjson"}, code: ExitUsage, stderr: "workerpool: --completion: expected a shell: bash, zsh or fish\n"},
		{name: "bad flag", args: []string{"--no-such-flag"}, code: ExitUsage, stderr: "workerpool: unknown flag --no-such-flag\n"},
		{name: "a misspelt long flag", args: []string{"--jbos", "2", "[]"}, code: ExitUsage, stderr: "workerpool: unknown flag --jbos, did you mean \"--jobs\"?\n"},
		// -j and -P have no long names to offer: --j and --p are none.
		{name: "no --j to suggest", args: []string{"--jo", "2", "[]"}, code: ExitUsage, stderr: "workerpool: unknown flag --jo, did you mean one of \"--jobs\", \"-j\", \"-o\", \"--joblog\", \"--lb\", \"--tf\"?\n"},
		{name: "no --p to suggest", args: []string{"--pus", "[]"}, code: ExitUsage, stderr: "workerpool: unknown flag --pus, did you mean one of \"--cpus\", \"--push\", \"--push-clean\"?\n"},
		{name: "a memory capacity with hosts", args: []string{"-S", "h1", "--mem-capacity", "1G", "[]"}, code: ExitUsage,
			stderr: "workerpool: --mem-capacity is the memory of this machine's tasks: with hosts, each host (: too) has the memory its agent finds available\n"},
		{name: "negative threads", args: []string{"--jobs=-1", "[]"}, code: ExitUsage, stderr: "workerpool: --max_threads must be 0 or more, not -1\n"},
		{name: "bad duration", args: []string{"--grace", "soon", "[]"}, code: ExitUsage, stderr: "workerpool: --grace: \"soon\" is not a duration such as \"30s\" or a number of seconds\n"},
		{name: "a time limit that rounds to none", args: []string{"--timeout", "1e-12", "[]"}, code: ExitUsage,
			stderr: "workerpool: --timeout: 1e-12 is under 1ms: use 0 for no limit, or at least 1ms\n"},
		{name: "a halt parallel does not know", args: []string{"--halt", "later,fail=1", "[]"}, code: ExitUsage,
			stderr: "workerpool: --halt: \"later,fail=1\" is not a halt such as now,fail=1, soon,fail=10%, now,success=1 or never\n"},
		{name: "resume-failed needs a journal", args: []string{"--resume-failed", "[]"}, code: ExitUsage,
			stderr: "workerpool: --resume and --resume-failed need --joblog, or --ndjson and --outfile, the journal they resume from\n"},
		{name: "line-buffer needs raw", args: []string{"--line-buffer", "[]"}, code: ExitUsage,
			stderr: "workerpool: --line-buffer writes the tasks' lines as they come: it needs --raw or --tag\n"},
		{name: "line-buffer without order", args: []string{"--tag", "--lb", "-k", "[]"}, code: ExitUsage,
			stderr: "workerpool: --line-buffer writes lines as they come, in no order: it does not go with -k\n"},
		{name: "nice out of range", args: []string{"--nice", "20", "[]"}, code: ExitUsage, stderr: "workerpool: --nice must be from -20 to 19, not 20\n"},
		{name: "events need ndjson", args: []string{"--events", "[]"}, code: ExitUsage, stderr: "workerpool: --events needs --ndjson: the array has no room for them\n"},
		{name: "nothing after --", args: []string{"--"}, code: ExitUsage, stderr: "workerpool: no command after --\n"},
		// A command without the -- before it: the words after the flags are
		// not JSON, and more than one, or a program.
		{name: "a forgotten --", args: []string{"-j", "4", "--tag", "zcat", "-t", "{}"}, code: ExitUsage,
			stderr: "workerpool: to run a command for each input line, put it after --: workerpool -j 4 --tag -- zcat -t {}\n"},
		{name: "a forgotten -- before a program", args: []string{"-j", "4", "sh"}, code: ExitUsage,
			stderr: "workerpool: to run a command for each input line, put it after --: workerpool -j 4 -- sh\n"},
		{name: "a forgotten -- after flags with values", args: []string{"-kt4", "--stderr=discard", "-i", "-", "--ndjson", "sh", "-c", "echo {} \"$1\"", "sh", "{/.}"}, code: ExitUsage,
			stderr: "workerpool: to run a command for each input line, put it after --: workerpool -kt4 --stderr=discard -i - --ndjson -- sh -c 'echo {} \"$1\"' sh {/.}\n"},
		{name: "a forgotten -- before flags", args: []string{"sh", "-c", "true", "-j", "2"}, code: ExitUsage,
			stderr: "workerpool: to run a command for each input line, put it after --: workerpool -- sh -c true -j 2\n"},
		{name: "a file name is no command", args: []string{"-j", "4", "no-such-tasks.json"}, code: ExitUsage,
			stderr: "workerpool: the argument \"no-such-tasks.json\" is not JSON tasks (a JSON array or NDJSON); to read a file use -i\n"},
		{name: "an unknown flag before a command", args: []string{"--no-such", "sh", "-c", "true"}, code: ExitUsage, stderr: "workerpool: unknown flag --no-such\n"},
		{name: "JSON tasks and a bad flag", args: []string{" []", "-t", "{}"}, code: ExitUsage,
			stderr: "workerpool: --max_threads: expected a number of tasks, not \"{}\"\n"},
		{name: "slurm and ssh hosts", args: []string{"--slurm", "-S", "h1", "[]"}, code: ExitUsage,
			stderr: "workerpool: --slurm runs on the allocation's nodes through srun: it goes with none of -S, --sshloginfile and --ssh\n"},
		{name: "slurm-alloc and ssh", args: []string{"--slurm-alloc", "-N 2", "--ssh", "ssh -F x", "[]"}, code: ExitUsage,
			stderr: "workerpool: --slurm runs on the allocation's nodes through srun: it goes with none of -S, --sshloginfile and --ssh\n"},
		{name: "slurm-alloc without arguments", args: []string{"--slurm-alloc", " ", "[]"}, code: ExitUsage,
			stderr: "workerpool: --slurm-alloc needs salloc's arguments, such as '-N 2'\n"},
		{name: "push without hosts", args: []string{"--push", "[]"}, code: ExitUsage,
			stderr: "workerpool: --push, --push-clean, --remote-path and --ssh need hosts: -S HOST, --sshloginfile FILE or --slurm\n"},
		{name: "unreadable input", args: []string{"--ndjson"}, stdin: "hello", code: ExitUsage,
			stderr: "workerpool: cannot read tasks: input is neither a JSON array nor NDJSON: it starts with 'h'\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := exitCode(&stderr, run(t.Context(), tt.args, strings.NewReader(tt.stdin), &stdout, &stderr))
			require.Equal(t, tt.code, code, "stderr: %s", stderr.String())
			require.Contains(t, stdout.String(), tt.stdout)
			require.Equal(t, tt.stderr, stderr.String())
		})
	}
}

// TestThreadsFlags: -j (GNU parallel's), -P (xargs's), --jobs and
// --max-threads are other names of -t, and --j and --p are no flags at all.
func TestThreadsFlags(t *testing.T) {
	for _, args := range [][]string{{"-t", "3"}, {"-j", "3"}, {"-P", "3"}, {"-j3"}, {"-kP3"}, {"-t", "1", "-j", "3"}, {"--jobs", "3"}, {"--max-threads=3"}} {
		var c cli
		answered, err := c.parse(args, io.Discard, io.Discard)
		require.NoError(t, err, "%q", args)
		require.False(t, answered)
		require.Equal(t, threads(3), c.MaxThreads, "%q", args)
		require.True(t, c.threadsSet, "%q", args)
	}
	// Its default is not given: with hosts, each has as many slots as CPUs.
	for _, args := range [][]string{{"[]"}, {"-S", "h1", "-v", "[]"}, {"-k", "--ndjson"}} {
		var c cli
		_, err := c.parse(args, io.Discard, io.Discard)
		require.NoError(t, err, "%q", args)
		require.Equal(t, threads(2), c.MaxThreads, "%q", args)
		require.False(t, c.threadsSet, "%q", args)
	}
	for _, args := range [][]string{{"--j", "2"}, {"--p", "2"}, {"--j=2"}, {"--P", "2"}} {
		var c cli
		_, err := c.parse(args, io.Discard, io.Discard)
		require.ErrorContains(t, err, "unknown flag "+strings.SplitN(args[0], "=", 2)[0], "%q", args)
		require.NotRegexp(t, `"--[jpP]"`, err.Error())
	}
}

// TestHelp: --help shows both forms of the command line, and what each
// replacement string of template mode stands for.
func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"--help"}, strings.NewReader(""), &stdout, &stderr))
	require.Empty(t, stderr.String())
	require.True(t, strings.HasPrefix(stdout.String(),
		"Usage: workerpool [flags] [<tasks>]\n       workerpool [flags] -- CMD [ARG...] [::: VALUE... | :::: FILE...]...\n\n"), "%s", stdout.String())
	require.Equal(t, 1, strings.Count(stdout.String(), "Usage:"))
	for _, r := range decode.Replacements {
		require.Regexp(t, `(?m)^ +`+regexp.QuoteMeta(r.String)+` +`+regexp.QuoteMeta(r.Means)+`$`, stdout.String())
	}
}

// TestHelpReaderGone: --help, --completion and the report's --help,
// written for a reader that went away, end as a run whose reader went away
// does: 141, without a message.
func TestHelpReaderGone(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"--completion", "fish"}, {"report", "--help"}} {
		var stderr bytes.Buffer
		code := exitCode(&stderr, run(t.Context(), args, strings.NewReader(""), goneReader{}, &stderr))
		require.Equal(t, ExitBrokenPipe, code, "%q", args)
		require.Empty(t, stderr.String(), "%q", args)
	}
}

// goneReader is stdout when its reader went away.
type goneReader struct{}

func (goneReader) Write([]byte) (int, error) {
	return 0, &fs.PathError{Op: "write", Path: "/dev/stdout", Err: syscall.EPIPE}
}

// TestExitCode: how each way a run ends maps to its exit status, and
// which of them print a message.
func TestExitCode(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		code   int
		stderr string
	}{
		{"success", nil, ExitOK, ""},
		{"SIGHUP", signalError{syscall.SIGHUP}, ExitHangup, ""},
		{"SIGINT", signalError{syscall.SIGINT}, ExitInterrupted, ""},
		{"SIGTERM", fmt.Errorf("stopped: %w", signalError{syscall.SIGTERM}), ExitTerminated, ""},
		{"cancelled", context.Canceled, ExitInterrupted, ""},
		{"reader gone", pipeline.ErrReaderGone, ExitBrokenPipe, ""},
		{"reader gone during --help", usageError(&fs.PathError{Op: "write", Path: "/dev/stdout", Err: syscall.EPIPE}), ExitBrokenPipe, ""},
		{"tasks failed", errTasksFailed, ExitFailed, ""},
		{"anything else", errors.New("cannot write results: disk full"), ExitUsage, "workerpool: cannot write results: disk full\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			require.Equal(t, tt.code, exitCode(&stderr, tt.err))
			require.Equal(t, tt.stderr, stderr.String())
		})
	}
}
