package security

import (
	"testing"

	"github.com/kemigo/kemigo/internal/siptest"
	"github.com/kemigo/kemigo/tests/harness"
)

// relayReq is a request from ${from_user}@${from_domain} to ${ruri}.
const relayReq = `${method} ${ruri} SIP/2.0
Via: SIP/2.0/${transport} ${local};branch=${branch};rport
Max-Forwards: 70
From: <sip:${from_user}@${from_domain}>;tag=${tag}
To: <${ruri}>
Call-ID: ${call_id}
CSeq: ${cseq} ${method}
Contact: <sip:${from_user}@${local};transport=${proto}>
${extra}Content-Length: ${content_length}

`

// TestNoOpenRelay: a request from a foreign domain to a foreign domain is
// refused with 403 "Not relaying", whatever its method, source or
// preloaded Route; from a local domain it must authenticate first (407).
// Nothing is forwarded (no transaction is created, nothing sent to
// another host).
func TestNoOpenRelay(t *testing.T) {
	harness.NeedScript(t)
	s := harness.Start(t, harness.BasicConfig(t, ""), harness.Options{})
	cases := []struct {
		name, method, fromUser, fromDomain, ruri, extra string
		code                                            int
		reason                                          string
	}{
		{"invite foreign to foreign", "INVITE", "mallory", "example.org", "sip:bob@example.net", "", 403, "Not relaying"},
		{"message foreign to foreign", "MESSAGE", "mallory", "example.org", "sip:bob@example.net", "", 403, "Not relaying"},
		{"options foreign to foreign user", "OPTIONS", "mallory", "example.org", "sip:bob@example.net", "", 403, "Not relaying"},
		{"foreign to another loopback host", "INVITE", "mallory", "example.org", "sip:bob@127.0.0.9:5060", "", 403, "Not relaying"},
		{"preloaded Route to a foreign proxy", "INVITE", "mallory", "example.org", "sip:bob@example.net",
			"Route: <sip:127.0.0.9:5060;lr>\n", 403, "Not relaying"},
		{"local From without credentials", "INVITE", "alice", "127.0.0.1", "sip:bob@example.net", "", 407, "Proxy Authentication Required"},
	}
	srcs := []string{"127.0.0.1", "127.0.0.2"} // myself (no pike), and a foreign source
	for _, proto := range []string{"udp", "tcp"} {
		for _, src := range srcs {
			c := siptest.Dial(t, proto, s.Addrs[proto], siptest.WithLocalIP(src))
			for _, tc := range cases {
				t.Run(proto+"/"+src+"/"+tc.name, func(t *testing.T) {
					sent, res := c.Exchange(relayReq, "method", tc.method, "ruri", tc.ruri, "from_user", tc.fromUser,
						"from_domain", tc.fromDomain, "extra", tc.extra)
					siptest.AssertStatus(t, res, tc.code, tc.reason)
					siptest.AssertMatches(t, res, sent)
					if tc.method == "INVITE" {
						c.Send(ackOf, "ruri", tc.ruri, "from_user", tc.fromUser, "from_domain", tc.fromDomain,
							"call_id", sent.CallID, "tag", sent.Tag, "branch", sent.Branch, "cseq_n", itoa(sent.CSeq),
							"to_tag", toTag(res))
					}
				})
			}
		}
	}
	if n := s.P.Mods.TM.StatsSnapshot()["total"]; n != uint64(0) {
		t.Errorf("%v transactions created: something was relayed", n)
	}
	if es := s.OffLoopback(); len(es) > 0 {
		t.Errorf("sends refused: %v", es)
	}
}
