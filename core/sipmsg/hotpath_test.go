package sipmsg

import (
	"hash/fnv"
	"strconv"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// nameIs must agree with comparing CanonicalName results.
func TestNameIsMatchesCanonicalName(t *testing.T) {
	names := []string{"Via", "v", "V", "via", "VIA", " Via ", "Call-ID", "i", "I", "call-id", "From", "f", "To", "t",
		"Contact", "m", "Record-Route", "Route", "X-Foo", "x", "X", "l", "Content-Length", "k", "Supported", "",
		"Kelvin\u212a", "Ça", "y", "Identity", "q", "Q"}
	for _, n := range names {
		for _, w := range names {
			want := CanonicalName(w)
			if got, exp := nameIs(n, want), CanonicalName(n) == want; got != exp {
				t.Errorf("nameIs(%q, %q) = %v, CanonicalName says %v", n, want, got, exp)
			}
		}
	}
}

// The local To-tag is the one hash/fnv gave before (replies to
// retransmissions must keep their tag across versions too).
func TestLocalToTagFNV(t *testing.T) {
	raw := "INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-abc\r\n" +
		"From: <sip:alice@127.0.0.1>;tag=ft1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: cid-1@x\r\nCSeq: 42 INVITE\r\nContent-Length: 0\r\n\r\n"
	msg, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	m := NewRequest(msg.(*sip.Request))
	h := fnv.New64a()
	for _, s := range []string{"cid-1@x", "ft1", "z9hG4bK-abc", "42"} {
		h.Write([]byte(s))
	}
	if got, want := m.LocalToTag(), tagPrefix+"-"+strconv.FormatUint(h.Sum64(), 16); got != want {
		t.Fatalf("LocalToTag %q, want %q", got, want)
	}
	if got := m.RURI(); got != "sip:bob@127.0.0.1" {
		t.Fatalf("RURI %q", got)
	}
	if err := m.SetRURI("sip:carol@127.0.0.2"); err != nil || m.RURI() != "sip:carol@127.0.0.2" {
		t.Fatalf("RURI after SetRURI: %q %v", m.RURI(), err)
	}
	for _, c := range []struct {
		ip   string
		port int
		want string
	}{{"127.0.0.1", 5060, "127.0.0.1:5060"}, {"::1", 5060, "[::1]:5060"}, {"[::1]", 0, "[::1]:0"}, {"", 1, ":1"}} {
		if got := JoinHostPort(c.ip, c.port); got != c.want {
			t.Errorf("JoinHostPort(%q, %d) = %q, want %q", c.ip, c.port, got, c.want)
		}
	}
}

func BenchmarkHeaderLookup(b *testing.B) {
	raw := "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-abc\r\nMax-Forwards: 70\r\n" +
		"From: <sip:alice@127.0.0.1>;tag=ft1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: cid-1@x\r\nCSeq: 42 OPTIONS\r\n" +
		"Contact: <sip:alice@127.0.0.1:5070>\r\nUser-Agent: bench\r\nContent-Length: 0\r\n\r\n"
	msg, _ := sip.ParseMessage([]byte(raw))
	m := NewRequest(msg.(*sip.Request))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if m.Header("User-Agent") == nil {
			b.Fatal("no User-Agent")
		}
	}
}

// benchInvite is an INVITE as a UA sends it, with an SDP body (about 900
// bytes).
const benchInvite = "INVITE sip:bob@127.0.0.1 SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-524287-1---4f5b1c;rport\r\n" +
	"Max-Forwards: 70\r\n" +
	"Contact: <sip:alice@127.0.0.1:5070;transport=udp>\r\n" +
	"To: <sip:bob@127.0.0.1>\r\n" +
	"From: \"Alice\" <sip:alice@127.0.0.1>;tag=8a1b2c3d\r\n" +
	"Call-ID: 7f3e2a1b9c8d7e6f@127.0.0.1\r\n" +
	"CSeq: 2 INVITE\r\n" +
	"Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE\r\n" +
	"Content-Type: application/sdp\r\n" +
	"Proxy-Authorization: Digest username=\"alice\",realm=\"127.0.0.1\",nonce=\"ZGVhZGJlZWY=\",uri=\"sip:bob@127.0.0.1\",response=\"0123456789abcdef0123456789abcdef\",algorithm=MD5\r\n" +
	"User-Agent: kemigo-bench\r\n" +
	"Allow-Events: presence, kpml, talk\r\n" +
	"Content-Length: 201\r\n\r\n" +
	"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
	"m=audio 6000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n" +
	"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n"

// BenchmarkParse is one received INVITE made into a Msg (sipgo's parser
// and kemigo's wrapping).
func BenchmarkParse(b *testing.B) {
	raw := []byte(benchInvite)
	if _, err := Parse(raw); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for i := 0; i < b.N; i++ {
		if _, err := Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}
