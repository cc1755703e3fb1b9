package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/alecthomas/kong"
	"github.com/kballard/go-shellquote"
	"github.com/posener/complete"
	"github.com/willabides/kongplete"
)

// answerCompletion answers the shell's tab completion, then calls exit,
// when the shell asks for it: COMP_LINE is set, names this program, and the
// arguments are none (what the lines printCompletion prints pass) or the
// three that bash's "complete -C" passes (the command, the word, the word
// before). A COMP_LINE merely left in the environment does not turn a run
// into a completion.
//
// Flags and their values are kong's to complete. After a "--", the words
// are a command: its first word completes to the programs on PATH, the
// rest to file names.
func answerCompletion(parser *kong.Kong, args []string, exit func(int)) {
	line := strings.Fields(os.Getenv("COMP_LINE"))
	if len(line) == 0 || !namesUs(line[0]) || len(args) != 0 && (len(args) != 3 || !namesUs(args[0])) {
		return
	}
	if words, ok := commandWords(os.Getenv("COMP_LINE"), os.Getenv("COMP_POINT")); ok {
		for _, w := range completeCommand(words) {
			fmt.Fprintln(parser.Stdout, w)
		}
		exit(0)
		return
	}
	kongplete.Complete(parser,
		kongplete.WithPredictor("file", complete.PredictFiles("*")),
		kongplete.WithExitFunc(exit))
}

// commandWords returns the words of the command line after its first "--",
// up to the cursor, the last one the word being completed ("" after a
// space); ok is false when the cursor is not past a "--".
func commandWords(line, point string) (words []string, ok bool) {
	if p, err := strconv.Atoi(point); err == nil && p >= 0 && p < len(line) {
		line = line[:p]
	}
	fields := strings.Fields(line)
	if line != "" && unicode.IsSpace(rune(line[len(line)-1])) {
		fields = append(fields, "")
	}
	if len(fields) < 2 {
		return nil, false
	}
	i := slices.Index(fields[1:len(fields)-1], "--")
	if i < 0 {
		return nil, false
	}
	return fields[i+2:], true
}

// completeCommand returns the completions of the last of words, the words
// after "--": a program on PATH for the first word, unless it is a path, and
// a file name otherwise.
func completeCommand(words []string) []string {
	last := words[len(words)-1]
	if len(words) > 1 || strings.ContainsRune(last, '/') || strings.ContainsRune(last, filepath.Separator) {
		var matches []string
		for _, f := range complete.PredictFiles("*").Predict(complete.Args{Last: last}) {
			if strings.HasPrefix(f, last) {
				matches = append(matches, f)
			}
		}
		slices.Sort(matches)
		return matches
	}
	return programs(last)
}

// programs returns the names of the programs on PATH that start with
// prefix, sorted, each once.
func programs(prefix string) []string {
	var names []string
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if dir == "" {
			dir = "."
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), prefix) {
				continue
			}
			if info, err := os.Stat(filepath.Join(dir, e.Name())); err == nil && executable(info) {
				names = append(names, e.Name())
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// executable reports whether a file found on PATH can be run.
func executable(info os.FileInfo) bool {
	if !info.Mode().IsRegular() {
		return false
	}
	return runtime.GOOS == "windows" || info.Mode().Perm()&0o111 != 0
}

// namesUs reports whether word names this program.
func namesUs(word string) bool {
	base := filepath.Base(word)
	return base == "workerpool" || base == filepath.Base(os.Args[0])
}

// printCompletion prints the shell code that has the shell ask workerpool
// itself for completions.
func printCompletion(w io.Writer, shell string) error {
	bin, err := os.Executable()
	if err != nil {
		bin = "workerpool"
	}
	_, err = io.WriteString(w, completionScript(shell, bin))
	return err
}

// completionScript is the shell code that has shell ask bin for the
// completions of workerpool's command line: bin runs with COMP_LINE (and,
// but for fish, COMP_POINT) set and no arguments, and prints one completion
// a line.
//
// bash and zsh (through bashcompinit) call a function rather than run bin
// with "complete -C": that passes the word before the cursor as an
// argument, and when it is "--" the program would take it for the start of
// a command.
func completionScript(shell, bin string) string {
	switch shell {
	case "fish":
		return "function __workerpool_complete; set -lx COMP_LINE (commandline -cp); " + fishQuote(bin) + "; end\n" +
			"complete -c workerpool -f -a '(__workerpool_complete)'\n"
	case "zsh":
		return "autoload -U +X bashcompinit && bashcompinit\n" + bashScript(bin)
	default:
		return bashScript(bin)
	}
}

func bashScript(bin string) string {
	return `_workerpool_complete() { local l; COMPREPLY=(); while IFS= read -r l; do COMPREPLY+=("$l"); done < <(COMP_LINE="$COMP_LINE" COMP_POINT="$COMP_POINT" ` +
		shellquote.Join(bin) + "); }\n" +
		"complete -F _workerpool_complete workerpool\n"
}

// fishQuote quotes s as one word for fish.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
