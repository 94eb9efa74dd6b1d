package rr

import (
	"bufio"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/rs/zerolog"
)

// fakeMe listens on udp+tcp 10.0.0.1:5060, udp+tcp 10.0.0.2:5080,
// udp [2001:db8::1]:5060, with the alias proxy.example.com (any port).
type fakeMe struct{}

var fakeSockets = []struct {
	proto, ip string
	port      int
}{
	{"udp", "10.0.0.1", 5060},
	{"tcp", "10.0.0.1", 5060},
	{"udp", "10.0.0.2", 5080},
	{"tcp", "10.0.0.2", 5080},
	{"udp", "2001:db8::1", 5060},
}

func (fakeMe) IsMyself(host string, port int, proto string) bool {
	if strings.EqualFold(host, "proxy.example.com") {
		return true
	}
	for _, s := range fakeSockets {
		if (port == 0 || port == s.port) && (proto == "" || proto == s.proto) && net.ParseIP(host).Equal(net.ParseIP(s.ip)) {
			return true
		}
	}
	return false
}

// crlf turns the line ends of a test message into CRLF.
func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

// request builds a request. toTag "" makes it an initial request; routes
// are whole header lines ("Route: <...>").
func request(method, ruri, toTag string, lines ...string) string {
	to := "To: <sip:bob@example.com>"
	if toTag != "" {
		to += ";tag=" + toTag
	}
	s := method + " " + ruri + " SIP/2.0\n" +
		"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1\n"
	for _, l := range lines {
		s += l + "\n"
	}
	s += "From: <sip:alice@example.com>;tag=a1\n" +
		to + "\n" +
		"Call-ID: c1@192.0.2.10\n" +
		"CSeq: 1 " + method + "\n" +
		"Content-Length: 0\n\n"
	return crlf(s)
}

func invite(lines ...string) string {
	return request("INVITE", "sip:bob@example.com", "", lines...)
}

// newCtx parses raw and wraps it as received on udp:10.0.0.1:5060.
func newCtx(t *testing.T, raw string) *kemi.Ctx {
	t.Helper()
	m, err := sipmsg.Parse([]byte(raw))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	m.Proto, m.DstIP, m.DstPort = "udp", "10.0.0.1", 5060
	m.SrcIP, m.SrcPort = "192.0.2.10", 5060
	return &kemi.Ctx{Msg: m, Route: kemi.RouteRequest, Worker: kemi.NewWorkerState(0), Log: zerolog.Nop(), BranchIdx: -1}
}

func newModule(t *testing.T, edit func(*Config)) *Module {
	t.Helper()
	cfg := DefaultConfig()
	if edit != nil {
		edit(&cfg)
	}
	mod, err := New(cfg, fakeMe{})
	if err != nil {
		t.Fatal(err)
	}
	return mod
}

// wire forwards a copy of the message the way the forwarding code does
// (ApplyEdits, then OnForward) and returns its Route and Record-Route
// header bodies as serialised.
func wire(mod *Module, c *kemi.Ctx, proto, ip string, port int) (routes, rrs []string) {
	out := c.Msg.Req.Clone()
	c.Msg.ApplyEdits(out)
	mod.OnForward(c, out, c.Msg, proto, ip, port)
	for _, line := range strings.Split(out.String(), "\r\n") {
		name, body, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.ToLower(name) {
		case "route":
			routes = append(routes, strings.TrimSpace(body))
		case "record-route":
			rrs = append(rrs, strings.TrimSpace(body))
		}
	}
	return routes, rrs
}

func checkCatalog(t *testing.T, module string, exps []kemi.Export) {
	t.Helper()
	f, err := os.Open("../../../../shared/kemi/catalog.tsv")
	if err != nil {
		t.Skip("catalog.tsv not available:", err)
	}
	defer f.Close()
	type sig struct{ params, ret string }
	cat := map[string]sig{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		col := strings.Split(sc.Text(), "\t")
		if len(col) >= 4 && col[0] == module {
			cat[col[1]] = sig{col[2], col[3]}
		}
	}
	seen := map[string]bool{}
	for _, e := range exps {
		seen[e.Name] = true
		if e.Module != module {
			t.Errorf("%s: module %q", e.Name, e.Module)
		}
		want, ok := cat[e.Name]
		if !ok {
			t.Errorf("%s: not in the catalog", e.Name)
			continue
		}
		params := "none"
		if len(e.Params) > 0 {
			ps := make([]string, len(e.Params))
			for i, p := range e.Params {
				ps[i] = p.String()
			}
			params = strings.Join(ps, ",")
		}
		if params != want.params || e.Ret.String() != want.ret {
			t.Errorf("%s: (%s) -> %s, catalog (%s) -> %s", e.Name, params, e.Ret, want.params, want.ret)
		}
	}
	for name := range cat {
		if !seen[name] {
			t.Errorf("%s.%s: in the catalog but not exported", module, name)
		}
	}
}
