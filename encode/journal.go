package encode

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
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

// ReadJournal reads the NDJSON results file f, open for reading and
// writing, from its start, and repairs it for appending: a last line cut
// short by a crash is removed. Lines that are not results are ignored: a
// line that is not a JSON object, or has no identifier, and the event
// lines "started" and "retrying". It returns the journal, and what
// compacting f would keep.
func ReadJournal(f *os.File) (Journal, *Compaction, error) {
	j := Journal{}
	c := &Compaction{ids: map[string]*idLines{}}
	r := bufio.NewReaderSize(f, 64<<10)
	var good int64 // bytes up to the end of the last whole line
	torn := false  // whether a torn line follows them
	for n := 0; ; n++ {
		line, err := r.ReadBytes('\n')
		if err == io.EOF {
			torn = len(line) > 0
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("cannot read the journal: %w", err)
		}
		good += int64(len(line))
		id, result, success := readLine(line)
		if !result {
			c.drops++
			continue
		}
		e := c.ids[id]
		if e == nil {
			e = &idLines{}
			c.ids[id] = e
		}
		e.results++
		e.last = n
		if success {
			e.successes++
			j[id]++
		}
	}
	if torn {
		if err := f.Truncate(good); err != nil {
			return nil, nil, fmt.Errorf("cannot repair the journal: %w", err)
		}
	}
	for _, e := range c.ids {
		if e.successes > 0 {
			c.drops += e.results - e.successes
		} else {
			c.drops += e.results - 1
		}
	}
	return j, c, nil
}

// readLine reads a line of the journal: whether it is a result, whose,
// and whether that task is done. A task stopped by the pool (cancelled,
// timed out) may have exited 0 all the same; only one that ran to its end
// is done.
func readLine(line []byte) (identifier string, result, success bool) {
	var rec struct {
		Identifier *string `json:"identifier"`
		ExitCode   *int    `json:"exit_code"`
		Error      *string `json:"error"`
		Event      *string `json:"event"`
	}
	if json.Unmarshal(bytes.TrimSpace(line), &rec) != nil || rec.Identifier == nil {
		return "", false, false
	}
	if rec.Event != nil && *rec.Event != "finished" {
		return "", false, false
	}
	return *rec.Identifier, true, rec.ExitCode != nil && *rec.ExitCode == 0 && rec.Error == nil
}

// Compaction is what compacting a journal keeps: one line per identifier,
// its latest result, but for an identifier whose tasks succeeded, one line
// per success, as each stands for one task of that identifier (see Take).
// Lines that are not results are dropped. The lines kept stay in the order
// they were written: an identifier of one task is where its latest result
// was written.
type Compaction struct {
	ids   map[string]*idLines
	drops int // lines compaction drops
}

// idLines is what a journal holds of one identifier.
type idLines struct {
	results, successes int
	last               int // the line number of its latest result
}

// Drops is the number of lines compacting the journal drops: none when it
// is compact already.
func (c *Compaction) Drops() int { return c.drops }

// Write writes to w the lines of r, the journal c was read from, that
// compaction keeps.
func (c *Compaction) Write(w io.Writer, r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	bw := bufio.NewWriterSize(w, 64<<10)
	for n := 0; ; n++ {
		line, err := br.ReadBytes('\n')
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("cannot read the journal: %w", err)
		}
		id, result, success := readLine(line)
		if !result {
			continue
		}
		e := c.ids[id]
		if e == nil {
			return errors.New("the journal changed while it was compacted")
		}
		if success || (e.successes == 0 && n == e.last) {
			if _, err := bw.Write(line); err != nil {
				return err
			}
		}
	}
	return bw.Flush()
}
