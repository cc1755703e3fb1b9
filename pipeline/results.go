package pipeline

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/workerpool/workerpool/dispatch"
	"github.com/workerpool/workerpool/encode"
	"github.com/workerpool/workerpool/internal/shorten"
	"github.com/workerpool/workerpool/job"
)

// resultsDir is where --results puts each task's outputs, as GNU
// parallel's --results lays them out. Given a directory DIR, a task's go
// in a directory under DIR made of its input (see inputPath), or for a
// JSON task in DIR/1/ID, ID its identifier escaped as a file name (see
// escapeName): the files stdout, stderr, seq (its seq, without a line
// break, as parallel writes it) and result.json (its result, as --ndjson
// writes it). Given a path with {} or {#} in it, those are replaced by the
// escaped identifier and the seq, and the files are PATH, PATH.err,
// PATH.seq and PATH.json. Directories are made as needed. Its methods may
// be called from many goroutines at once, and on a nil resultsDir, which
// writes nothing.
type resultsDir struct {
	dir, template string
	json          encode.Options // how result.json is written
}

// newResultsDir returns the resultsDir of --results spec, whose
// result.json files are written as the run writes NDJSON results.
func (c *Config) newResultsDir(spec string) (*resultsDir, error) {
	opts := encode.Options{Mode: encode.NDJSON{}, Binary: c.Binary, OmitStderr: c.ChildStderr != dispatch.StderrCapture}
	if strings.Contains(spec, "{}") || strings.Contains(spec, "{#}") {
		return &resultsDir{template: spec, json: opts}, nil
	}
	if err := os.MkdirAll(spec, 0o755); err != nil {
		return nil, fmt.Errorf("cannot make --results %s: %w", spec, shorten.Error(err))
	}
	return &resultsDir{dir: spec, json: opts}, nil
}

// escapeName makes s the name of one directory, as GNU parallel does: a
// backslash becomes \\, a tab \t, a NUL byte \0 and a slash \_, and the
// name is cut to maxName bytes; unlike it, "", "." and ".." become \, \.
// and \.., so that no name leads out of the directory.
func escapeName(s string) string {
	s = nameEscaper.Replace(s)
	switch s {
	case "", ".", "..":
		return `\` + s
	}
	if len(s) <= maxName {
		return s
	}
	cut := maxName
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

var nameEscaper = strings.NewReplacer(`\`, `\\`, "\t", `\t`, "\x00", `\0`, "/", `\_`)

// maxName is the longest name of a file that most file systems take, in
// bytes: a longer ID is cut, as GNU parallel cuts it.
const maxName = 255

// inputPath is the path in the directory of t's files, as GNU parallel
// makes it of the input: for each value, the number of its source (or
// column) and the value, escaped; with no input (a JSON task), 1 and
// name.
func inputPath(t *job.Task, name string) string {
	if len(t.Inputs) == 0 {
		return filepath.Join("1", name)
	}
	var parts []string
	for _, rec := range t.Inputs {
		for i, v := range rec {
			parts = append(parts, strconv.Itoa(i+1), escapeName(v))
		}
	}
	return filepath.Join(parts...)
}

// add writes the files of t, which ended with r.
func (d *resultsDir) add(t *job.Task, r *job.Result) error {
	if d == nil {
		return nil
	}
	name := escapeName(r.Identifier)
	var stdout, stderr, seq, result string
	if d.dir != "" {
		// Where a backslash separates directories too (Windows), an
		// escaped name may not be one directory: it must not lead out.
		rel := inputPath(t, name)
		if !filepath.IsLocal(rel) {
			return fmt.Errorf("cannot write --results for task %q: its name leads out of %s", r.Identifier, d.dir)
		}
		base := filepath.Join(d.dir, rel)
		stdout, stderr, seq, result = filepath.Join(base, "stdout"), filepath.Join(base, "stderr"), filepath.Join(base, "seq"), filepath.Join(base, "result.json")
	} else {
		if filepath.Base(name) != name {
			return fmt.Errorf("cannot write --results for task %q: its name is not one file's", r.Identifier)
		}
		stdout = strings.NewReplacer("{}", name, "{#}", strconv.FormatInt(r.Seq, 10)).Replace(d.template)
		stderr, seq, result = stdout+".err", stdout+".seq", stdout+".json"
	}
	if err := os.MkdirAll(filepath.Dir(stdout), 0o755); err != nil {
		return fmt.Errorf("cannot write --results for task %q: %w", r.Identifier, shorten.Error(err))
	}
	var js bytes.Buffer
	enc := encode.NewEncoder(&js, d.json)
	// The encoder closes the result it writes: it gets a copy whose
	// outputs are copies.
	c := *r
	c.Stdout, c.Stderr = job.BytesOutput(r.Stdout.Bytes()), job.BytesOutput(r.Stderr.Bytes())
	err := enc.Result(&c)
	if err == nil {
		err = enc.Close()
	}
	for _, f := range []struct {
		path string
		r    io.Reader
	}{
		{stdout, r.Stdout.Reader()},
		{stderr, r.Stderr.Reader()},
		{seq, strings.NewReader(strconv.FormatInt(r.Seq, 10))},
		{result, &js},
	} {
		if err == nil {
			err = writeFile(f.path, f.r)
		}
	}
	if err != nil {
		return fmt.Errorf("cannot write --results for task %q: %w", r.Identifier, shorten.Error(err))
	}
	return nil
}

// writeFile writes the bytes of r to the file at path, created or
// truncated.
func writeFile(path string, r io.Reader) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
