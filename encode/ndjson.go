package encode

import "github.com/workerpool/workerpool/job"

// NDJSON writes each result as one JSON line, in the order it is given
// them, flushed as soon as it is written; event lines (Encoder.Event) go
// between them. An output file is appended to, and is the journal a
// resumed run reads back (ReadJournal).
type NDJSON struct{}

func (NDJSON) String() string { return "ndjson" }
func (NDJSON) Traits() Traits { return Traits{Appends: true, JSON: true} }

func (NDJSON) result(e *Encoder, r *job.Result) error {
	if err := e.writeResult(r); err != nil {
		return err
	}
	return e.w.WriteByte('\n')
}

func (NDJSON) end(*Encoder) error { return nil }
