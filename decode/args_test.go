package decode

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseSources(t *testing.T) {
	tests := []struct {
		words   []string
		command []string
		sources []Source
		err     string
	}{
		{words: []string{"echo", "{}"}, command: []string{"echo", "{}"}},
		{words: []string{"echo", ":::", "a", "b"}, command: []string{"echo"}, sources: []Source{{Values: []string{"a", "b"}}}},
		{
			words:   []string{"echo", "{1}", ":::", "a", ":::+", "1", "::::", "f", "-", "::::+", "g"},
			command: []string{"echo", "{1}"},
			sources: []Source{{Values: []string{"a"}}, {Values: []string{"1"}, Linked: true}, {Path: "f"}, {Path: "-"}, {Path: "g", Linked: true}},
		},
		{words: []string{"echo", ":::", "::::", "f"}, err: "::: needs at least one value after it"},
		{words: []string{"echo", "::::"}, err: ":::: needs a file after it (- is stdin)"},
		{words: []string{":::", "a"}, err: `no command before ":::"`},
		{words: []string{"echo", "::::+", "f"}, err: "::::+ links its values to the input source before it, and there is none"},
		{words: []string{"echo", "::::", "-", ":::", "a", "::::", "-"}, err: ":::: - names stdin a second time"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.words, " "), func(t *testing.T) {
			command, sources, err := ParseSources(tt.words)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.command, command)
			require.Equal(t, tt.sources, sources)
		})
	}
}

// failOnRead fails the test that reads it: stdin, when input sources say
// it is not to be read.
type failOnRead struct{ t *testing.T }

func (f failOnRead) Read([]byte) (int, error) {
	f.t.Error("stdin was read")
	return 0, errors.New("not to be read")
}

// values are input sources of values, as ::: gives them.
func values(vals ...[]string) []Source {
	var srcs []Source
	for _, v := range vals {
		srcs = append(srcs, Source{Values: v})
	}
	return srcs
}

