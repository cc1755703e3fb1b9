package remote

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	json "github.com/goccy/go-json"

	"github.com/workerpool/workerpool/internal/shorten"
)

// greet reads the agent's hello and checks that it speaks the pool's
// protocol. It gives up when ctx is done or helloTimeout passes.
func (c *conn) greet(ctx context.Context) error {
	read, err := awaitHello(ctx, c.stdout, &c.hello, c.kill)
	if !read {
		c.reap()
		return err
	}
	if err != nil {
		// The agent did not start: ssh failed, or the program is missing
		// or too old, or the login said something else. Its exit status
		// and stderr tell which.
		c.stdin.Close()
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			c.kill()
		}
		return c.exitError("the workerpool agent did not start", err)
	}
	if c.hello.Protocol != Protocol {
		c.kill()
		c.reap()
		return fmt.Errorf("its workerpool %s speaks agent protocol %d and this one %d: run the same version on both (or use --push)",
			c.hello.Agent, c.hello.Protocol, Protocol)
	}
	return nil
}

// awaitHello reads the agent's hello from r into h, and waits for it until
// helloTimeout passes or ctx is done. Then it calls stop, which must make
// the read return, waits for that, and returns read false and why it gave
// up. Otherwise read is true, and err is readHello's.
func awaitHello(ctx context.Context, r *bufio.Reader, h *hello, stop func()) (read bool, err error) {
	got := make(chan error, 1)
	go func() { got <- readHello(r, h) }()
	timer := time.NewTimer(helloTimeout)
	defer timer.Stop()
	select {
	case err = <-got:
		return true, err
	case <-timer.C:
		err = fmt.Errorf("no answer within %s", helloTimeout)
	case <-ctx.Done():
		err = context.Cause(ctx)
	}
	stop()
	<-got
	return false, err
}

const (
	// maxGreeting is how many lines at most may come before an agent's
	// hello: what a login shell prints on the way (a banner from a
	// profile), which is skipped.
	maxGreeting = 100
	// maxGreetingBytes bounds those lines in bytes, for noise that has no
	// line ends.
	maxGreetingBytes = 16 << 10
)

// readHello reads the agent's hello, skipping what comes before it: lines
// a login prints, and text without a line end. It gives up after
// maxGreeting lines or maxGreetingBytes bytes without a hello, quoting the
// first of them.
func readHello(r *bufio.Reader, h *hello) error {
	var before []byte
	lines := 0
	for {
		b, err := r.ReadByte()
		if err != nil {
			if err == io.EOF && len(before) > 0 {
				return fmt.Errorf("%w after %q", io.ErrUnexpectedEOF, shorten.Line(before, 80))
			}
			return err
		}
		before = append(before, b)
		if bytes.HasSuffix(before, []byte(helloMarker)) {
			rest, err := r.ReadBytes('\n')
			if err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return err
			}
			line := append([]byte(helloMarker), rest...)
			if err := json.Unmarshal(line, h); err != nil {
				return fmt.Errorf("unexpected hello %q: %w", shorten.Line(line, 80), err)
			}
			return nil
		}
		if b == '\n' {
			lines++
		}
		if lines >= maxGreeting || len(before) >= maxGreetingBytes {
			return fmt.Errorf("no hello in the first %d lines or %d KiB; the host said %q", maxGreeting, maxGreetingBytes>>10, shorten.Line(before, 80))
		}
	}
}
