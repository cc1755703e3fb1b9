package encode

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	json "github.com/goccy/go-json"
)

// Journal is what an NDJSON results file already records: how many
// results each identifier has that ran to completion and exited 0. Its keys
// are the identifiers as the lines hold them.
type Journal map[string]int

// Take reports whether the journal holds a successful result for
// identifier not yet claimed by an earlier task, and claims it. With
// duplicate identifiers, the first N tasks of an identifier are matched
// with its N recorded successes, in input order. An identifier that is not
// valid UTF-8 is looked up as a result line holds it: by the rule the
// writer writes it by (writeString), every invalid byte is U+FFFD.
func (j Journal) Take(identifier string) bool {
	if len(j) == 0 {
		return false
	}
	identifier = validString(identifier)
	if j[identifier] == 0 {
		return false
	}
	j[identifier]--
	return true
}

// OpenJournal reads the NDJSON results file at path, a missing file being
// an empty journal, and repairs it for appending: a last line cut short by
// a crash is removed. Lines that are not results are ignored.
func OpenJournal(path string) (Journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return Journal{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read the journal: %w", err)
	}
	defer f.Close()
	j := Journal{}
	r := bufio.NewReaderSize(f, 64<<10)
	var good int64 // bytes up to the end of the last whole line
	for {
		line, err := r.ReadBytes('\n')
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("cannot read the journal: %w", err)
		}
		good += int64(len(line))
		var rec struct {
			Identifier *string `json:"identifier"`
			ExitCode   *int    `json:"exit_code"`
			Error      *string `json:"error"`
		}
		// A task stopped by the pool (cancelled, timed out) may have
		// exited 0 all the same; only one that ran to its end is done.
		if json.Unmarshal(bytes.TrimSpace(line), &rec) == nil && rec.Identifier != nil && rec.ExitCode != nil && *rec.ExitCode == 0 && rec.Error == nil {
			j[*rec.Identifier]++
		}
	}
	if err := f.Truncate(good); err != nil {
		return nil, fmt.Errorf("cannot repair the journal: %w", err)
	}
	return j, nil
}
