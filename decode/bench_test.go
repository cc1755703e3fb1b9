package decode_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/workerpool/workerpool/decode"
)

// benchTasks is how many tasks each decode benchmark reads per operation;
// ns/task and B/task divide by it.
const benchTasks = 10_000

// benchTaskJSON is one realistic task: a command with arguments, an
// environment, a timeout and caller data.
func benchTaskJSON(i int) string {
	return fmt.Sprintf(`{"identifier":"job %d","command":"php","args":["worker.php","--n","%d"],"env":{"APP_ENV":"bench"},"timeout":"30s","meta":{"n":%d}}`, i, i, i)
}

func benchNDJSON() []byte {
	var b bytes.Buffer
	for i := 1; i <= benchTasks; i++ {
		b.WriteString(benchTaskJSON(i))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func benchArray() []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := 1; i <= benchTasks; i++ {
		if i > 1 {
			b.WriteString(",\n")
		}
		b.WriteString(benchTaskJSON(i))
	}
	b.WriteString("]\n")
	return b.Bytes()
}

func benchLines() []byte {
	var b bytes.Buffer
	for i := 1; i <= benchTasks; i++ {
		fmt.Fprintf(&b, "input-%d.txt\n", i)
	}
	return b.Bytes()
}

// benchDecode reads input through a Decoder once per operation, receiving
// every task as the pool would, and reports the cost per task.
func benchDecode(b *testing.B, input []byte, opts decode.Options) {
	b.Helper()
	b.ReportAllocs()
	b.SetBytes(int64(len(input)))
	for b.Loop() {
		dec := decode.New(bytes.NewReader(input), opts)
		n := 0
		for t := range dec.Stream(context.Background()) {
			if t.Err != nil {
				b.Fatalf("task %d: %v", t.Seq, t.Err)
			}
			n++
		}
		if err := dec.Err(); err != nil || n != benchTasks {
			b.Fatalf("read %d tasks of %d: %v", n, benchTasks, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchTasks), "ns/task")
}

// BenchmarkDecodeNDJSON reads 10,000 tasks given one per line.
func BenchmarkDecodeNDJSON(b *testing.B) { benchDecode(b, benchNDJSON(), decode.Options{}) }

// BenchmarkDecodeArray reads 10,000 tasks given as one JSON array.
func BenchmarkDecodeArray(b *testing.B) { benchDecode(b, benchArray(), decode.Options{}) }

// BenchmarkDecodeTemplate reads 10,000 plain lines through a command
// template.
func BenchmarkDecodeTemplate(b *testing.B) {
	benchDecode(b, benchLines(), decode.Options{Template: []string{"gzip", "-k", "{}"}})
}
