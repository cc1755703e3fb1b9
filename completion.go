package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/alecthomas/kong"
	"github.com/posener/complete"
	"github.com/willabides/kongplete"
)

// answerCompletion answers the shell's tab completion, then calls exit,
// when the shell asks for it: COMP_LINE is set, names this program, and the
// arguments are none or the three that bash's "complete -C" passes (the
// command, the word, the word before). A COMP_LINE merely left in the
// environment does not turn a run into a completion.
func answerCompletion(parser *kong.Kong, args []string, exit func(int)) {
	line := strings.Fields(os.Getenv("COMP_LINE"))
	if len(line) == 0 || !namesUs(line[0]) || len(args) != 0 && (len(args) != 3 || !namesUs(args[0])) {
		return
	}
	kongplete.Complete(parser,
		kongplete.WithPredictor("file", complete.PredictFiles("*")),
		kongplete.WithExitFunc(exit))
}

// namesUs reports whether word names this program.
func namesUs(word string) bool {
	base := filepath.Base(word)
	return base == "workerpool" || base == filepath.Base(os.Args[0])
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
