package encode

import (
	"bufio"
	"io"
	"time"

	json "github.com/goccy/go-json"

	"github.com/workerpool/workerpool/job"
)

// planned is a task as it would run, for --dry-run.
type planned struct {
	Seq        int64             `json:"seq"`
	Identifier string            `json:"identifier"`
	Command    string            `json:"command,omitempty"`
	Path       string            `json:"path,omitempty"`
	Args       []string          `json:"args,omitempty"`
	Env        map[string]string `json:"env,omitempty"`
	Dir        string            `json:"dir,omitempty"`
	Stdin      *string           `json:"stdin,omitempty"`
	Chunk      *plannedChunk     `json:"chunk,omitempty"`
	Timeout    string            `json:"timeout,omitempty"` // the task's own limit, "0s" for none
	Limits     *plannedLimits    `json:"limits,omitempty"`
	CPUs       int               `json:"cpus,omitempty"`   // slots it takes
	Memory     int64             `json:"memory,omitempty"` // bytes it reserves
	Fits       string            `json:"fits,omitempty"`   // where it could run
	Meta       json.RawMessage   `json:"meta,omitempty"`
	Error      string            `json:"error,omitempty"`
}

// plannedChunk is the part of the input a task of --pipe or --pipepart
// would read on its stdin, in place of the bytes themselves.
type plannedChunk struct {
	File   string `json:"file,omitempty"`
	Offset int64  `json:"offset"`
	Length int64  `json:"length"`
}

// plannedLimits are a task's limits as it would run with them: sizes in
// bytes, and the CPU time as the kernel counts it, in whole seconds.
type plannedLimits struct {
	Memory int64  `json:"memory,omitempty"`
	CPU    string `json:"cpu,omitempty"`
	Files  int64  `json:"files,omitempty"`
	FSize  int64  `json:"fsize,omitempty"`
}

func planLimits(l job.Limits) *plannedLimits {
	if !l.Set() {
		return nil
	}
	p := &plannedLimits{Memory: l.Memory, Files: l.Files, FSize: l.FSize}
	if l.CPU > 0 {
		p.CPU = (time.Duration(l.CPUSeconds()) * time.Second).String()
	}
	return p
}

// WritePlan writes each task received, until the channel is closed, as one
// JSON line describing how it would run, with its command resolved to a
// path by resolve and the limits it would run with (the run's defaults
// applied; see job.Defaults), and the room it asks for (job.Request)
// with, when fit is not nil, where it could run, as fit says, or why
// nowhere. Like a result, each line is valid UTF-8: invalid bytes
// become U+FFFD. It returns how many tasks could not run (invalid, or
// their command not found) and the first write error, after which it
// returns at once.
func WritePlan(w io.Writer, tasks <-chan job.Task, resolve func(*job.Task) (string, error), fit func(job.Request) (string, error)) (bad int64, err error) {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for t := range tasks {
		p := planned{Seq: t.Seq, Identifier: t.Identifier, Meta: validMeta(t.Meta)}
		if t.Err == nil {
			p.Command, p.Args, p.Env, p.Dir = t.Command, t.Args, t.Env, t.Dir
			switch {
			case t.Chunk != nil:
				p.Chunk = &plannedChunk{File: t.Chunk.Path, Offset: t.Chunk.Offset, Length: t.Chunk.Length}
			case t.HasStdin:
				p.Stdin = &t.Stdin
			}
			if t.HasTimeout {
				p.Timeout = t.Timeout.String() // "0s": no limit, whatever --timeout says
			}
			p.Limits = planLimits(t.Limits)
			p.CPUs, p.Memory = max(t.Request.CPUs, 1), t.Request.Memory
			p.Path, t.Err = resolve(&t)
			if fit != nil && t.Err == nil {
				p.Fits, t.Err = fit(t.Request)
			}
		}
		if t.Err != nil {
			p.Error = t.Err.Error()
			bad++
		}
		if err := enc.Encode(&p); err != nil {
			return bad, err
		}
		if err := bw.Flush(); err != nil {
			return bad, err
		}
	}
	return bad, nil
}
