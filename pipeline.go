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
	progress    *progress      // nil unless --progress on a terminal
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
		return usageError(p.stderr, err)
	}
	defer exec.Close()
	if c.DryRun {
		return p.dryRun(ctx, input, out, exec)
	}

	pool := dispatch.NewPool(exec, p.poolOptions())
	// Cancelling runCtx (a signal, or nobody reading the results) stops the
	// pool and its running tasks; their results still flow.
	runCtx, abort := context.WithCancelCause(ctx)
	defer abort(nil)
	stopWatch := watchReader(out, func() { abort(errReaderGone) })
	defer stopWatch()

	dec := decode.New(decode.Interruptible(input, pool.Stopped()), decode.Options{Template: p.template})
	results := pool.Run(runCtx, dec.Stream(context.Background()))
	if p.progress != nil {
		results = p.progress.tap(results)
		defer p.progress.finish()
	}
	start := time.Now()
	p.log.Info("pool started", "workers", pool.Workers(), "ordered", c.ordered(), "ndjson", c.NDJSON)

	sum, werr := encode.Write(out, results, encode.Options{NDJSON: c.NDJSON, Ordered: c.ordered(), Binary: c.Binary, Events: c.Events})
	if werr != nil {
		p.writeFailed = true
		// Nobody reads the results any more: stop everything, then let
		// the pool finish into the void.
		abort(werr)
		for r := range results {
			r.Close()
		}
	}
	p.log.Info("done", "tasks", dec.Count(), "written", sum.Results, "failed", sum.Failed,
		"elapsed", time.Since(start).Round(time.Millisecond), "max_rss_kb", maxRSS())
	return p.status(ctx, dec.Err(), werr, sum.Failed)
}

func (p *pipeline) poolOptions() dispatch.Options {
	c := p.cli
	opts := dispatch.Options{
		Workers:  c.MaxThreads,
		Retries:  c.Retries,
		FailFast: c.FailFast,
		Events:   c.Events || p.progress != nil,
		Log:      p.log,
	}
	if c.ordered() {
		// The reorder buffer holds at most this many results.
		opts.Window = max(128, 16*c.MaxThreads)
	}
	if p.journal != nil {
		opts.Recorded = func(t *dispatch.Task) bool { return t.Err == nil && p.journal.Take(t.Identifier) }
	}
	return opts
}

// dryRun prints how each task would run, and runs none.
func (p *pipeline) dryRun(ctx context.Context, input io.Reader, out io.Writer, exec *dispatch.Local) int {
	dec := decode.New(input, decode.Options{Template: p.template})
	tasks := dec.Stream(ctx)
	bad, werr := encode.WritePlan(out, tasks, exec.Resolve)
	if werr != nil {
		p.writeFailed = true
		for range tasks {
		}
	}
	return p.status(ctx, dec.Err(), werr, bad)
}

// status decides the exit status: a signal first, then a broken output,
// then an input that could not be read, then failed tasks.
func (p *pipeline) status(ctx context.Context, readErr, writeErr error, failed int64) int {
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
		return usageError(p.stderr, fmt.Errorf("cannot write results: %w", writeErr))
	}
	if readErr != nil && !errors.Is(readErr, decode.ErrInterrupted) {
		return usageError(p.stderr, fmt.Errorf("cannot read tasks: %w", readErr))
	}
	if failed > 0 {
		return exitFailed
	}
	return exitOK
}

// maxRSS reports the pool's peak resident memory in KiB.
func maxRSS() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Maxrss
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
