package decode

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/require"
)

// prompt bounds how long a stopped Read may take to return: generous for a
// busy machine, short next to a reader that never returns.
const prompt = 5 * time.Second

func TestInterruptibleReadsData(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 3*chunkSize/16+7) // several chunks and a bit
	tests := []struct {
		name string
		data []byte
		wrap func(io.Reader) io.Reader
	}{
		{name: "empty", data: nil},
		{name: "small", data: []byte("hello\n")},
		{name: "several chunks", data: big},
		{name: "one byte at a time underneath", data: big[:5000], wrap: iotest.OneByteReader},
		{name: "data with EOF", data: big, wrap: iotest.DataErrReader},
		{name: "half reads underneath", data: big, wrap: iotest.HalfReader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stop := make(chan struct{})
			defer close(stop)
			var src io.Reader = bytes.NewReader(tt.data)
			if tt.wrap != nil {
				src = tt.wrap(src)
			}
			got, err := io.ReadAll(Interruptible(src, stop))
			require.NoError(t, err)
			require.Equal(t, len(tt.data), len(got))
			require.True(t, bytes.Equal(tt.data, got), "the data must come through unchanged")
		})
	}
	t.Run("small reads", func(t *testing.T) {
		stop := make(chan struct{})
		defer close(stop)
		got, err := io.ReadAll(iotest.OneByteReader(Interruptible(bytes.NewReader(big), stop)))
		require.NoError(t, err)
		require.True(t, bytes.Equal(big, got))
	})
	t.Run("io.Reader contract", func(t *testing.T) {
		stop := make(chan struct{})
		defer close(stop)
		require.NoError(t, iotest.TestReader(Interruptible(bytes.NewReader(big), stop), big))
	})
	t.Run("EOF is sticky", func(t *testing.T) {
		stop := make(chan struct{})
		defer close(stop)
		r := Interruptible(strings.NewReader("x"), stop)
		_, err := io.ReadAll(r)
		require.NoError(t, err)
		for range 3 {
			n, err := r.Read(make([]byte, 10))
			require.Zero(t, n)
			require.ErrorIs(t, err, io.EOF)
		}
	})
}

func TestInterruptibleReportsReadError(t *testing.T) {
	broken := errors.New("device gone")
	stop := make(chan struct{})
	defer close(stop)
	r := Interruptible(io.MultiReader(strings.NewReader("some data"), iotest.ErrReader(broken)), stop)
	got, err := io.ReadAll(r)
	require.Equal(t, "some data", string(got))
	require.ErrorIs(t, err, broken)
	_, err = r.Read(make([]byte, 1))
	require.ErrorIs(t, err, broken, "the error is sticky")
}

// readAsync starts a Read of r and returns where its outcome arrives.
func readAsync(r io.Reader) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := r.Read(make([]byte, 100))
		done <- err
	}()
	return done
}

// TestInterruptibleStopUnblocksRead: a Read blocked on a reader that never
// returns (a terminal, a pipe nobody writes to) returns ErrInterrupted soon
// after stop is closed.
func TestInterruptibleStopUnblocksRead(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close() // releases the goroutine still blocked on pr
	stop := make(chan struct{})
	r := Interruptible(pr, stop)

	done := readAsync(r)
	select {
	case err := <-done:
		require.FailNow(t, "Read returned with nothing to read", "err %v", err)
	case <-time.After(50 * time.Millisecond):
	}

	close(stop)
	select {
	case err := <-done:
		require.ErrorIs(t, err, ErrInterrupted)
	case <-time.After(prompt):
		require.FailNow(t, "Read still blocked after stop")
	}

	// Every later Read reports the stop at once.
	n, err := r.Read(make([]byte, 10))
	require.Zero(t, n)
	require.ErrorIs(t, err, ErrInterrupted)
}

func TestInterruptibleStopBeforeRead(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	stop := make(chan struct{})
	close(stop)
	r := Interruptible(pr, stop)
	select {
	case err := <-readAsync(r):
		require.ErrorIs(t, err, ErrInterrupted)
	case <-time.After(prompt):
		require.FailNow(t, "Read blocked although stop was closed")
	}
}

// TestInterruptibleStopDropsBufferedData: once stopped, a Read returns
// ErrInterrupted even when data read earlier is still buffered, so nothing
// is read after a stop.
func TestInterruptibleStopDropsBufferedData(t *testing.T) {
	stop := make(chan struct{})
	r := Interruptible(strings.NewReader("abcdef"), stop)
	p := make([]byte, 2)
	n, err := r.Read(p)
	require.NoError(t, err)
	require.Equal(t, "ab", string(p[:n]))

	close(stop)
	n, err = r.Read(p)
	require.Zero(t, n)
	require.ErrorIs(t, err, ErrInterrupted)
}

// TestInterruptibleDataThenStop: data written before the stop is read as
// usual while the writer keeps the pipe open.
func TestInterruptibleDataThenStop(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	stop := make(chan struct{})
	r := Interruptible(pr, stop)
	go func() { _, _ = pw.Write([]byte("line one\n")) }()

	p := make([]byte, 100)
	n, err := r.Read(p)
	require.NoError(t, err)
	require.Equal(t, "line one\n", string(p[:n]))

	done := readAsync(r)
	close(stop)
	select {
	case err := <-done:
		require.ErrorIs(t, err, ErrInterrupted)
	case <-time.After(prompt):
		require.FailNow(t, "Read still blocked after stop")
	}
}

// TestStreamOverInterruptible: the way main reads stdin. A stop while the
// decoder waits for more input closes the task channel promptly, and Err
// reports ErrInterrupted (not a framing error), in every framing.
func TestStreamOverInterruptible(t *testing.T) {
	tests := []struct {
		name    string
		written string // before the stop; the writer never closes
		opts    Options
		want    int // tasks received before the stop
	}{
		{name: "nothing written", written: ""},
		{name: "blank lines only", written: "\n\n  "},
		{name: "NDJSON", written: "{\"command\": \"a\"}\n{\"command\": \"b\"}\n", want: 2},
		{name: "NDJSON, line half written", written: "{\"command\": \"a\"}\n{\"comm", want: 1},
		{name: "array, after an element", written: `[{"command": "a"}, {"command": "b"}`, want: 2},
		{name: "array, after a comma", written: `[{"command": "a"}, {"command": "b"},`, want: 2},
		{name: "array, inside an element", written: `[{"command": "a"}, {"comm`, want: 1},
		{name: "array, after the bracket", written: `[`},
		{name: "template", written: "x\ny\n", opts: Options{Template: []string{"echo"}}, want: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr, pw := io.Pipe()
			defer pw.Close()
			go func() { _, _ = pw.Write([]byte(tt.written)) }()
			stop := make(chan struct{})
			dec := New(Interruptible(pr, stop), tt.opts)
			out := dec.Stream(t.Context())

			for range tt.want {
				task := receive(t, out)
				require.NoError(t, task.Err)
			}
			select {
			case task, ok := <-out:
				require.FailNow(t, "unexpected receive", "task %+v, open %v", task, ok)
			case <-time.After(50 * time.Millisecond):
			}

			close(stop)
			select {
			case task, ok := <-out:
				require.False(t, ok, "task %+v sent after the stop", task)
			case <-time.After(prompt):
				require.FailNow(t, "the decoder did not stop")
			}
			require.ErrorIs(t, dec.Err(), ErrInterrupted)
			var framing *FramingError
			require.False(t, errors.As(dec.Err(), &framing), "a stop is not a framing error: %v", dec.Err())
			require.Equal(t, int64(tt.want), dec.Count())
		})
	}
}
