package main

import (
	"fmt"
	"io"
	"os"

	"github.com/alecthomas/kong"
	"github.com/posener/complete"
	"github.com/willabides/kongplete"
)

// answerCompletion answers the shell's tab completion, when the shell asks for it
// (COMP_LINE set), then calls exit.
func answerCompletion(parser *kong.Kong, exit func(int)) {
	kongplete.Complete(parser,
		kongplete.WithPredictor("file", complete.PredictFiles("*")),
		kongplete.WithExitFunc(exit))
}

// printCompletion prints the shell line that has the shell ask workerpool
// itself for completions.
func printCompletion(w io.Writer, shell string) error {
	bin, err := os.Executable()
	if err != nil {
		bin = "workerpool"
	}
	if shell == "zsh" {
		fmt.Fprintln(w, "autoload -U +X bashcompinit && bashcompinit")
	}
	fmt.Fprintf(w, "complete -C %s workerpool\n", bin)
	return nil
}
