package sipmsg

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

const editReq = "INVITE sip:bob@example.com SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n" +
	"v: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK2\r\n" +
	"From: <sip:alice@example.com>;tag=a\r\n" +
	"To: <sip:bob@example.com>\r\n" +
	"Call-ID: c1\r\n" +
	"CSeq: 1 INVITE\r\n" +
	"X-Test: one\r\n" +
	"x-test: two\r\n" +
	"Content-Length: 0\r\n\r\n"

// names renders the header names of r, compact Via shown as Via by sipgo.
func names(r *sip.Request) string {
	var out []string
	for _, h := range r.Headers() {
		out = append(out, h.Name()+"="+h.Value())
	}
	return strings.Join(out, "|")
}

func TestApplyEdits(t *testing.T) {
	base := "Via=SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1|Via=SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK2|" +
		"From=<sip:alice@example.com>;tag=a|To=<sip:bob@example.com>|Call-ID=c1|CSeq=1 INVITE|" +
		"X-Test=one|x-test=two|Content-Length=0"
	tests := []struct {
		name  string
		edits []HeaderEdit
		want  string
	}{
		{"none", nil, base},
		{"append", []HeaderEdit{{Op: EditAppend, Text: "X-A: 1\r\n"}, {Op: EditAppend, Text: "X-B: 2\r\n"}},
			base + "|X-A=1|X-B=2"},
		{"insert keeps call order", []HeaderEdit{{Op: EditInsert, Text: "X-A: 1\r\n"}, {Op: EditInsert, Text: "X-B: 2\r\n"}},
			"X-A=1|X-B=2|" + base},
		{"remove all, case-insensitive", []HeaderEdit{{Op: EditRemove, Anchor: "X-TEST"}},
			strings.Replace(base, "|X-Test=one|x-test=two", "", 1)},
		{"remove compact form by long name", []HeaderEdit{{Op: EditRemove, Anchor: "via"}},
			strings.SplitN(base, "|", 3)[2]},
		{"remove long form by compact name", []HeaderEdit{{Op: EditRemove, Anchor: "v"}},
			strings.SplitN(base, "|", 3)[2]},
		{"append_after first match", []HeaderEdit{{Op: EditAppendAfter, Text: "X-A: 1\r\n", Anchor: "x-test"}},
			strings.Replace(base, "X-Test=one|", "X-Test=one|X-A=1|", 1)},
		{"append_after missing appends", []HeaderEdit{{Op: EditAppendAfter, Text: "X-A: 1\r\n", Anchor: "x-none"}},
			base + "|X-A=1"},
		{"insert_before first match", []HeaderEdit{{Op: EditInsertBefore, Text: "X-A: 1\r\n", Anchor: "call-id"}},
			strings.Replace(base, "|Call-ID", "|X-A=1|Call-ID", 1)},
		{"insert_before missing inserts at top", []HeaderEdit{{Op: EditInsertBefore, Text: "X-A: 1\r\n", Anchor: "x-none"}},
			"X-A=1|" + base},
		{"remove does not touch added headers", []HeaderEdit{{Op: EditAppend, Text: "X-Test: new\r\n"}, {Op: EditRemove, Anchor: "x-test"}},
			strings.Replace(base, "|X-Test=one|x-test=two", "", 1) + "|X-Test=new"},
		{"anchor of a removed header still places", []HeaderEdit{{Op: EditRemove, Anchor: "call-id"}, {Op: EditAppendAfter, Text: "Call-ID: c2\r\n", Anchor: "call-id"}},
			strings.Replace(base, "Call-ID=c1", "Call-ID=c2", 1)},
		{"multi-line text", []HeaderEdit{{Op: EditAppend, Text: "X-A: 1\r\nX-B: 2\r\n"}},
			base + "|X-A=1|X-B=2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(editReq))
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range tt.edits {
				m.QueueEdit(e)
			}
			out := m.Req.Clone()
			m.ApplyEdits(out)
			if got := names(out); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			// the received message is untouched
			if got := names(m.Req); !strings.Contains(got, "X-Test=one") {
				t.Errorf("original changed: %s", got)
			}
		})
	}
}

func TestApplyEditsTypedHeaders(t *testing.T) {
	m, _ := Parse([]byte(editReq))
	m.QueueEdit(HeaderEdit{Op: EditInsert, Text: "Route: <sip:10.1.1.1;lr>\r\n"})
	m.QueueEdit(HeaderEdit{Op: EditRemove, Anchor: "from"})
	m.QueueEdit(HeaderEdit{Op: EditAppend, Text: "From: <sip:carol@example.org>;tag=z\r\n"})
	out := m.Req.Clone()
	m.ApplyEdits(out)
	if r := out.Route(); r == nil || r.Address.Host != "10.1.1.1" {
		t.Errorf("Route() = %v", r)
	}
	if f := out.From(); f == nil || f.Address.User != "carol" {
		t.Errorf("From() = %v", f)
	}
	if v := out.Via(); v == nil || v.Host != "10.0.0.1" {
		t.Errorf("Via() = %v", v)
	}
	if !strings.Contains(out.String(), "From: <sip:carol@example.org>;tag=z\r\n") {
		t.Errorf("serialized: %s", out.String())
	}
}

func TestApplyEditsReply(t *testing.T) {
	raw := "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\n" +
		"To: <sip:b@x>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nServer: x\r\nContent-Length: 0\r\n\r\n"
	m, err := Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	m.QueueEdit(HeaderEdit{Op: EditRemove, Anchor: "server"})
	m.QueueEdit(HeaderEdit{Op: EditAppend, Text: "X-R: 1\r\n"})
	out := m.Res.Clone()
	m.ApplyEdits(out)
	s := out.String()
	if strings.Contains(s, "Server:") || !strings.Contains(s, "X-R: 1\r\n") {
		t.Errorf("reply: %s", s)
	}
}

func TestQueueReplace(t *testing.T) {
	m, _ := Parse([]byte(editReq))
	if _, ok := m.PendingReplace("From"); ok {
		t.Fatal("pending before any write")
	}
	m.QueueReplace("From", "From: <sip:x@example.com>;tag=a\r\n")
	m.QueueReplace("f", "From: <sip:y@example.com>;tag=a\r\n")
	if len(m.Edits) != 2 {
		t.Fatalf("edits = %d, want 2", len(m.Edits))
	}
	if txt, ok := m.PendingReplace("from"); !ok || !strings.Contains(txt, "sip:y@") {
		t.Errorf("pending = %q %v", txt, ok)
	}
	out := m.Req.Clone()
	m.ApplyEdits(out)
	got := names(out)
	if !strings.Contains(got, "Via=SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK2|From=<sip:y@example.com>;tag=a|To=") {
		t.Errorf("got %s", got)
	}
}

func TestParseEditHeaders(t *testing.T) {
	hs := ParseEditHeaders("X-A: 1\r\n folded\r\nno colon\r\nv: SIP/2.0/UDP h;branch=z9hG4bKx\r\n")
	if len(hs) != 2 {
		t.Fatalf("got %d headers", len(hs))
	}
	if hs[0].Value() != "1 folded" {
		t.Errorf("folded = %q", hs[0].Value())
	}
	if _, ok := hs[1].(*sip.ViaHeader); !ok {
		t.Errorf("compact Via not typed: %T", hs[1])
	}
}
