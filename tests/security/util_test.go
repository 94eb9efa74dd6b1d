package security

import (
	"strconv"

	"github.com/emiago/sipgo/sip"
)

// ackOf is the ACK of a non-2xx final (RFC 3261 §17.1.1.3).
const ackOf = `ACK ${ruri} SIP/2.0
Via: SIP/2.0/${transport} ${local};branch=${branch};rport
Max-Forwards: 70
From: <sip:${from_user}@${from_domain}>;tag=${tag}
To: <${ruri}>;tag=${to_tag}
Call-ID: ${call_id}
CSeq: ${cseq_n} ACK
Content-Length: 0

`

func itoa(i int) string { return strconv.Itoa(i) }

func toTag(res *sip.Response) string {
	if to := res.To(); to != nil {
		t, _ := to.Params.Get("tag")
		return t
	}
	return ""
}
