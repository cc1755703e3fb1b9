package pipeline

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// output is where results go: stdout, a file appended to, or a temporary
// file renamed over the target once complete.
type output struct {
	w io.Writer
	// finish ends the output; keep says whether what was written is to
	// be kept (a temporary file is removed otherwise).
	finish func(keep bool) error
}

func (c *Config) openOutput(stdout io.Writer) (*output, error) {
	if c.Outfile == "" {
		return &output{w: stdout, finish: func(bool) error { return nil }}, nil
	}
	if c.NDJSON {
		f, err := os.OpenFile(c.Outfile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("cannot open --outfile %s: %w", c.Outfile, pathCause(err))
		}
		return &output{w: f, finish: func(bool) error { return f.Close() }}, nil
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
	return &output{w: f, finish: finish}, nil
}
