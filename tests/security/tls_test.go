package security

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/kemigo/kemigo/internal/siptest"
	"github.com/kemigo/kemigo/tests/harness"
)

const sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0\r\n"

// TestTLSCall: a call from a UAC over TLS (alice, authenticated) to a
// UAS over TCP or UDP (bob, registered) through the proxy's
// "tls:127.0.0.1:port" socket, with a certificate made for the test. The
// INVITE crosses transports, so the proxy record-routes twice (rr's
// enable_double_rr): the outbound header with the UAS side's transport,
// the inbound one with transport=tls. The ACK and the BYE (from the
// callee, back over TLS on the caller's connection) follow that route set.
func TestTLSCall(t *testing.T) {
	harness.NeedScript(t)
	s := harness.Start(t, harness.BasicConfig(t, "", "bob"), harness.Options{TLS: true})
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CAPEM) {
		t.Fatal("CA")
	}
	tlsCfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	tlsHP := s.Addrs["tls"]
	_, tlsPort, _ := net.SplitHostPort(tlsHP)

	for _, proto := range []string{"tcp", "udp"} {
		t.Run("tls-to-"+proto, func(t *testing.T) {
			_, port, _ := net.SplitHostPort(s.Addrs[proto])
			bob := siptest.NewUA(t, proto, s.Addrs[proto], "bob", harness.Password, harness.Domain)
			bob.Register(3600)
			defer bob.Register(0)
			alice := siptest.NewUA(t, "tls", tlsHP, harness.User, harness.Password, harness.Domain, siptest.WithTLS(tlsCfg))

			inv := alice.NewRequest("INVITE", "sip:bob@"+harness.Domain)
			inv.Body = sdp
			alice.Send(inv)
			res := alice.ExpectFinal(inv)
			if res.StatusCode != 407 {
				t.Fatalf("INVITE: %d %s", res.StatusCode, res.Reason)
			}
			alice.Send(inv.ACKFor(res))
			inv = alice.Authorize(inv, res)
			alice.Send(inv)

			in := bob.ExpectRequest("INVITE")
			outRR := fmt.Sprintf("<sip:127.0.0.1:%s;transport=%s;r2=on;lr=on>", port, proto)
			if proto == "udp" {
				outRR = fmt.Sprintf("<sip:127.0.0.1:%s;r2=on;lr=on>", port)
			}
			inRR := fmt.Sprintf("<sip:127.0.0.1:%s;transport=tls;r2=on;lr=on>", tlsPort)
			rr := siptest.SplitHeaderValues(siptest.Headers(in, "Record-Route"))
			if len(rr) != 2 || rr[0] != outRR || rr[1] != inRR {
				t.Errorf("Record-Route %q, want [%s %s]", rr, outRR, inRR)
			}
			vias := siptest.Headers(in, "Via")
			if len(vias) != 2 || !strings.HasPrefix(vias[0], "SIP/2.0/"+strings.ToUpper(proto)+" 127.0.0.1:"+port) ||
				!strings.HasPrefix(vias[1], "SIP/2.0/TLS "+alice.Local()) {
				t.Errorf("Via %q", vias)
			}
			if string(in.Body()) != sdp {
				t.Errorf("body %q", in.Body())
			}
			bob.Reply(in, 180, "")
			ok := bob.ReplyBody(in, 200, "", sdp)

			final := alice.ExpectFinal(inv)
			if final.StatusCode != 200 {
				t.Fatalf("INVITE with credentials: %d %s", final.StatusCode, final.Reason)
			}
			if got := siptest.SplitHeaderValues(siptest.Headers(final, "Record-Route")); len(got) != 2 || got[0] != outRR || got[1] != inRR {
				t.Errorf("200 Record-Route %q", got)
			}
			dlg := alice.DialogFrom(inv, final)
			alice.Send(dlg.ACK())
			ack := bob.ExpectRequest("ACK")
			if got := siptest.Headers(ack, "Route"); len(got) != 0 {
				t.Errorf("ACK reached bob with Route %q", got)
			}

			// the callee hangs up: its BYE goes back over TLS on alice's connection
			bdlg := bob.DialogAsUAS(in, ok)
			if len(bdlg.Routes) != 2 || bdlg.Routes[0] != outRR {
				t.Errorf("callee route set %q", bdlg.Routes)
			}
			bye := bdlg.Request("BYE")
			bob.Send(bye)
			got := alice.ExpectRequest("BYE")
			if v := siptest.Headers(got, "Via"); len(v) != 2 || !strings.HasPrefix(v[0], "SIP/2.0/TLS 127.0.0.1:"+tlsPort) {
				t.Errorf("BYE at alice: Via %q", v)
			}
			alice.Reply(got, 200, "")
			if res := bob.ExpectFinal(bye); res.StatusCode != 200 {
				t.Errorf("BYE: %d %s", res.StatusCode, res.Reason)
			}
			alice.ExpectNoMore(200 * time.Millisecond)
		})
	}
	s.WaitIdle(t, 3*time.Second)
}

// TestTLSRefusals: a client that does not trust the proxy's certificate
// does not get a session, plain SIP sent to the TLS port is not answered
// (the connection is closed), and the proxy keeps serving TLS.
func TestTLSRefusals(t *testing.T) {
	harness.NeedScript(t)
	s := harness.Start(t, harness.BasicConfig(t, ""), harness.Options{TLS: true})
	if _, err := siptest.NewClient("tls", s.Addrs["tls"], siptest.WithTLS(&tls.Config{})); err == nil ||
		!strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted certificate accepted: %v", err)
	}
	conn, err := net.Dial("tcp", s.Addrs["tls"])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	c := siptest.Dial(t, "udp", s.Addrs["udp"]) // renders the text only
	sent, _ := c.Render(siptest.Options)
	if _, err := conn.Write([]byte(sent.Raw)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	n, _ := conn.Read(buf)
	if strings.Contains(string(buf[:n]), "SIP/2.0") {
		t.Errorf("plain SIP on the TLS port answered: %q", buf[:n])
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CAPEM)
	tc := siptest.Dial(t, "tls", s.Addrs["tls"], siptest.WithTLS(&tls.Config{RootCAs: pool}))
	_, res := tc.Exchange(siptest.Options)
	siptest.AssertStatus(t, res, 200, "Keepalive")
}
