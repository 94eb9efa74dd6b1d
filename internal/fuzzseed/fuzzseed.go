// Package fuzzseed gives the fuzz targets their seed corpus: the RFC 4475
// torture messages and the RFC 5118 IPv6 ones, kept in
// tests/torture/testdata (with the wire bytes the torture tests send).
package fuzzseed

import (
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
)

// dir is tests/torture/testdata of this module.
func dir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "tests", "torture", "testdata")
}

// Messages returns the torture messages, by file name: RFC 4475's as they
// are, RFC 5118's with CRLF line ends. It returns nil when the files are
// not there (a copy of one package without the rest of the module).
func Messages() map[string][]byte {
	d := dir()
	out := map[string][]byte{}
	files, _ := filepath.Glob(filepath.Join(d, "rfc4475", "*.dat"))
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil {
			out[filepath.Base(f)] = b
		}
	}
	files, _ = filepath.Glob(filepath.Join(d, "rfc5118", "*"))
	for _, f := range files {
		if strings.HasSuffix(f, ".tsv") {
			continue
		}
		if b, err := os.ReadFile(f); err == nil {
			s := strings.ReplaceAll(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n", "\r\n")
			if !strings.Contains(s, "\r\n\r\n") {
				s += "\r\n"
			}
			out["rfc5118-"+filepath.Base(f)] = []byte(s)
		}
	}
	return out
}

// Sorted returns Messages' values in file name order.
func Sorted() [][]byte {
	m := Messages()
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([][]byte, 0, len(names))
	for _, n := range names {
		out = append(out, m[n])
	}
	return out
}

// HeaderValues returns the values of every header named name (case
// insensitive, the long name only) in the messages, unfolded.
func HeaderValues(name string) []string {
	var out []string
	for _, raw := range Sorted() {
		head, _, _ := strings.Cut(string(raw), "\r\n\r\n")
		lines := strings.Split(head, "\r\n")
		for i := 1; i < len(lines); i++ {
			n, v, ok := strings.Cut(lines[i], ":")
			if !ok || !strings.EqualFold(strings.TrimSpace(n), name) {
				continue
			}
			for i+1 < len(lines) && len(lines[i+1]) > 0 && (lines[i+1][0] == ' ' || lines[i+1][0] == '\t') {
				i++
				v += " " + strings.TrimSpace(lines[i])
			}
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}
