package decode

import (
	"regexp"
	"strings"
)

// pathRules take an item apart as GNU parallel's replacement strings do.
// Parallel defines them by Perl code, not by a path library, and pathRules
// mirror that code byte for byte:
//
//	{/}   s:.*/::                  (base)
//	{//}  File::Basename::dirname  (dir)
//	{.}   s:\.[^/.]*$::            (noExt)
//	{/.}  s:.*/::; s:\.[^/.]*$::   (noExt of base)
//
// Each substitution replaces the first match only. In s:.*/:: Perl's "."
// stops at a newline, as Go's does by default, so an item of several lines
// loses the directories of the first line that has a "/" (dirname, which
// matches with /s, reads across lines). In s:\.[^/.]*$:: Perl's "$" may
// also match before a final newline, which changes nothing, since [^/.]
// takes the newline too. So "a/" has the base "" and the directory ".",
// and "a/b\nc/d" the base "b\nc/d".
type pathRules struct {
	// seps are the bytes that end a directory name: "/" in parallel's rules.
	seps string
	// dirs matches what {/} removes: the directories, up to the last
	// separator on the first line that has one.
	dirs *regexp.Regexp
	// ext matches what {.} removes: the last extension, when no separator
	// follows it.
	ext *regexp.Regexp
	// drives keeps the separator after a colon when trailing separators
	// are removed from a directory, so that a drive's root (`C:\`) stays
	// the root rather than becoming the drive's current directory (`C:`).
	drives bool
}

// unixPaths are GNU parallel's rules, with "/" the only separator.
var unixPaths = &pathRules{
	seps: "/",
	dirs: regexp.MustCompile(`.*/`),
	ext:  regexp.MustCompile(`\.[^/.]*$`),
}

// windowsPaths are the same rules with "\" a separator too, and a drive's
// root kept whole, as Windows reads a path. An item with neither a "\" nor
// a colon comes out as under unixPaths.
var windowsPaths = &pathRules{
	seps:   `/\`,
	dirs:   regexp.MustCompile(`.*[/\\]`),
	ext:    regexp.MustCompile(`\.[^/\\.]*$`),
	drives: true,
}

// base is {/}: s without its directories.
func (r *pathRules) base(s string) string { return removeFirst(r.dirs, s) }

// noExt is {.}: s without its last extension.
func (r *pathRules) noExt(s string) string { return removeFirst(r.ext, s) }

// dir is {//}: the directory of s, as Perl's File::Basename::dirname gives
// it. A trailing separator does not make the name before it a directory:
// the directory of "a/b/" is "a", of "a/" ".", and of "/" "/".
func (r *pathRules) dir(s string) string {
	base, dir := r.split(s)
	dir = r.trimSeps(dir)
	if base == "" {
		_, dir = r.split(dir)
		dir = r.trimSeps(dir)
	}
	return dir
}

// split is File::Basename::fileparse: s cut after its last separator
// (m{^(.*/)?(.*)}s), with "./" for the directory of a name without one.
func (r *pathRules) split(s string) (base, dir string) {
	i := strings.LastIndexAny(s, r.seps)
	if i < 0 {
		return s, "./"
	}
	return s[i+1:], s[:i+1]
}

// trimSeps removes the separators at the end of dir but for its first byte
// (s{(.)/*\z}{$1}s), so that "a//" becomes "a" and "//" becomes "/".
func (r *pathRules) trimSeps(dir string) string {
	trimmed := strings.TrimRight(dir, r.seps)
	switch {
	case trimmed == "" && dir != "":
		return dir[:1]
	case r.drives && trimmed != dir && strings.HasSuffix(trimmed, ":"):
		return dir[:len(trimmed)+1]
	}
	return trimmed
}

// removeFirst returns s without the first match of re, as Perl's s/re//
// does.
func removeFirst(re *regexp.Regexp, s string) string {
	m := re.FindStringIndex(s)
	if m == nil {
		return s
	}
	return s[:m[0]] + s[m[1]:]
}
