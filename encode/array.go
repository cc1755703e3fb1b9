package encode

import "github.com/workerpool/workerpool/job"

// Array is the classic output: one JSON array of every result, in input
// order, on one line. Each result is written as it comes, so a reader of
// the file sees it grow, but only the whole array is valid JSON: an output
// file is replaced once it is complete.
type Array struct{}

func (Array) String() string { return "array" }
func (Array) Traits() Traits { return Traits{InOrder: true, JSON: true} }

func (Array) result(e *Encoder, r *job.Result) error {
	sep := byte(',')
	if e.results == 0 {
		sep = '['
	}
	if err := e.w.WriteByte(sep); err != nil {
		return err
	}
	return e.writeResult(r)
}

// end closes the array ("[]" when it is empty) and ends the line.
func (Array) end(e *Encoder) error {
	end := "]\n"
	if e.results == 0 {
		end = "[]\n"
	}
	_, err := e.w.WriteString(end)
	return err
}
