package pipeline

import (
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/workerpool/workerpool/internal/shorten"
)

// openInput picks the source of tasks: --infile, then the inline argument,
// then stdin, which must not be a terminal. close releases it.
func (c *Config) openInput(stdin io.Reader) (r io.Reader, close func(), err error) {
	nothing := func() {}
	if c.Template != nil && c.Inline != "" {
		return nil, nil, fmt.Errorf("inline tasks %q cannot be combined with a command after --", shorten.Text(c.Inline, 40))
	}
	switch {
	case len(c.Sources) > 0:
		return strings.NewReader(""), nothing, nil
	case c.Infile != "" && c.Infile != "-":
		f, err := os.Open(c.Infile)
		if err != nil {
			return nil, nil, fmt.Errorf("cannot read %s %s: %w", c.infileFlag(), c.Infile, shorten.Error(err))
		}
		if info, err := f.Stat(); err == nil && info.IsDir() {
			f.Close()
			return nil, nil, fmt.Errorf("cannot read %s %s: it is a directory", c.infileFlag(), c.Infile)
		}
		return f, func() { f.Close() }, nil
	case c.Infile == "" && c.Inline != "":
		first := strings.TrimLeft(c.Inline, " \t\r\n")
		if !strings.HasPrefix(first, "[") && !strings.HasPrefix(first, "{") {
			return nil, nil, fmt.Errorf("the argument %q is not JSON tasks (a JSON array or NDJSON); to read a file use -i", shorten.Text(c.Inline, 40))
		}
		return strings.NewReader(c.Inline), nothing, nil
	}
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		what := "tasks as JSON"
		if c.Template != nil {
			what = "input lines"
		}
		return nil, nil, fmt.Errorf("no tasks: give %s on stdin, with -i PATH, or inline (see --help)", what)
	}
	return stdin, nothing, nil
}

// infileFlag is the flag that named Infile, for messages.
func (c *Config) infileFlag() string {
	if c.InfileFlag == "" {
		return "--infile"
	}
	return c.InfileFlag
}

// reopenInput returns a way to read the input once more, for counting the
// tasks ahead of the run, when the input is an inline argument or a regular
// file; nil otherwise.
func (c *Config) reopenInput() func() (io.ReadCloser, error) {
	switch {
	case len(c.Sources) > 0:
		return nil
	case c.Infile != "" && c.Infile != "-":
		if info, err := os.Stat(c.Infile); err != nil || !info.Mode().IsRegular() {
			return nil
		}
		return func() (io.ReadCloser, error) { return os.Open(c.Infile) }
	case c.Infile == "" && c.Inline != "":
		return func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(c.Inline)), nil }
	}
	return nil
}
