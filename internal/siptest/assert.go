package siptest

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// compact maps long header names to their RFC 3261 §7.3.3 compact forms.
var compact = map[string]string{
	"call-id": "i", "contact": "m", "content-encoding": "e", "content-length": "l",
	"content-type": "c", "from": "f", "subject": "s", "supported": "k", "to": "t", "via": "v",
}

// Headers returns the values of every header called name (compact forms
// included, case ignored), in order.
func Headers(m sip.Message, name string) []string {
	if m == nil {
		return nil
	}
	var out []string
	lname := strings.ToLower(name)
	short := compact[lname]
	for _, h := range headersOf(m) {
		hn := strings.ToLower(h.Name())
		if hn == lname || (short != "" && hn == short) {
			out = append(out, h.Value())
		}
	}
	return out
}

// Header returns the value of the first header called name.
func Header(m sip.Message, name string) (string, bool) {
	v := Headers(m, name)
	if len(v) == 0 {
		return "", false
	}
	return v[0], true
}

func headersOf(m sip.Message) []sip.Header {
	switch v := m.(type) {
	case *sip.Response:
		return v.Headers()
	case *sip.Request:
		return v.Headers()
	}
	return nil
}

// AssertStatus checks the status code, and the reason phrase unless reason is "".
func AssertStatus(t testing.TB, res *sip.Response, code int, reason string) {
	t.Helper()
	if res == nil {
		t.Fatalf("no response (want %d %s)", code, reason)
	}
	if res.StatusCode != code || (reason != "" && res.Reason != reason) {
		t.Errorf("got %d %q, want %d %q\n%s", res.StatusCode, res.Reason, code, reason, res.String())
	}
}

// AssertHeader checks that the first name header has exactly the value want.
func AssertHeader(t testing.TB, m sip.Message, name, want string) {
	t.Helper()
	got, ok := Header(m, name)
	if !ok {
		t.Errorf("no %s header, want %q\n%s", name, want, str(m))
		return
	}
	if got != want {
		t.Errorf("%s: got %q, want %q", name, got, want)
	}
}

// AssertHeaderContains checks that the first name header contains sub.
func AssertHeaderContains(t testing.TB, m sip.Message, name, sub string) {
	t.Helper()
	got, ok := Header(m, name)
	if !ok {
		t.Errorf("no %s header, want one containing %q\n%s", name, sub, str(m))
		return
	}
	if !strings.Contains(got, sub) {
		t.Errorf("%s: %q does not contain %q", name, got, sub)
	}
}

// AssertNoHeader checks that there is no name header.
func AssertNoHeader(t testing.TB, m sip.Message, name string) {
	t.Helper()
	if got, ok := Header(m, name); ok {
		t.Errorf("unexpected %s: %q", name, got)
	}
}

// AssertMatches checks that res answers sent: same Call-ID, CSeq number,
// top Via branch and From tag.
func AssertMatches(t testing.TB, res *sip.Response, sent *Sent) {
	t.Helper()
	if res == nil || sent == nil {
		t.Fatal("AssertMatches: nil response or request")
	}
	if c := res.CallID(); c == nil || c.Value() != sent.CallID {
		t.Errorf("Call-ID: got %v, want %q", c, sent.CallID)
	}
	if cs := res.CSeq(); cs == nil || int(cs.SeqNo) != sent.CSeq {
		t.Errorf("CSeq: got %v, want number %d", cs, sent.CSeq)
	}
	if v := res.Via(); v == nil {
		t.Errorf("no Via in the reply")
	} else if b, _ := v.Params.Get("branch"); b != sent.Branch {
		t.Errorf("Via branch: got %q, want %q", b, sent.Branch)
	}
	if f := res.From(); f == nil {
		t.Errorf("no From in the reply")
	} else if tag, _ := f.Params.Get("tag"); tag != sent.Tag {
		t.Errorf("From tag: got %q, want %q", tag, sent.Tag)
	}
}

func str(m sip.Message) string {
	if m == nil {
		return "<nil>"
	}
	return m.String()
}
