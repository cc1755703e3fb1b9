package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/workerpool/workerpool/internal/shorten"
	"github.com/workerpool/workerpool/report"
)

// reportCommand is the command line of "workerpool report": the report of
// runs already done, drawn from their results files.
type reportCommand struct {
	Files []string `arg:"" optional:"" predictor:"file" placeholder:"FILE" help:"Results as --ndjson writes them, or the journal of --outfile; - or none is stdin."`
	Title string   `placeholder:"TEXT" help:"The report's heading (default: the files' names)."`
}

const reportDescription = `Draw an HTML report from the results of runs already done, to stdout:

  workerpool report results.ndjson > report.html

The report is one file with no network access: inline SVG and CSS, no script.`

// runReport is "workerpool report FILE...": it reads the results files
// and writes their report to stdout.
func runReport(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var cmd reportCommand
	answered := false
	var exitErr error
	parser, err := kong.New(&cmd, kong.Name("workerpool report"), kong.Description(reportDescription),
		kong.Writers(stdout, stderr), kong.Exit(func(status int) {
			answered = true
			if status != 0 {
				exitErr = &Error{Code: status, Err: fmt.Errorf("exit status %d", status), Quiet: true}
			}
		}))
	if err != nil {
		return err
	}
	if _, err := parser.Parse(args); answered {
		return exitErr
	} else if err != nil {
		return usageError(err)
	}
	if len(cmd.Files) == 0 {
		cmd.Files = []string{"-"}
	}
	var b report.Builder
	for _, name := range cmd.Files {
		if err := readResults(&b, name, stdin); err != nil {
			return usageError(err)
		}
	}
	if cmd.Title == "" {
		cmd.Title = "workerpool: " + strings.Join(cmd.Files, ", ")
	}
	w := bufio.NewWriter(stdout)
	if err := b.Write(w, report.Options{Title: cmd.Title}); err != nil {
		return err
	}
	return w.Flush()
}

// readResults adds the results of the file name, or of stdin for "-".
func readResults(b *report.Builder, name string, stdin io.Reader) error {
	if name == "-" {
		return b.Read(stdin, "stdin")
	}
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", name, shorten.Error(err))
	}
	defer f.Close()
	if info, err := f.Stat(); err == nil && info.IsDir() {
		return errors.New("cannot read " + name + ": it is a directory")
	}
	return b.Read(f, name)
}
