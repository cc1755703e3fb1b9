package remote

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/workerpool/workerpool/internal/shorten"
)

// binary is this program, as --push copies it.
type binary struct {
	path string
	sum  string // hex SHA-256 of its bytes
	size int64
}

// self finds this program, its hash and its size, once.
var self = sync.OnceValues(func() (binary, error) {
	path, err := os.Executable()
	if err != nil {
		return binary{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return binary{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return binary{}, err
	}
	return binary{path: path, sum: hex.EncodeToString(h.Sum(nil)), size: n}, nil
})

// dir is the directory where --push keeps b on a host, as a shell word:
// under the remote home, named by the start of its hash, so that hosts
// keep each version once and a changed binary is copied anew. It holds
// the program, named workerpool, and its stamp, which holds b.stamp() and
// is written once the copy is checked.
func (b binary) dir() string { return pushCache + "/" + b.name() }

// name is the name of b's directory in pushCache.
func (b binary) name() string { return b.sum[:16] }

// pushCache is the directory, as a shell word, where --push keeps a copy
// of each version it has copied to a host, each in a directory of its
// own (binary.dir).
const pushCache = `"$HOME"/.cache/workerpool`

// DefaultPushKeep is how many versions --push keeps on a host: the one it
// uses, and those used last before it.
const DefaultPushKeep = 3

// stamp is what the stamp beside a checked copy of b holds.
func (b binary) stamp() string { return fmt.Sprintf("%s %d", b.sum, b.size) }

// push makes sure that dest has this very program, copying it there when
// it has not, and returns its path there. It refuses a host whose system
// or architecture differs from this program's.
//
// A copy counts only once it is checked: a program without its stamp, or
// whose size differs from the stamp's, is copied again. The copy goes to
// a temporary file, checked for its size and hash before it is renamed
// into place; a copy that fails leaves nothing behind, and its error
// says why: cut short, damaged, or no room on the host.
//
// Then it removes from the host's pushCache the versions past the keep
// (at least 1) used last, the one it uses first (see pruneScript).
func push(ctx context.Context, tr Transport, dest string, keep int) (string, error) {
	bin, err := self()
	if err != nil {
		return "", fmt.Errorf("--push: cannot read this program: %w", err)
	}
	out, err := runRemote(ctx, tr, dest, inSh(probeScript(bin, keep)), nil)
	if err != nil {
		return "", fmt.Errorf("--push: cannot probe the host: %w", err)
	}
	lines := strings.SplitN(string(out), "\n", 3)
	fields := strings.Fields(lines[0])
	if len(fields) < 2 || len(lines) < 2 {
		return "", fmt.Errorf("--push: uname -sm said %q", out)
	}
	path := lines[1] + "/workerpool"
	if len(lines) == 3 && slices.Contains(strings.Fields(lines[2]), "present") {
		return path, nil
	}
	goos, goarch := platformOf(fields[0], fields[1])
	if goos != runtime.GOOS || goarch != runtime.GOARCH {
		return "", fmt.Errorf("--push: the host runs %s %s, and this workerpool is built for %s/%s: install a workerpool built for it, and give its path with --remote-path",
			fields[0], fields[1], runtime.GOOS, runtime.GOARCH)
	}
	f, err := os.Open(bin.path)
	if err != nil {
		return "", fmt.Errorf("--push: %w", err)
	}
	defer f.Close()
	if out, err := runRemote(ctx, tr, dest, inSh(copyScript(bin, keep)), f); err != nil {
		return "", copyError(dest, bin, out, err)
	}
	return path, nil
}

// inSh is the program that runs script, a line of POSIX sh, whatever the
// login shell of the user on the host is (csh and fish read sh's syntax
// otherwise). The script holds no line break and no backslash, so that
// a transport that quotes it for a login shell has it read the same by
// each of them.
func inSh(script string) []string { return []string{"sh", "-c", script} }

// probeScript prints three lines: the host's system and machine (uname
// -sm); the directory of bin on the host (bin.dir() expanded, printed
// with printf, which takes its bytes as they are); and "present" when the
// directory holds a checked copy of bin: executable, of the size its
// stamp gives, and the stamp naming bin's hash and size. wc -c on a
// regular file reads its size, not its bytes. A copy present is then
// the one used last, and the versions past keep are removed.
func probeScript(bin binary, keep int) string {
	return fmt.Sprintf(`uname -sm; d=%s; printf "%%s" "$d"; echo; `+
		`if test -x "$d/workerpool" && test "$(cat "$d/stamp" 2>/dev/null)" = "%s" && `+
		`test "$(wc -c < "$d/workerpool" | tr -d " ")" = %d; then echo present; touch "$d/stamp"; %s fi`,
		bin.dir(), bin.stamp(), bin.size, pruneScript(bin, keep))
}

// pruneScript removes from pushCache the versions that --push copied
// (a directory named by 16 hex digits, holding a stamp) but bin's own
// and the keep-1 others whose stamps were written or touched last. It prints
// nothing and never fails. A directory without a stamp is a copy under
// way, and what else the directory holds is none of --push's: both are
// left alone. The names are 16 hex digits, so ls's output splits into
// them whole.
func pruneScript(bin binary, keep int) string {
	hex16 := strings.Repeat("[0-9a-f]", 16)
	return fmt.Sprintf(`( cd %s 2>/dev/null && n=0 && for s in $(ls -t %s/stamp 2>/dev/null); do `+
		`v=${s%%/stamp}; test "$v" = %s && continue; n=$((n+1)); test $n -ge %d && rm -rf "./$v"; `+
		`done ) >/dev/null 2>&1;`, pushCache, hex16, bin.name(), max(keep, 1))
}

// copyScript reads bin's bytes from its standard input into a temporary
// file beside bin's place, checks them, and renames them into place,
// followed by their stamp. It prints "ok" when done, and otherwise one
// line that copyError reads, "fail <step> [what it found]", and exits 1.
// Whatever way it ends, on a signal or a connection lost too, it removes
// its temporary files (the trap).
//
// It reads exactly bin.size bytes (head -c, which GNU, busybox, macOS and
// the BSDs have), and checks that it got them all: a connection that drops
// ends the input early, and is not taken for the end of the program.
// The hash is taken with whichever tool the host has: sha256sum (GNU,
// busybox), shasum -a 256 (macOS), sha256 -q (FreeBSD, OpenBSD) or
// openssl. A host with none of them has its copy checked by size alone:
// ssh itself guards the bytes on the way, so the size catches what
// happens most, a copy cut short; the hash adds a guard against this
// program changing on disk while it is copied, or a disk that damages
// what it writes.
//
// Once the copy is in place, the versions past keep are removed
// (pruneScript).
func copyScript(bin binary, keep int) string {
	return strings.Join([]string{
		`umask 077;`,
		`d=` + bin.dir() + `; t="$d/.workerpool.$$"; s="$d/.stamp.$$";`,
		`trap 'rm -f "$t" "$s"' EXIT; trap 'exit 1' HUP INT TERM PIPE;`,
		`mkdir -p "$d" || { echo fail mkdir; exit 1; };`,
		fmt.Sprintf(`head -c %d > "$t" || { echo fail write; exit 1; };`, bin.size),
		`n=$(wc -c < "$t" | tr -d " ");`,
		fmt.Sprintf(`test "$n" = %d || { echo fail size "$n"; exit 1; };`, bin.size),
		`sum256() { if command -v sha256sum >/dev/null 2>&1; then sha256sum;`,
		`elif command -v shasum >/dev/null 2>&1; then shasum -a 256;`,
		`elif command -v sha256 >/dev/null 2>&1; then sha256 -q;`,
		`elif command -v openssl >/dev/null 2>&1; then openssl dgst -sha256; fi; };`,
		`h=$(sum256 < "$t") || { echo fail hash; exit 1; };`,
		fmt.Sprintf(`case " $h " in *" %s "*|"  ") ;; *) echo fail sha256 "$h"; exit 1;; esac;`, bin.sum),
		fmt.Sprintf(`echo "%s" > "$s" && chmod 700 "$t" &&`, bin.stamp()),
		`mv -f "$t" "$d/workerpool" && mv -f "$s" "$d/stamp" || { echo fail write; exit 1; };`,
		pruneScript(bin, keep),
		`echo ok`,
	}, " ")
}

// sha256Hex finds a SHA-256 in what a tool printed.
var sha256Hex = regexp.MustCompile(`\b[0-9a-f]{64}\b`)

// copyError says why the copy of bin to dest failed, from the last line
// the copy script printed (out) and the error of its command (err), which
// ends with the last line written to stderr.
func copyError(dest string, bin binary, out []byte, err error) error {
	step := shorten.LastLine(out, 200)
	switch {
	case strings.HasPrefix(step, "fail size"):
		return fmt.Errorf("--push: the copy on %s is %s of %d bytes: the transfer ended early, and the partial copy was removed",
			dest, strings.TrimSpace(strings.TrimPrefix(step, "fail size")), bin.size)
	case strings.HasPrefix(step, "fail sha256 "):
		got := strings.TrimPrefix(step, "fail sha256 ")
		if h := sha256Hex.FindString(got); h != "" {
			got = h
		}
		return fmt.Errorf("--push: the copy on %s has sha256 %s, not %s: it was damaged on the way, and was removed", dest, got, bin.sum)
	case step == "fail write" && noRoom(err):
		return fmt.Errorf("--push: the disk on %s is full: no room for the copy (%d bytes): %w", dest, bin.size, err)
	case step == "fail write":
		return fmt.Errorf("--push: cannot write the copy on %s: %w", dest, err)
	case step == "fail hash":
		return fmt.Errorf("--push: cannot compute the sha256 of the copy on %s: %w", dest, err)
	case step == "fail mkdir":
		return fmt.Errorf("--push: cannot make %s on %s: %w", bin.dir(), dest, err)
	}
	return fmt.Errorf("--push: cannot copy workerpool to %s: %w", dest, err)
}

// noRoom says whether err tells of a full disk or an exhausted quota.
func noRoom(err error) bool {
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "no space left") || strings.Contains(msg, "quota exceeded")
}

// platformOf maps what uname -sm prints to Go's names of the system and
// architecture.
func platformOf(system, machine string) (goos, goarch string) {
	goos = strings.ToLower(system)
	switch machine {
	case "x86_64", "amd64":
		goarch = "amd64"
	case "aarch64", "arm64":
		goarch = "arm64"
	case "i386", "i686":
		goarch = "386"
	default:
		goarch = machine
	}
	return goos, goarch
}
