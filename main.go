// Command workerpool runs child processes in parallel and reports one JSON
// result per task. Its command line is package internal/cli; the run is
// package pipeline.
package main

import (
	"os"

	"github.com/workerpool/workerpool/internal/cli"
)

// version is set at build time with -ldflags "-X main.version=...".
var version string

func main() { os.Exit(cli.Main(version)) }
