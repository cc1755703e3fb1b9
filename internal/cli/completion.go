package cli

import (
	"cmp"
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
)

// answerCompletion answers the shell's tab completion, then calls exit,
// when the shell asks for it: COMP_LINE is set, names this program, and the
// arguments are none (what the lines printCompletion prints pass) or the
// three that bash's "complete -C" passes (the command, the word, the word
// before). A COMP_LINE merely left in the environment does not turn a run
// into a completion. It prints what completions returns, one candidate per
// line, and never an error: the shell would offer it as a completion.
func answerCompletion(parser *kong.Kong, args []string, exit func(int)) {
	line := os.Getenv("COMP_LINE")
	fields := strings.Fields(line)
	if len(fields) == 0 || !namesUs(fields[0]) || len(args) != 0 && (len(args) != 3 || !namesUs(args[0])) {
		return
	}
	for _, c := range completions(parser.Model.Node, cursorWords(line, os.Getenv("COMP_POINT"))) {
		fmt.Fprintln(parser.Stdout, c)
	}
	exit(0)
}

// cursorWords returns the words of the command line after the program's
// name, up to the cursor at byte point (the end of the line when point is
// not a number within it); the last one is the word being completed, ""
// after a space. It returns no words when the cursor is on the program's
// name.
func cursorWords(line, point string) []string {
	if p, err := strconv.Atoi(point); err == nil && p >= 0 && p < len(line) {
		line = line[:p]
	}
	words := strings.Fields(line)
	if line != "" && unicode.IsSpace(rune(line[len(line)-1])) {
		words = append(words, "")
	}
	if len(words) < 2 {
		return nil
	}
	return words[1:]
}

// completions returns what the last of words, the words before the cursor,
// may complete to, given the flags of app:
//   - after a "--", a command: see completeCommand;
//   - after a flag that takes a value, or after its "=", the flag's value:
//     its enum's values, or file names for a flag tagged predictor:"file";
//   - a word that starts with "-": the names of the flags ("--name" and
//     "-s"), but not their aliases, nor hidden flags;
//   - anything else: nothing, as the tasks argument cannot be guessed.
func completions(app *kong.Node, words []string) []string {
	if len(words) == 0 {
		return nil
	}
	if i := slices.Index(words[:len(words)-1], "--"); i >= 0 {
		return completeCommand(words[i+1:])
	}
	last, before := words[len(words)-1], ""
	if len(words) > 1 {
		before = words[len(words)-2]
	}
	// bash completes what follows the last "=" of a word, as in --stderr=di.
	if i := strings.LastIndex(last, "="); i >= 0 {
		before, last = last[:i], last[i+1:]
	}
	var names []string
	for _, f := range app.Flags {
		if f.Hidden {
			continue
		}
		if slices.Contains(flagNames(f), before) && !f.IsBool() {
			if f.Tag.Get("predictor") == "file" {
				return files(last)
			}
			return withPrefix(f.EnumSlice(), last)
		}
		names = append(names, flagNames(f)...)
	}
	if !strings.HasPrefix(last, "-") {
		return nil
	}
	return withPrefix(names, last)
}

// flagNames returns the names a flag is completed as: "--name", and "-s"
// when it has a short name.
func flagNames(f *kong.Flag) []string {
	if f.Short == 0 {
		return []string{"--" + f.Name}
	}
	return []string{"--" + f.Name, "-" + string(f.Short)}
}

// withPrefix returns the words of candidates that start with prefix, but
// for the empty one (kong gives a flag without an enum the enum [""]),
// reusing candidates.
func withPrefix(candidates []string, prefix string) []string {
	return slices.DeleteFunc(candidates, func(c string) bool { return c == "" || !strings.HasPrefix(c, prefix) })
}

// completeCommand returns the completions of the last of words, the words
// after "--": a program on PATH for the first word, unless it is a path, and
// a file name otherwise.
func completeCommand(words []string) []string {
	last := words[len(words)-1]
	if len(words) > 1 || strings.ContainsRune(last, '/') || strings.ContainsRune(last, filepath.Separator) {
		return files(last)
	}
	return programs(last)
}

// files returns the paths that start with prefix, a path as typed: the
// files and directories in the directory it names up to its last "/",
// directories with a "/" after them. A prefix that names a directory ("",
// "dir/", and "." taken as "./") offers the directory itself too, and a
// lone directory that matches is listed in its stead: either way the shell
// stops at the directory's name, rather than ending the word with a space
// or running on into the only file in the directory.
func files(prefix string) []string {
	if prefix == "." {
		prefix = "./"
	}
	names := listDir(prefix)
	if len(names) == 1 && strings.HasSuffix(names[0], "/") {
		names = listDir(names[0])
	}
	return names
}

// listDir returns the paths in the directory that prefix names up to its
// last "/" that start with prefix, and the directory itself when prefix
// ends there; see files.
func listDir(prefix string) []string {
	dir := prefix[:strings.LastIndexAny(prefix, "/"+string(filepath.Separator))+1]
	entries, err := os.ReadDir(cmp.Or(dir, "."))
	if err != nil {
		return nil
	}
	var names []string
	if dir == prefix {
		names = append(names, cmp.Or(dir, "./"))
	}
	for _, e := range entries {
		name := dir + e.Name()
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		if info, err := os.Stat(name); err == nil && info.IsDir() {
			name += "/"
		}
		names = append(names, name)
	}
	return names
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
