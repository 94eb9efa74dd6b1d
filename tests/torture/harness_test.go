package torture

// The messages of the torture tests (testdata/, copied from RFC 4475
// Appendix A and RFC 5118 Appendix A) and the rewrites the tests make to
// them. The proxy under test comes from tests/harness.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/kemigo/kemigo/tests/harness"
)

// TestMain turns DNS off for the whole test binary: the torture messages
// name hosts such as example.com, and neither a lookup nor a packet may
// leave the machine.
func TestMain(m *testing.M) {
	harness.DisableDNS()
	os.Exit(m.Run())
}

// ---- messages -----------------------------------------------------------

// message is one torture message file.
type message struct {
	name     string
	file     string
	raw      []byte
	validity string // as INDEX.tsv says
	what     string // what it tests
	action   string // what a proxy should do, per INDEX.tsv
}

// loadIndex reads an INDEX.tsv: a header line naming the columns, then one
// message per line; '#' lines are comments.
func loadIndex(t testing.TB, dir string) []map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "INDEX.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cols []string
	var rows []map[string]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, "\t")
		if cols == nil {
			cols = fields
			continue
		}
		row := map[string]string{}
		for i, c := range cols {
			if i < len(fields) {
				row[c] = fields[i]
			}
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

func checkSum(t testing.TB, name string, raw []byte, want string) {
	t.Helper()
	sum := sha256.Sum256(raw)
	if got := hex.EncodeToString(sum[:]); want != "" && got != want {
		t.Fatalf("%s: sha256 %s, INDEX.tsv says %s", name, got, want)
	}
}

// rfc4475 returns the 50 messages of RFC 4475 Appendix A, byte for byte.
func rfc4475(t testing.TB) map[string]message {
	t.Helper()
	dir := filepath.Join("testdata", "rfc4475")
	out := map[string]message{}
	for _, row := range loadIndex(t, dir) {
		raw, err := os.ReadFile(filepath.Join(dir, row["file"]))
		if err != nil {
			t.Fatal(err)
		}
		checkSum(t, row["file"], raw, row["sha256"])
		out[row["name"]] = message{name: row["name"], file: row["file"], raw: raw,
			validity: row["validity_per_rfc4475"], what: row["what_it_tests"], action: row["proxy_action"]}
	}
	if len(out) != 50 {
		t.Fatalf("testdata/rfc4475: %d messages, want 50", len(out))
	}
	return out
}

// rfc5118 returns the 12 messages of RFC 5118 Appendix A as wire bytes:
// the files have bare LF line ends (and the two §4.10 ones no final empty
// line), so LF becomes CRLF and a missing end of headers is added; the
// Content-Length of the three with an SDP body matches neither the LF nor
// the CRLF body (the RFC text lost bytes: 268 for 242/251, 181 for
// 180/189, 236 for 236/245), so it is set to the CRLF body's length: these
// messages are valid, and they test IPv6 addresses, not framing.
func rfc5118(t testing.TB) map[string]message {
	t.Helper()
	dir := filepath.Join("testdata", "rfc5118")
	out := map[string]message{}
	for _, row := range loadIndex(t, dir) {
		raw, err := os.ReadFile(filepath.Join(dir, row["name"]))
		if err != nil {
			t.Fatal(err)
		}
		checkSum(t, row["name"], raw, row["sha256"])
		out[row["name"]] = message{name: row["name"], file: row["name"], raw: FixContentLength(ToCRLF(raw)),
			validity: row["validity"], what: row["what_it_tests"], action: row["proxy_action"]}
	}
	if len(out) != 12 {
		t.Fatalf("testdata/rfc5118: %d messages, want 12", len(out))
	}
	return out
}

// ToCRLF turns bare LF line ends into CRLF and makes sure the header
// section ends with an empty line.
func ToCRLF(raw []byte) []byte {
	s := strings.ReplaceAll(string(raw), "\r\n", "\n")
	if !strings.Contains(s, "\n\n") {
		s = strings.TrimRight(s, "\n") + "\n\n"
	}
	return []byte(strings.ReplaceAll(s, "\n", "\r\n"))
}

// ---- rewriting ----------------------------------------------------------

// FixContentLength sets the value of the first Content-Length (or l)
// header to the length of the body.
func FixContentLength(raw []byte) []byte {
	i := bytes.Index(raw, []byte("\r\n\r\n"))
	if i < 0 {
		return raw
	}
	body := len(raw) - (i + 4)
	start, end, ok := headerSpan(raw, "content-length", "l")
	if !ok {
		return raw
	}
	out := append([]byte(nil), raw[:start]...)
	out = append(out, " "+strconv.Itoa(body)...)
	return append(out, raw[end:]...)
}

// viaProto matches "SIP / 2.0 / UDP" and the LWS after it, line folds
// included, at the start of a Via value.
var viaProto = regexp.MustCompile(`^[ \t\r\n]*(?i:SIP)[ \t\r\n]*/[ \t\r\n]*[0-9.]+[ \t\r\n]*/[ \t\r\n]*[A-Za-z0-9.!%*_+` + "`" + `'~-]+[ \t\r\n]+`)

// sentBy matches a sent-by: host or [IPv6 reference], optional :port.
var sentBy = regexp.MustCompile(`^(\[[^\]]*\]|[^ \t\r\n;,:\[]+)([ \t\r\n]*:[ \t\r\n]*[0-9]+)?`)

// headerSpan returns the start and end offsets of the value of the first
// header named one of names (case-insensitive), continuation lines
// included, in the header section of raw; ok is false when there is none.
func headerSpan(raw []byte, names ...string) (start, end int, ok bool) {
	head := raw
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		head = raw[:i+2]
	}
	// skip the start line
	pos := bytes.Index(head, []byte("\r\n"))
	if pos < 0 {
		return 0, 0, false
	}
	pos += 2
	for pos < len(head) {
		eol := bytes.Index(head[pos:], []byte("\r\n"))
		if eol < 0 {
			return 0, 0, false
		}
		lineEnd := pos + eol
		colon := bytes.IndexByte(head[pos:lineEnd], ':')
		// the logical line runs over continuation lines
		next := lineEnd + 2
		for next < len(head) && (head[next] == ' ' || head[next] == '\t') {
			e := bytes.Index(head[next:], []byte("\r\n"))
			if e < 0 {
				break
			}
			next += e + 2
		}
		if colon > 0 {
			name := strings.TrimSpace(string(head[pos : pos+colon]))
			for _, n := range names {
				if strings.EqualFold(name, n) {
					return pos + colon + 1, next - 2, true
				}
			}
		}
		pos = next
	}
	return 0, 0, false
}

// RewriteTopVia replaces the sent-by (host and port) of the first value of
// the top Via with sentBy and returns the new message. Nothing else
// changes: folding, branch and other parameters stay as they were. ok is
// false when the message has no Via whose value starts with a
// protocol and a sent-by.
func RewriteTopVia(raw []byte, by string) ([]byte, bool) {
	start, end, ok := headerSpan(raw, "via", "v")
	if !ok {
		return raw, false
	}
	val := raw[start:end]
	p := viaProto.FindIndex(val)
	if p == nil {
		return raw, false
	}
	s := sentBy.FindIndex(val[p[1]:])
	if s == nil || s[1] == 0 {
		return raw, false
	}
	a, b := start+p[1]+s[0], start+p[1]+s[1]
	out := make([]byte, 0, len(raw)+len(by))
	out = append(out, raw[:a]...)
	out = append(out, by...)
	out = append(out, raw[b:]...)
	return out, true
}
