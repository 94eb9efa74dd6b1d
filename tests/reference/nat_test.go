package reference

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/kemigo/kemigo/core/config"
	"github.com/kemigo/kemigo/core/modules/rtpproxy"
	"github.com/kemigo/kemigo/internal/siptest"
)

// fakeRTPProxy answers rtpproxy's control protocol on a UDP port of
// 127.0.0.1: version checks, then a fixed media address for offers (U)
// and answers (L).
type fakeRTPProxy struct {
	conn net.PacketConn
	mu   sync.Mutex
	cmds []string
}

const (
	rtpIP          = "203.0.113.1"
	rtpOfferPort   = "35000"
	rtpAnswerPort  = "35002"
	privateCaller  = "192.168.1.10"
	privateCallee  = "192.168.1.20"
	privateSIPPort = "5060"
)

func startFakeRTPProxy(t *testing.T) *fakeRTPProxy {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeRTPProxy{conn: conn}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			cookie, cmd, _ := strings.Cut(string(buf[:n]), " ")
			f.mu.Lock()
			f.cmds = append(f.cmds, cmd)
			f.mu.Unlock()
			reply := "0"
			switch {
			case cmd == "V":
				reply = "20040107"
			case strings.HasPrefix(cmd, "VF "):
				reply = "1"
			case strings.HasPrefix(cmd, "U"):
				reply = rtpOfferPort + " " + rtpIP
			case strings.HasPrefix(cmd, "L"):
				reply = rtpAnswerPort + " " + rtpIP
			}
			_, _ = conn.WriteTo([]byte(cookie+" "+reply+"\n"), from)
		}
	}()
	return f
}

func (f *fakeRTPProxy) sock() string { return "udp:" + f.conn.LocalAddr().String() }

// commands returns the commands received whose first letter is op and
// that name callID.
func (f *fakeRTPProxy) commands(op byte, callID string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.cmds {
		if len(c) > 0 && c[0] == op && strings.Contains(c, callID) {
			out = append(out, c)
		}
	}
	return out
}

// proxied checks that an SDP was rewritten by rtpproxy_manage.
func proxied(t *testing.T, what, body, port string) {
	t.Helper()
	for _, want := range []string{"c=IN IP4 " + rtpIP, "m=audio " + port + " ", "a=nortpproxy:yes"} {
		if !strings.Contains(body, want) {
			t.Errorf("%s SDP has no %q:\n%s", what, want, body)
		}
	}
}

func privateContact(user, ip, proto string) string {
	c := "sip:" + user + "@" + ip + ":" + privateSIPPort
	if proto == "tcp" {
		c += ";transport=tcp"
	}
	return c
}

// alias is nathelper's ;alias=ip~port~proto for a UA's socket.
func alias(u *siptest.UA) string {
	n := "1"
	if u.Proto == "tcp" {
		n = "2"
	}
	return ";alias=" + u.LocalIP + "~" + itoa(u.LocalPort) + "~" + n
}

