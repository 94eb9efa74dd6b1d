package sipmsg

import (
	"strings"

	"github.com/emiago/sipgo/sip"
)

// compact maps RFC 3261 §7.3.3 compact header names to their long form.
var compact = map[string]string{
	"i": "call-id", "m": "contact", "e": "content-encoding", "l": "content-length",
	"c": "content-type", "f": "from", "s": "subject", "k": "supported", "t": "to",
	"v": "via", "o": "event", "r": "refer-to", "b": "referred-by", "u": "allow-events",
	"x": "session-expires", "a": "accept-contact", "j": "reject-contact", "d": "request-disposition",
	"y": "identity",
}

// compactByte is compact indexed by the lower-case letter.
var compactByte = func() (t [256]string) {
	for k, v := range compact {
		t[k[0]] = v
	}
	return t
}()

// CanonicalName returns the lower-case long name of a header name.
func CanonicalName(name string) string {
	n := strings.ToLower(strings.TrimSpace(name))
	if l, ok := compact[n]; ok {
		return l
	}
	return n
}

// nameIs reports whether the header name n is want, a CanonicalName
// result, as CanonicalName(n) == want does, without allocating: it runs
// for every header of every lookup.
func nameIs(n, want string) bool {
	n = strings.TrimSpace(n)
	if len(n) == 1 {
		c := n[0]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if l := compactByte[c]; l != "" {
			return l == want
		}
	}
	for i := 0; i < len(n); i++ {
		if n[i] >= 0x80 {
			return CanonicalName(n) == want // non-ASCII: as strings.ToLower does
		}
	}
	if len(n) != len(want) {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != want[i] {
			return false
		}
	}
	return true
}

// HeaderMatches reports whether header h has the given name, compact forms
// matching their long form (as Kamailio compares header types).
func HeaderMatches(h sip.Header, name string) bool {
	return nameIs(h.Name(), CanonicalName(name))
}

// Headers returns every header of m named name (compact forms included), in order.
func (m *Msg) Headers(name string) []sip.Header {
	want := CanonicalName(name)
	var out []sip.Header
	for _, h := range allHeaders(m.SIP()) {
		if nameIs(h.Name(), want) {
			out = append(out, h)
		}
	}
	return out
}

// Header returns the first header named name, or nil.
func (m *Msg) Header(name string) sip.Header {
	want := CanonicalName(name)
	for _, h := range allHeaders(m.SIP()) {
		if nameIs(h.Name(), want) {
			return h
		}
	}
	return nil
}

// HeaderValue returns the body of the first header named name and whether it exists.
func (m *Msg) HeaderValue(name string) (string, bool) {
	h := m.Header(name)
	if h == nil {
		return "", false
	}
	return h.Value(), true
}

// HeaderExact returns the body of the first header whose name equals name
// ignoring case, without expanding compact forms (msg.getHeader semantics).
func (m *Msg) HeaderExact(name string) (string, bool) {
	for _, h := range allHeaders(m.SIP()) {
		if strings.EqualFold(h.Name(), name) {
			return h.Value(), true
		}
	}
	return "", false
}

func allHeaders(s sip.Message) []sip.Header {
	switch v := s.(type) {
	case *sip.Request:
		return v.Headers()
	case *sip.Response:
		return v.Headers()
	}
	return nil
}

// AllHeaders returns the message's headers in order.
func (m *Msg) AllHeaders() []sip.Header { return allHeaders(m.SIP()) }
