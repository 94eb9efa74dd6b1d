package siptest

import (
	"strconv"
	"testing"
	"time"
)

const uasReq = `${method} sip:callee@${server} SIP/2.0
Via: SIP/2.0/${transport} ${local};branch=${branch};rport
Max-Forwards: 70
From: <sip:alice@${local_ip}>;tag=${tag}
To: <sip:callee@${server}>
Call-ID: ${call_id}
CSeq: ${cseq} ${method}
Content-Length: ${content_length}

`

// TestUAS drives a UAS directly with a Client: a scripted answer, a
// retransmission, CANCEL and BYE, over UDP and TCP.
func TestUAS(t *testing.T) {
	for _, proto := range []string{"udp", "tcp"} {
		t.Run(proto, func(t *testing.T) {
			u := StartUAS(t, proto, "127.0.0.2", Answer(200, 100*time.Millisecond)...)
			c := Dial(t, proto, u.Addr())

			inv := c.Send(uasReq, "method", "INVITE")
			for _, want := range []int{100, 180, 200} {
				res := c.Expect()
				AssertStatus(t, res, want, "")
				AssertMatches(t, res, inv)
				if want == 200 {
					AssertHeader(t, res, "Contact", "<"+u.URI()+">")
					if tag, ok := res.To().Params.Get("tag"); !ok || tag == "" {
						t.Errorf("no To tag in %s", res.StartLine())
					}
				}
			}
			// the same INVITE again: the last reply, no new answer
			if err := c.SendRaw([]byte(inv.Raw)); err != nil {
				t.Fatal(err)
			}
			AssertStatus(t, c.Expect(), 200, "OK")
			c.ExpectNone(200 * time.Millisecond)
			if n := u.Count("INVITE"); n != 2 {
				t.Errorf("recorded %d INVITE, want 2", n)
			}

			_, res := c.Exchange(uasReq, "method", "BYE", "call_id", inv.CallID)
			AssertStatus(t, res, 200, "OK")
			u.Expect("BYE", 1)

			// ringing only: CANCEL gets 200, then the INVITE 487
			u.SetAnswer(Ring...)
			inv2 := c.Send(uasReq, "method", "INVITE")
			AssertStatus(t, c.Expect(), 100, "Trying")
			AssertStatus(t, c.Expect(), 180, "Ringing")
			c.Send(uasReq, "method", "CANCEL", "call_id", inv2.CallID, "branch", inv2.Branch,
				"tag", inv2.Tag, "cseq", strconv.Itoa(inv2.CSeq))
			AssertStatus(t, c.Expect(), 200, "OK")
			res = c.Expect()
			AssertStatus(t, res, 487, "Request Terminated")
			AssertMatches(t, res, inv2)

			// a silenced method gets no reply, but is recorded
			u.Silence("INFO")
			c.Send(uasReq, "method", "INFO")
			c.ExpectNone(200 * time.Millisecond)
			u.Expect("INFO", 1)
		})
	}
}