// TestCallNAT covers the script's NAT handling (WITH_NAT): a caller or a
// callee whose Contact is a private address (nat_uac_test(19) test 1)
// behind a NAT whose public side is its loopback socket. The media goes
// through rtpproxy (rtpproxy_manage("co"), here a fake on a free port in
// place of the cfg's udp:127.0.0.1:7722), the Contact gets an alias of
// the public address (set_contact_alias) and in-dialog requests to it
// find their way back through handle_ruri_alias.
func TestCallNAT(t *testing.T) {
	rtp := startFakeRTPProxy(t)
	e := startEnv(t, func(c *config.Config) { c.RTPProxy.RtpproxySock = rtpproxy.StringList{rtp.sock()} })
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			t.Run("caller-behind-nat", func(t *testing.T) {
				a, b := e.ua(t, proto, "alice"), e.ua(t, proto, "bob")
				e.register(t, b)
				contact := privateContact(a.User, privateCaller, proto)
				inv := a.NewRequest("INVITE", e.uri("bob"))
				inv.Contact = contact
				inv.Body = strings.ReplaceAll(sdp(a.Client), a.LocalIP, privateCaller)
				inv = authRequest(t, a, inv)

				in := b.ExpectRequest("INVITE")
				// set_contact_alias (first hop), rtpproxy offer
				if got, want := siptest.HeaderURI(mustHeader(t, in, "Contact")), contact+alias(a); got != want {
					t.Errorf("Contact at B %q, want %q", got, want)
				}
				proxied(t, "INVITE", string(in.Body()), rtpOfferPort)
				if len(rtp.commands('U', inv.CallID)) == 0 {
					t.Errorf("no rtpproxy offer for %s", inv.CallID)
				}
				b.Reply(in, 180, "")
				bOK := b.ReplyBody(in, 200, "", sdp(b.Client))
				ok := a.ExpectFinal(inv)
				siptest.AssertStatus(t, ok, 200, "OK")
				// the onreply route manages the transaction's NATed media too:
				// it needs FLT_NATS, a flag of the transaction, visible there
				// (Kamailio's tm copies the transaction's flags, the branch's
				// flags and the AVPs to the reply for the onreply route)
				if len(rtp.commands('L', inv.CallID)) == 0 {
					t.Errorf("no rtpproxy answer for %s: ksr_onreply_manage did not see FLT_NATS (flag 5) of the transaction", inv.CallID)
				}
				proxied(t, "200 OK", string(ok.Body()), rtpAnswerPort)
				dlg := a.DialogFrom(inv, ok)
				a.Send(dlg.ACK())
				e.fromProxy(t, b.ExpectRequest("ACK"), proto, b.Contact())

				// B hangs up: its BYE goes to the aliased Contact, which
				// handle_ruri_alias turns into $du = A's public address
				bd := b.DialogAsUAS(in, bOK)
				bye := bd.Request("BYE")
				b.Send(bye)
				inBye := a.ExpectRequest("BYE")
				e.fromProxy(t, inBye, proto, contact)
				a.Reply(inBye, 200, "")
				siptest.AssertStatus(t, b.ExpectFinal(bye), 200, "OK")
				a.ExpectNoMore(quiet)
				b.ExpectNoMore(0)
			})
			t.Run("callee-behind-nat", func(t *testing.T) {
				a, b := e.ua(t, proto, "alice"), e.ua(t, proto, "bob")
				contact := privateContact(b.User, privateCallee, proto)
				r := b.RegisterRequest(600)
				r.Contact = contact
				b.Send(r)
				r = b.Authorize(r, b.ExpectFinal(r))
				b.Send(r)
				siptest.AssertStatus(t, b.ExpectFinal(r), 200, "OK")
				t.Cleanup(func() { _ = e.p.Mods.Usrloc.Remove(b.User) })

				inv := a.NewRequest("INVITE", e.uri("bob"))
				inv.Body = sdp(a.Client)
				inv = authRequest(t, a, inv)
				// lookup: R-URI the private contact, $du its received
				// address; its cflags carry FLB_NATB: media proxied
				in := b.ExpectRequest("INVITE")
				e.fromProxy(t, in, proto, contact)
				proxied(t, "INVITE", string(in.Body()), rtpOfferPort)
				b.ReplyBody(in, 200, "", strings.ReplaceAll(sdp(b.Client), b.LocalIP, privateCallee),
					"Contact: <"+contact+">")
				ok := a.ExpectFinal(inv)
				siptest.AssertStatus(t, ok, 200, "OK")
				if len(rtp.commands('L', inv.CallID)) == 0 {
					t.Errorf("no rtpproxy answer for %s: ksr_onreply_manage did not see FLB_NATB (branch flag 6) of the branch", inv.CallID)
				}
				proxied(t, "200 OK", string(ok.Body()), rtpAnswerPort)
				// the onreply route aliases the NATed callee's Contact
				if got, want := siptest.HeaderURI(mustHeader(t, ok, "Contact")), contact+alias(b); got != want {
					// without the alias the ACK and BYE would go to the
					// private address: stop here
					t.Fatalf("200 Contact at A %q, want %q (set_contact_alias in the onreply route: it needs FLB_NATB, the branch flag, visible there)", got, want)
				}
				dlg := a.DialogFrom(inv, ok)
				a.Send(dlg.ACK())
				e.fromProxy(t, b.ExpectRequest("ACK"), proto, contact)
				bye := dlg.Request("BYE")
				a.Send(bye)
				inBye := b.ExpectRequest("BYE")
				e.fromProxy(t, inBye, proto, contact)
				b.Reply(inBye, 200, "")
				siptest.AssertStatus(t, a.ExpectFinal(bye), 200, "OK")
				a.ExpectNoMore(quiet)
				b.ExpectNoMore(0)
			})
		})
	}
}