func TestArgs(t *testing.T) {
	type task struct {
		identifier string
		words      []string // command and args
	}
	linked := func(srcs []Source, at ...int) []Source {
		for _, i := range at {
			srcs[i].Linked = true
		}
		return srcs
	}
	file := func(content string) Source { return Source{Path: "f", Reader: strings.NewReader(content)} }
	tests := []struct {
		name     string
		template []string
		stdin    string // the decoder's own input; read only without Sources
		sources  []Source
		args     Args
		want     []task
	}{
		{
			name:     "values",
			template: []string{"echo", "{}"},
			sources:  values([]string{"a", "b c"}),
			want:     []task{{"a", []string{"echo", "a"}}, {"b c", []string{"echo", "b c"}}},
		},
		{
			name:     "product, first source slowest",
			template: []string{"echo", "{2}{1}"},
			sources:  values([]string{"a", "b"}, []string{"1", "2"}),
			want: []task{
				{"a 1", []string{"echo", "1a"}}, {"a 2", []string{"echo", "2a"}},
				{"b 1", []string{"echo", "1b"}}, {"b 2", []string{"echo", "2b"}},
			},
		},
		{
			name:     "arguments appended as words without a replacement string",
			template: []string{"printf"},
			sources:  values([]string{"a"}, []string{"1 x", "2"}),
			want:     []task{{"a 1 x", []string{"printf", "a", "1 x"}}, {"a 2", []string{"printf", "a", "2"}}},
		},
		{
			name:     "{} of several arguments is a word for each, the text around it joined to the first and last",
			template: []string{"cmd", "x{}y", "{/}"},
			sources:  values([]string{"d/a"}, []string{"e/1"}),
			want:     []task{{"d/a e/1", []string{"cmd", "xd/a", "e/1y", "a", "1"}}},
		},
		{
			name:     ":::+ pairs as far as the shortest goes",
			template: []string{"echo"},
			sources:  linked(values([]string{"a", "b", "c"}, []string{"1", "2"}, []string{"x", "y"}), 1),
			want: []task{
				{"a 1 x", []string{"echo", "a", "1", "x"}}, {"a 1 y", []string{"echo", "a", "1", "y"}},
				{"b 2 x", []string{"echo", "b", "2", "x"}}, {"b 2 y", []string{"echo", "b", "2", "y"}},
			},
		},
		{
			name:     "--link pairs as far as the longest goes, the shorter starting over",
			template: []string{"echo"},
			sources:  values([]string{"a", "b", "c"}, []string{"1", "2"}),
			args:     Args{Link: true},
			want: []task{
				{"a 1", []string{"echo", "a", "1"}}, {"b 2", []string{"echo", "b", "2"}}, {"c 1", []string{"echo", "c", "1"}},
			},
		},
		{
			name:     "files, stdin unread",
			template: []string{"echo", "{1}", "{2}"},
			sources:  []Source{file("f1\n\nf2\n"), {Values: []string{"x"}}},
			want:     []task{{"f1 x", []string{"echo", "f1", "x"}}, {"f2 x", []string{"echo", "f2", "x"}}},
		},
		{
			name:     "an empty source makes no task",
			template: []string{"echo"},
			sources:  []Source{{Values: []string{"a"}}, file("")},
			want:     []task{},
		},
		{
			name:     "positional path forms and from the end",
			template: []string{"echo", "{1/}", "{1//}", "{1.}", "{1/.}", "{-1}", "{-2/.}"},
			sources:  values([]string{"d/a.x"}, []string{"e/b.tar.gz"}),
			want:     []task{{"d/a.x e/b.tar.gz", []string{"echo", "a.x", "d", "d/a", "a", "e/b.tar.gz", "a"}}},
		},
		{
			name:     "past the last argument: nothing, and a word of nothing else is left out",
			template: []string{"echo", "{3}", "x{3}y", "{-3}{9}", "{0}", "{1"},
			sources:  values([]string{"a"}, []string{"b"}),
			want:     []task{{"a b", []string{"echo", "xy", "{0}", "{1"}}},
		},
		{
			name:     "--colsep",
			template: []string{"echo", "{2}-{1}", "{}"},
			stdin:    "a,b\nc;;d\n",
			args:     Args{Colsep: "[,;]+"},
			want:     []task{{"a b", []string{"echo", "b-a", "a", "b"}}, {"c d", []string{"echo", "d-c", "c", "d"}}},
		},
		{
			name:     "--header at tabs",
			template: []string{"echo", "{b}{a}", "{a/}", "{zz}"},
			stdin:    "a\tb\nx/1\t2\n",
			args:     Args{Header: true},
			want:     []task{{"x/1 2", []string{"echo", "2x/1", "1", "{zz}"}}},
		},
		{
			name:     "--header of values and a file, numbered over the sources",
			template: []string{"echo", "{name}", "{age}", "{n}"},
			sources:  []Source{file("name,age\nann,31\n"), {Values: []string{"n", "1", "2"}}},
			args:     Args{Header: true, Colsep: ","},
			want:     []task{{"ann 31 1", []string{"echo", "ann", "31", "1"}}, {"ann 31 2", []string{"echo", "ann", "31", "2"}}},
		},
		{
			name:     "-n",
			template: []string{"echo", "x{}y", "{1}"},
			sources:  values([]string{"a", "b", "c"}),
			args:     Args{MaxArgs: 2},
			want:     []task{{"a b", []string{"echo", "xa", "by", "a"}}, {"c", []string{"echo", "xcy", "c"}}},
		},
		{
			name:     "-N repeats a word of {} for each argument",
			template: []string{"echo", "x{}y", "{2}"},
			sources:  values([]string{"a", "b", "c"}),
			args:     Args{MaxArgs: 2, Context: true},
			want:     []task{{"a b", []string{"echo", "xay", "xby", "b"}}, {"c", []string{"echo", "xcy"}}},
		},
		{
			name:     "-X spreads the last items over the slots",
			template: []string{"echo", "{#}"},
			sources:  values(strings.Fields("a b c d e f g")),
			args:     Args{Fit: true, Context: true, Slots: 3},
			want: []task{
				{"a b c", []string{"echo", "1"}}, {"d e f", []string{"echo", "2"}}, {"g", []string{"echo", "3"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var in io.Reader = strings.NewReader(tt.stdin)
			if tt.sources != nil {
				in = failOnRead{t}
			}
			tasks, err := decodeAll(t, in, Options{Template: tt.template, Sources: tt.sources, Args: tt.args})
			require.NoError(t, err)
			requireSeq(t, tasks)
			got := []task{}
			for _, tk := range tasks {
				require.NoError(t, tk.Err)
				got = append(got, task{tk.Identifier, append([]string{tk.Command}, tk.Args...)})
			}
			require.Equal(t, tt.want, got)
		})
	}
}

// TestArgsNoCommand: a command that is only a positional string past the
// task's arguments (or any, with --pipe) leaves none: the task fails with
// why, and the others run.
func TestArgsNoCommand(t *testing.T) {
	tasks, err := decodeAll(t, failOnRead{t}, Options{Template: []string{"{2}"}, Sources: values([]string{"a", "b c"}), Args: Args{Colsep: " "}})
	require.NoError(t, err)
	require.Len(t, tasks, 2)
	require.ErrorContains(t, tasks[0].Err, "no command: the first word of the command stands for an argument this task does not have")
	require.NoError(t, tasks[1].Err)
	require.Equal(t, []string{"c"}, append([]string{tasks[1].Command}, tasks[1].Args...))

	tasks, err = decodeAll(t, strings.NewReader("x\n"), Options{Template: []string{"{1}"}, Pipe: &Pipe{Block: 1 << 20, RecEnd: "\n"}})
	require.NoError(t, err)
	require.Len(t, tasks, 1)
	require.ErrorContains(t, tasks[0].Err, "no command")
}

func TestArgsWhere(t *testing.T) {
	long := strings.Repeat("x", MaxItem+1)
	opts := Options{Template: []string{"echo"}, Sources: []Source{{Path: "names.txt", Reader: strings.NewReader("a\n" + long + "\nb\n")}, {Values: []string{"1", "2"}}}}
	tasks, err := decodeAll(t, failOnRead{t}, opts)
	require.NoError(t, err)
	require.Len(t, tasks, 5, "a and b with each value, and one task for the long line")
	require.Equal(t, "line 1 of names.txt", tasks[0].Where)
	require.EqualError(t, tasks[2].Err, `task "`+strings.Repeat("x", 40)+`..." (line 2 of names.txt): the line is longer than 1 MiB: items become arguments, which cannot be that long`)
	require.Equal(t, "b 2", tasks[4].Identifier)

	// A source read whole before the first task cannot report a long item
	// in a task: the input is refused.
	opts.Sources[0], opts.Sources[1] = Source{Values: []string{"1"}}, Source{Path: "-", Reader: strings.NewReader(long)}
	tasks, err = decodeAll(t, failOnRead{t}, opts)
	require.Empty(t, tasks)
	var framing *FramingError
	require.ErrorAs(t, err, &framing)
	require.EqualError(t, err, "line 1 of stdin: the line is longer than 1 MiB: items become arguments, which cannot be that long")
}

// TestFitSize: -X fills each task as far as MaxCommandLine allows, and
// not further: its command line fits, and would not with the next item.
// The size is reckoned without building the command, for every form of a
// word.
func TestFitSize(t *testing.T) {
	var items []string
	for i := range 40_000 {
		items = append(items, fmt.Sprintf("d%d/item%d.x", i%7, i))
	}
	templates := [][]string{
		{"echo"},
		{"echo", "{}"},
		{"echo", "pre{}post", "{/.}", "{1}", "{-1//}", "{#}", "{%}", "{3}"},
	}
	size := func(words []string) int {
		n := 0
		for _, w := range words {
			n += len(w) + 1
		}
		return n
	}
	for _, template := range templates {
		for _, context := range []bool{false, true} {
			t.Run(fmt.Sprintf("%q context %v", template, context), func(t *testing.T) {
				opts := Options{Template: template, Sources: values(items), Args: Args{Fit: true, Context: context}}
				tasks, err := decodeAll(t, failOnRead{t}, opts)
				require.NoError(t, err)
				require.Greater(t, len(tasks), 2)
				tp := parseTemplate(template, nil)
				next := 0
				for i, tk := range tasks {
					args := items[next : next+len(strings.Fields(tk.Identifier))]
					next += len(args)
					words := append([]string{tk.Command}, tk.Args...)
					require.LessOrEqual(t, size(words), MaxCommandLine, "task %d", i+1)
					wantWords, _ := tp.expand(args, tk.Seq, context)
					require.Equal(t, wantWords, words)
					if next < len(items) {
						more, _ := tp.expand(items[next-len(args):next+1], tk.Seq, context)
						require.Greater(t, size(more), MaxCommandLine, "task %d would take one more item", i+1)
					}
				}
				require.Equal(t, len(items), next)
			})
		}
	}
}

func TestSlotWordsOfSeveralArguments(t *testing.T) {
	tasks, err := decodeAll(t, failOnRead{t}, Options{Template: []string{"echo", "{%}:{}"}, Sources: values([]string{"a", "b"}), Args: Args{MaxArgs: 2}})
	require.NoError(t, err)
	require.Len(t, tasks, 1)
	require.Equal(t, []string{"1:a", "b"}, tasks[0].Args)
	require.Equal(t, [][]string{nil, {"", ":a"}, nil}, tasks[0].SlotWords)
}

// FuzzArgs checks, for any input lines, template word and way of making
// arguments, that decoding never panics and ends; that tasks are numbered
// 1..n; that without --colsep and --header every item read is in exactly
// one task, in order (the identifiers, joined, are the items).
func FuzzArgs(f *testing.F) {
	f.Add([]byte("a\nb\nc\n"), "x{}y", byte(0))
	f.Add([]byte("a,b\n\n1,2\n"), "{2}{-1/.}{name}", byte(0x0f))
	f.Add([]byte("d/a.x\ne\n"), "{1//}{%}{#}{", byte(0x12))
	f.Fuzz(func(t *testing.T, input []byte, word string, how byte) {
		args := Args{MaxArgs: int(how & 3), Context: how&4 != 0, Fit: how&8 != 0, Slots: int(how>>6) + 1}
		if how&16 != 0 {
			args.Colsep = ","
		}
		args.Header = how&32 != 0
		template := []string{"echo", word}
		tasks, err := fuzzDecode(t, input, Options{Template: template, Args: args})
		if err != nil {
			t.Fatalf("Err: %v", err)
		}
		var items []string
		for _, line := range strings.Split(strings.TrimPrefix(string(input), bom), "\n") {
			if line = strings.TrimRight(line, "\r"); strings.TrimSpace(line) != "" {
				items = append(items, line)
			}
		}
		var ids []string
		for i, task := range tasks {
			if task.Seq != int64(i+1) {
				t.Fatalf("task %d has Seq %d", i+1, task.Seq)
			}
			ids = append(ids, task.Identifier)
		}
		if args.Colsep == "" && !args.Header && strings.Join(ids, " ") != strings.Join(items, " ") {
			t.Fatalf("items %q, tasks %q", items, ids)
		}
	})
}
