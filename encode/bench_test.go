package encode_test

import (
	"bytes"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/workerpool/workerpool/encode"
	"github.com/workerpool/workerpool/job"
)

// benchResults is how many results BenchmarkWrite* writes per operation;
// ns/result divides by it.
const benchResults = 10_000

// benchResult is the result of a small task that printed one line.
func benchResult(seq int64) job.Result {
	return job.Result{
		Seq:        seq,
		Identifier: "job " + strconv.FormatInt(seq, 10),
		Stdout:     job.BytesOutput([]byte("hello from the worker, all went well\n")),
		Stderr:     job.BytesOutput([]byte{}),
		Started:    true,
		Duration:   12700 * time.Microsecond,
		Attempts:   1,
		Meta:       []byte(`{"n":` + strconv.FormatInt(seq, 10) + `}`),
	}
}

// benchBody returns n bytes of printable text in lines of 100 bytes, with a
// quote and a tab in each line so that escaping is exercised.
func benchBody(n int) []byte {
	line := []byte("\"quoted\"\tfield, and then plain ASCII text up to a hundred bytes in all...........................\n")
	return bytes.Repeat(line, n/len(line)+1)[:n]
}

func benchMarshal(b *testing.B, r job.Result, binary bool) {
	b.Helper()
	b.ReportAllocs()
	b.SetBytes(r.Stdout.Len() + r.Stderr.Len())
	for b.Loop() {
		if _, err := encode.Marshal(&r, binary); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMarshalResult encodes one small result.
func BenchmarkMarshalResult(b *testing.B) { benchMarshal(b, benchResult(1), false) }

// BenchmarkMarshalResult10MB encodes a result whose stdout is 10 MB of text.
func BenchmarkMarshalResult10MB(b *testing.B) {
	r := benchResult(1)
	r.Stdout = job.BytesOutput(benchBody(10 << 20))
	benchMarshal(b, r, false)
}

// BenchmarkMarshalResult10MBBinary encodes the same result base64-encoded
// (--binary).
func BenchmarkMarshalResult10MBBinary(b *testing.B) {
	r := benchResult(1)
	r.Stdout = job.BytesOutput(benchBody(10 << 20))
	benchMarshal(b, r, true)
}

// benchWrite sends benchResults results through Write per operation.
func benchWrite(b *testing.B, opts encode.Options) {
	b.Helper()
	results := make([]job.Result, benchResults)
	for i := range results {
		results[i] = benchResult(int64(i + 1))
	}
	b.ReportAllocs()
	for b.Loop() {
		ch := make(chan job.Result, 64)
		go func() {
			defer close(ch)
			for _, r := range results {
				ch <- r
			}
		}()
		sum, err := encode.Write(io.Discard, ch, opts)
		if err != nil || sum.Results != benchResults {
			b.Fatalf("wrote %d results of %d: %v", sum.Results, benchResults, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchResults), "ns/result")
}

// BenchmarkWriteNDJSON writes 10,000 small results as NDJSON, in the order
// they come.
func BenchmarkWriteNDJSON(b *testing.B) { benchWrite(b, encode.Options{Mode: encode.NDJSON{}}) }

// BenchmarkWriteArray writes them as the classic JSON array.
func BenchmarkWriteArray(b *testing.B) { benchWrite(b, encode.Options{}) }

// BenchmarkWriteNDJSON10MB writes one result whose stdout is 10 MB of text
// through Write, as the pool's output does, rather than Marshal.
func BenchmarkWriteNDJSON10MB(b *testing.B) {
	r := benchResult(1)
	r.Stdout = job.BytesOutput(benchBody(10 << 20))
	b.ReportAllocs()
	b.SetBytes(r.Stdout.Len())
	for b.Loop() {
		ch := make(chan job.Result, 1)
		ch <- r
		close(ch)
		if _, err := encode.Write(io.Discard, ch, encode.Options{Mode: encode.NDJSON{}}); err != nil {
			b.Fatal(err)
		}
	}
}
