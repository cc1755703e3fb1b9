package encode

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/workerpool/workerpool/job"
)

// JoblogHeader is the first line of a joblog, GNU parallel's.
const JoblogHeader = "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n"

// AppendJoblog appends to dst the joblog line of t, which ended with r, as
// GNU parallel writes it: the task's seq; the host that ran it (":" for
// this machine); when it started, in seconds since the epoch, and how long
// it ran, in seconds, each to the millisecond; the bytes of its stdin (its
// chunk, with --pipe) and of its stdout; its exit status (0 when a signal killed it) and that
// signal's number (0 for none); and its command line, quoted for a shell
// (see ShellQuote). The command is valid UTF-8 (see validString), with
// its tabs and line breaks escaped, so that the line stays one line of
// nine fields.
func AppendJoblog(dst []byte, t *job.Task, r *job.Result) []byte {
	host := r.Host
	if host == "" {
		host = ":"
	}
	start := r.StartedAt
	if start.IsZero() {
		start = time.Now()
	}
	var send int64
	switch {
	case t.Chunk != nil:
		send = t.Chunk.Length
	case t.HasStdin:
		send = int64(len(t.Stdin))
	}
	exit, signal := r.ExitCode, signalNumber(r)
	if signal != 0 && !r.TimedOut {
		exit = 0
	}
	dst = strconv.AppendInt(dst, r.Seq, 10)
	dst = append(dst, '\t')
	dst = append(dst, validString(host)...)
	dst = append(dst, '\t')
	dst = strconv.AppendFloat(dst, float64(start.UnixMilli())/1000, 'f', 3, 64)
	dst = append(dst, '\t')
	dst = fmt.Appendf(dst, "%10.3f", r.Duration.Seconds())
	for _, n := range []int64{send, r.Stdout.Len(), int64(exit), int64(signal)} {
		dst = append(dst, '\t')
		dst = strconv.AppendInt(dst, n, 10)
	}
	dst = append(dst, '\t')
	line := ShellQuote(append([]string{t.Command}, t.Args...))
	dst = appendLine(dst, line)
	return append(dst, '\n')
}

// signals are the numbers of the signals that POSIX fixes, which are the
// same on every Unix; another signal's number is read from the exit code.
var signals = map[string]int{"SIGHUP": 1, "SIGINT": 2, "SIGQUIT": 3, "SIGABRT": 6, "SIGKILL": 9, "SIGALRM": 14, "SIGTERM": 15}

// signalNumber is the number of the signal that killed r's task, or 0.
func signalNumber(r *job.Result) int {
	if r.Signal == "" {
		return 0
	}
	if n, ok := signals[r.Signal]; ok {
		return n
	}
	if r.ExitCode > job.ExitSignalBase {
		return r.ExitCode - job.ExitSignalBase
	}
	return 0
}

// ShellQuote joins words into a command line as GNU parallel prints one:
// a word of only letters, digits and the characters "%+,-./:=@_^" is
// left bare, and any other is put in single quotes, a single quote in it
// written as '"'"'.
func ShellQuote(words []string) string {
	var b strings.Builder
	for i, w := range words {
		if i > 0 {
			b.WriteByte(' ')
		}
		if w != "" && strings.Trim(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789%+,-./:=@_^") == "" {
			b.WriteString(w)
			continue
		}
		b.WriteString("'" + strings.ReplaceAll(w, "'", `'"'"'`) + "'")
	}
	return b.String()
}

// JoblogEntry is what a joblog records of one task.
type JoblogEntry struct {
	Seq int64
	// Succeeded: the task exited 0, and no signal killed it.
	Succeeded bool
}

// ReadJoblog reads a joblog, as AppendJoblog and GNU parallel write it,
// and returns its entries in order. The header and lines that are not
// entries (fewer than nine fields, a Seq or exit status that is not a
// number, a torn last line) are left out. endsLine reports whether the
// joblog ends with a line break, or is empty: if not, a line appended to it
// needs one first.
func ReadJoblog(r io.Reader) (entries []JoblogEntry, endsLine bool, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	endsLine = true
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			endsLine = strings.HasSuffix(line, "\n")
		}
		if e, ok := joblogEntry(line); ok && endsLine {
			entries = append(entries, e)
		}
		if err == io.EOF {
			return entries, endsLine, nil
		}
		if err != nil {
			return nil, false, err
		}
	}
}

func joblogEntry(line string) (JoblogEntry, bool) {
	f := strings.SplitN(strings.TrimRight(line, "\r\n"), "\t", 9)
	if len(f) < 9 {
		return JoblogEntry{}, false
	}
	seq, err1 := strconv.ParseInt(f[0], 10, 64)
	exit, err2 := strconv.Atoi(strings.TrimSpace(f[6]))
	signal, err3 := strconv.Atoi(strings.TrimSpace(f[7]))
	if err1 != nil || err2 != nil || err3 != nil {
		return JoblogEntry{}, false
	}
	return JoblogEntry{Seq: seq, Succeeded: exit == 0 && signal == 0}, true
}
