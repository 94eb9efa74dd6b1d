package siptest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Placeholders understood by Render (and so by Client.Send):
//
//	${local_ip} ${local_port} ${local}      the client's bound address (ip, port, ip:port)
//	${server_ip} ${server_port} ${server}   the address the client sends to
//	${transport} ${proto}                   "UDP"/"TCP" (for Via) and "udp"/"tcp"
//	${call_id} ${branch} ${tag}             fresh per Send: a Call-ID, a Via branch
//	                                        (with the z9hG4bK cookie) and a From tag
//	${cseq}                                 the client's CSeq counter (1, 2, ...)
//	${content_length}                       the byte length of the rendered body
//
// Callers may add or override any of them (Send's vars). An unknown
// placeholder is an error, so a typo does not go out on the wire.
var Placeholders = []string{"local_ip", "local_port", "local", "server_ip", "server_port", "server",
	"transport", "proto", "call_id", "branch", "tag", "cseq", "content_length"}

// Vars maps placeholder names (without "${" and "}") to values.
type Vars map[string]string

// Render substitutes ${name} placeholders in tmpl and normalises the text
// to a SIP message:
//
//   - a single leading newline is dropped (for Go raw string literals);
//   - bare LF line endings become CRLF (the whole message, body included);
//   - if there is no empty line ending the headers, one is added;
//   - ${content_length} is the length in bytes of what follows that empty line.
//
// Use Client.SendRaw to send bytes exactly as given.
func Render(tmpl string, vars Vars) (string, error) {
	tmpl = strings.TrimPrefix(tmpl, "\r\n")
	tmpl = strings.TrimPrefix(tmpl, "\n")
	var b strings.Builder
	clPos := []int{} // offsets in b where ${content_length} goes
	rest := tmpl
	for {
		i := strings.Index(rest, "${")
		if i < 0 {
			b.WriteString(rest)
			break
		}
		b.WriteString(rest[:i])
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return "", fmt.Errorf("siptest: unterminated placeholder in %q", short(rest[i:]))
		}
		name := rest[i+2 : i+j]
		rest = rest[i+j+1:]
		if name == "content_length" {
			if _, ok := vars[name]; !ok {
				clPos = append(clPos, b.Len())
				continue
			}
		}
		v, ok := vars[name]
		if !ok {
			known := make([]string, 0, len(vars))
			for k := range vars {
				known = append(known, k)
			}
			sort.Strings(known)
			return "", fmt.Errorf("siptest: unknown placeholder ${%s} (known: %s)", name, strings.Join(known, ", "))
		}
		b.WriteString(v)
	}
	s := b.String()
	// Normalise line endings, keeping the content-length positions right:
	// work on the pieces between the positions.
	pieces := make([]string, 0, len(clPos)+1)
	prev := 0
	for _, p := range clPos {
		pieces = append(pieces, crlf(s[prev:p]))
		prev = p
	}
	pieces = append(pieces, crlf(s[prev:]))
	joined := strings.Join(pieces, "\x00")
	if !strings.Contains(joined, "\r\n\r\n") {
		joined = strings.TrimRight(joined, "\r\n") + "\r\n\r\n"
	}
	body := ""
	if k := strings.Index(joined, "\r\n\r\n"); k >= 0 {
		body = joined[k+4:]
	}
	if strings.Contains(body, "\x00") {
		return "", fmt.Errorf("siptest: ${content_length} inside the body")
	}
	return strings.ReplaceAll(joined, "\x00", strconv.Itoa(len(body))), nil
}

// crlf turns bare LFs into CRLFs.
func crlf(s string) string {
	if !strings.Contains(s, "\n") {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\n", "\r\n")
}

func short(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// NewID returns n random bytes as hex (Call-IDs, tags).
func NewID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NewBranch returns a RFC 3261 branch (with the magic cookie).
func NewBranch() string { return "z9hG4bK-" + NewID(8) }
