package encode_test

import (
	"os"
	"time"

	"github.com/workerpool/workerpool/encode"
	"github.com/workerpool/workerpool/job"
)

// An Encoder writes each result as it is given; in NDJSON, a line each.
func Example() {
	enc := encode.NewEncoder(os.Stdout, encode.Options{Mode: encode.NDJSON{}})
	results := []job.Result{
		{Seq: 1, Identifier: "a", Stdout: job.BytesOutput([]byte("hi\n")), Started: true, Duration: 2500 * time.Microsecond},
		{Seq: 2, Identifier: "b", ExitCode: job.ExitNotFound, Err: os.ErrNotExist},
	}
	for _, r := range results {
		if err := enc.Result(&r); err != nil {
			panic(err)
		}
	}
	if err := enc.Close(); err != nil {
		panic(err)
	}
	// Output:
	// {"identifier":"a","exit_code":0,"result_body":"hi\n","stderr":"","seq":1,"duration_ms":2.5}
	// {"identifier":"b","exit_code":127,"result_body":"","seq":2,"error":"file does not exist"}
}
