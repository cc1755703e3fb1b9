package encode

import (
	"bytes"
	"io"

	"github.com/workerpool/workerpool/job"
)

// Marshal returns the JSON form of one result, as Encoder.Result writes it.
func Marshal(r *job.Result, binary bool) ([]byte, error) {
	var out bytes.Buffer
	e := NewEncoder(&out, Options{Binary: binary})
	if err := e.writeResult(r); err != nil {
		return nil, err
	}
	if err := e.w.Flush(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// Summary counts what Write wrote.
type Summary struct{ Results, Failed int64 }

// Write writes every result received, in the order received, until the
// channel is closed, then closes the encoder. It stops at the first error.
func Write(w io.Writer, results <-chan job.Result, opts Options) (Summary, error) {
	var sum Summary
	e := NewEncoder(w, opts)
	for r := range results {
		if err := e.Result(&r); err != nil {
			return sum, err
		}
		sum.Results++
		if r.Failed() {
			sum.Failed++
		}
	}
	return sum, e.Close()
}
