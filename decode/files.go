package decode

// fileNames are the names of the files each task stages on its host
// (Options.Transfer and Options.Return), taken apart as the template's
// words are, so that the replacement strings work in them.
type fileNames struct {
	transfer, ret []*template
}

// parseFileNames takes apart the names of opts' files; names are the
// columns' names of a header, as for parseTemplate.
func parseFileNames(opts Options, names map[string]int) *fileNames {
	parse := func(words []string) []*template {
		var tps []*template
		for _, w := range words {
			tps = append(tps, parseTemplate([]string{w}, names))
		}
		return tps
	}
	return &fileNames{transfer: parse(opts.Transfer), ret: parse(opts.Return)}
}

// expand returns the names of the files of the task of args and number
// seq. A name that holds "{}" stands for one file per argument, when the
// task has several (-n, -N, -X); a name without a replacement string is
// the same for every task.
func (f *fileNames) expand(args []string, seq int64) (transfer, ret []string) {
	return expandNames(f.transfer, args, seq), expandNames(f.ret, args, seq)
}

func expandNames(tps []*template, args []string, seq int64) []string {
	var names []string
	for _, tp := range tps {
		words, _ := tp.expand(args, seq, true)
		if !tp.places {
			words = words[:1] // expand appends the arguments to a word without replacement strings
		}
		names = append(names, words...)
	}
	return names
}
