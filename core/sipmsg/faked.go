package sipmsg

import "github.com/emiago/sipgo/sip"

const fakedText = "OPTIONS sip:you@kamailio.org SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 127.0.0.1\r\n" +
	"From: <sip:you@kamailio.org>;tag=123\r\n" +
	"To: <sip:you@kamailio.org>\r\n" +
	"Call-ID: 123\r\n" +
	"CSeq: 1 OPTIONS\r\n" +
	"Content-Length: 0\r\n\r\n"

// Faked returns the dummy OPTIONS request KSR functions act on outside any
// route (top level, mod_init, child_init), as Kamailio's faked_msg_next().
func Faked() *Msg {
	parsed, err := sip.ParseMessage([]byte(fakedText))
	if err != nil {
		panic("sipmsg: faked message does not parse: " + err.Error())
	}
	m := NewRequest(parsed.(*sip.Request))
	m.Faked = true
	m.Proto = "udp"
	m.SrcIP, m.SrcPort = "127.0.0.1", 5060
	m.DstIP, m.DstPort = "127.0.0.1", 5060
	m.NoReply = true
	return m
}

// Parse parses raw SIP text into a Msg (tests and tools).
func Parse(raw []byte) (*Msg, error) {
	parsed, err := sip.ParseMessage(raw)
	if err != nil {
		return nil, err
	}
	switch v := parsed.(type) {
	case *sip.Request:
		return NewRequest(v), nil
	case *sip.Response:
		return NewReply(v), nil
	}
	return nil, err
}
