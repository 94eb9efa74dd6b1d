package sipmsg_test

// FuzzParse feeds raw bytes to what a received message goes through before
// and while the script runs: sipgo's parser (sipmsg.Parse), the Msg
// accessors, local reply building, queued header edits, every sanity
// check, and the reads of the message's pseudo-variables. It must never
// panic. Seeds: the RFC 4475 and RFC 5118 torture messages.
//
//	go test ./core/sipmsg -run '^$' -fuzz FuzzParse -fuzztime 60s

import (
	"fmt"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/modules/sanity"
	"github.com/kemigo/kemigo/core/pv"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/internal/fuzzseed"
	"github.com/rs/zerolog"
)

// sink serializes the replies "sent".
type sink struct{ n int }

func (s *sink) SendReply(m *sipmsg.Msg, res *sip.Response) error {
	s.n += len(res.String())
	return nil
}

// fuzzPVs are the pseudo-variables read from each message.
var fuzzPVs = []string{
	"$rm", "$ru", "$rU", "$rd", "$rp", "$rz", "$ou", "$oU", "$od", "$op", "$rv", "$mt", "$rs", "$rr",
	"$du", "$fu", "$fU", "$fd", "$fn", "$ft", "$tu", "$tU", "$td", "$tn", "$tt", "$si", "$sp", "$su",
	"$Ri", "$Rp", "$Ru", "$pr", "$ci", "$cs", "$ua", "$ct", "$cT", "$cl", "$ml", "$rb",
	"$hdr(Via)", "$(hdr(Via)[1])", "$(hdr(Via)[-1])", "$(hdr(Via)[*])", "$hdr(Contact)", "$hdr(v)",
	"$hdr(Authorization)", "$hdr(Proxy-Authorization)", "$hdr(Route)", "$hdr(Record-Route)",
}

var fuzzSanity = sanity.New(sanity.DefaultConfig())

func FuzzParse(f *testing.F) {
	for _, raw := range fuzzseed.Sorted() {
		f.Add(raw)
	}
	f.Add([]byte("OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK1;rport\r\n" +
		"From: <sip:a@x>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: abc@x\r\nCSeq: 1 OPTIONS\r\n" +
		"Proxy-Authorization: Digest username=\"a\", realm=\"x\", nonce=\"n\", uri=\"sip:x\", response=\"0123456789abcdef0123456789abcdef\"\r\n" +
		"Content-Length: 0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				panic(fmt.Sprintf("FuzzParse: still running after 10 s (a hang?) on %q", raw))
			}
		}()
		m, err := sipmsg.Parse(raw)
		if err != nil {
			return
		}
		out := &sink{}
		m.Replier = out
		m.Proto, m.SrcIP, m.SrcPort = "udp", "127.0.0.2", 5070
		m.DstIP, m.DstPort = "127.0.0.1", 5060

		// accessors
		_ = m.CallID()
		_ = m.Method()
		_ = m.RURI()
		_ = m.RURIParsed()
		for _, h := range m.AllHeaders() {
			_ = m.Headers(h.Name())
			_, _ = m.HeaderValue(h.Name())
			_, _ = m.HeaderExact(h.Name())
			_ = h.String()
		}
		_ = m.SIP().String()

		// local replies and header edits, on the request
		if m.Req != nil && m.Req.Via() != nil {
			_ = m.LocalToTag()
			for _, code := range []int{100, 180, 200, 400} {
				_ = m.BuildReply(code, "Fuzz").String()
			}
			m.QueueEdit(sipmsg.HeaderEdit{Op: sipmsg.EditAppend, Text: "X-Fuzz: 1\r\n"})
			m.QueueEdit(sipmsg.HeaderEdit{Op: sipmsg.EditRemove, Anchor: "route"})
			m.QueueEdit(sipmsg.HeaderEdit{Op: sipmsg.EditInsertBefore, Anchor: "via", Text: "Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\n"})
			m.QueueReplace("From", "From: <sip:fuzz@example.com>;tag=1\r\n")
			out := m.Req.Clone()
			m.ApplyEdits(out)
			_ = out.String()
			m.Edits = nil
		}

		// the script's view: sanity (every check and URI check) and PVs
		c := &kemi.Ctx{Msg: m, Route: kemi.RouteRequest, Worker: kemi.NewWorkerState(0), Log: zerolog.Nop(), BranchIdx: -1}
		if m.Res != nil {
			c.Route = kemi.RouteReply
		}
		_ = fuzzSanity.Check(c, 1<<15-1, 15)
		_ = fuzzSanity.Check(c, 17895, 7) // the reference script's
		for _, name := range fuzzPVs {
			if v, err := pv.Get(c, name); err == nil {
				_ = v.String()
			}
		}
		_ = pv.Expand(c, "$rm $ru from $fu ($fn) to $tu via $hdr(Via) [$ci] $cs")
	})
}

// FuzzEdits feeds header text, as a script passes it to KSR.hdr.append,
// insert, append_after, insert_before and the $fu/$tu writes, to the
// queued edits and their application to the outgoing copy (typed by
// sipgo's header parser where it knows the name). It must never panic.
//
//	go test ./core/sipmsg -run '^$' -fuzz FuzzEdits -fuzztime 60s
func FuzzEdits(f *testing.F) {
	for _, s := range []string{
		"X-Foo: bar\r\n", "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx\r\n", "Route: <sip:a@b;lr>, <sip:c>\r\n",
		"Record-Route: <sip:127.0.0.1;lr>\r\n", "Contact: *\r\n", "From: \"A\" <sip:a@b>;tag=1\r\n",
		"To: sip:x@y\r\n", "CSeq: 1 INVITE\r\n", "Content-Length: 5\r\n", "Max-Forwards: -1\r\n",
		"X-Multi: a\r\n b\r\n\tc\r\n", ":\r\n", "\r\n\r\n", "v: SIP/2.0/TCP [::1]:5060\r\n",
	} {
		f.Add(s, "via")
	}
	base := []byte("INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n" +
		"Route: <sip:127.0.0.1;lr>\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: c\r\n" +
		"CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")
	f.Fuzz(func(t *testing.T, text, anchor string) {
		m, err := sipmsg.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		for _, op := range []sipmsg.EditOp{sipmsg.EditAppend, sipmsg.EditInsert, sipmsg.EditAppendAfter, sipmsg.EditInsertBefore, sipmsg.EditRemove} {
			m.QueueEdit(sipmsg.HeaderEdit{Op: op, Text: text, Anchor: anchor})
		}
		m.QueueReplace(anchor, text)
		m.QueueReplace(anchor, text+text)
		_, _ = m.PendingReplace(anchor)
		out := m.Req.Clone()
		m.ApplyEdits(out)
		_ = out.String()
		_ = out.Via()
		m.ReplyHdrs = append(m.ReplyHdrs, text)
		m.SrcIP, m.SrcPort = "127.0.0.2", 5070
		_ = m.BuildReply(200, "OK").String()
		_ = sipmsg.ParseRawHeaders(text)
	})
}
