package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"syscall"
	"time"

	"github.com/workerpool/workerpool/decode"
	"github.com/workerpool/workerpool/dispatch"
	"github.com/workerpool/workerpool/encode"
)

// pipeline wires decode, dispatch and encode for one run.
type pipeline struct {
	cli         *cli
	template    []string
	journal     encode.Journal // tasks already done, with --resume
	log         *slog.Logger
	stderr      io.Writer
	writeFailed bool
}

// run streams tasks from input through the pool to out and returns the
// exit status. A signal (ctx cancelled) stops reading, stops the running
// tasks and still writes every result.
func (p *pipeline) run(ctx context.Context, input io.Reader, out io.Writer) int {
	c := p.cli
	exec, err := dispatch.NewLocal(dispatch.LocalOptions{
		Timeout:   c.Timeout,
		Grace:     c.Grace,
		MaxOutput: c.MaxOutput,
		Stderr:    stderrMode(c.Stderr),
	})
	if err != nil {
		fmt.Fprintf(p.stderr, "workerpool: %v\n", err)
		return exitUsage
	}
	defer exec.Close()

	ordered := !c.NDJSON || c.Ordered
	opts := dispatch.Options{Workers: c.MaxThreads, Retries: c.Retries, FailFast: c.FailFast, Log: p.log}
	if ordered {
		opts.Window = max(256, 16*c.MaxThreads)
	}
	if p.journal != nil {
		opts.Recorded = func(t *dispatch.Task) bool { return t.Err == nil && p.journal.Take(t.Identifier) }
	}
	pool := dispatch.NewPool(exec, opts)

	runCtx, abort := context.WithCancelCause(context.Background())
	defer abort(nil)
	// A signal stops the pool and the running tasks; the results still flow.
	stopOnSignal := context.AfterFunc(ctx, func() {
		pool.Stop(dispatch.ErrCancelled)
		abort(context.Cause(ctx))
	})
	defer stopOnSignal()

	dec := decode.New(decode.Interruptible(input, pool.Stopped()), decode.Options{Template: p.template})
	results := pool.Run(runCtx, dec.Stream(context.Background()))
	start := time.Now()
	p.log.Info("pool started", "workers", pool.Workers(), "ordered", ordered, "ndjson", c.NDJSON)

	sum, werr := encode.Write(out, results, encode.Options{NDJSON: c.NDJSON, Ordered: ordered, Binary: c.Binary})
	if werr != nil {
		p.writeFailed = true
		// Nobody reads the results any more: stop everything, then let
		// the pool finish into the void.
		pool.Stop(dispatch.ErrCancelled)
		abort(werr)
		for range results {
		}
	}
	p.log.Info("done", "tasks", dec.Count(), "written", sum.Results, "failed", sum.Failed, "elapsed", time.Since(start).Round(time.Millisecond))
	return p.status(ctx, dec.Err(), werr, sum)
}

// status decides the exit status: a signal first, then a broken output,
// then an input that could not be read, then failed tasks.
func (p *pipeline) status(ctx context.Context, readErr, writeErr error, sum encode.Summary) int {
	var sig signalError
	if errors.As(context.Cause(ctx), &sig) {
		if sig.sig == syscall.SIGTERM {
			return exitTerminated
		}
		return exitInterrupted
	}
	if writeErr != nil {
		if errors.Is(writeErr, syscall.EPIPE) {
			return exitBrokenPipe
		}
		fmt.Fprintf(p.stderr, "workerpool: cannot write results: %v\n", writeErr)
		return exitUsage
	}
	if readErr != nil && !errors.Is(readErr, decode.ErrInterrupted) {
		fmt.Fprintf(p.stderr, "workerpool: cannot read tasks: %v\n", readErr)
		return exitUsage
	}
	if sum.Failed > 0 {
		return exitFailed
	}
	return exitOK
}

func stderrMode(s string) dispatch.StderrMode {
	switch s {
	case "inherit":
		return dispatch.StderrInherit
	case "discard":
		return dispatch.StderrDiscard
	}
	return dispatch.StderrCapture
}
