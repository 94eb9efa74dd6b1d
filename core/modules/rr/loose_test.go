package rr

import (
	"slices"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/kemi"
)

func bye(lines ...string) string {
	return request("BYE", "sip:bob@192.0.2.20:5060", "b1", lines...)
}

func TestLooseRoute(t *testing.T) {
	tests := []struct {
		name    string
		cfg     func(*Config)
		raw     string
		setup   func(c *kemi.Ctx)
		fn      string // loose_route (default), loose_route_preloaded, loose_route_mode
		mode    int
		want    int64
		du      string
		ruri    string   // expected R-URI; "" = unchanged
		routes  []string // Route headers of the forwarded copy
		sock    string   // forced send socket
		nextHop int64    // next_hop_route()
	}{
		{
			name: "no Route", raw: bye(), want: -1, nextHop: -1,
		},
		{
			name: "in dialog: our Route removed, next loose router in $du",
			raw:  bye("Route: <sip:10.0.0.1;lr;ftag=a1>", "Route: <sip:p2.example.com;lr>"),
			want: 1, du: "sip:p2.example.com;lr", routes: []string{"<sip:p2.example.com;lr>"}, nextHop: 1,
		},
		{
			name: "comma-separated Route values",
			raw:  bye("Route: <sip:10.0.0.1;lr;ftag=a1>, <sip:p2.example.com;lr>, <sip:p3.example.com;lr>"),
			want: 1, du: "sip:p2.example.com;lr", routes: []string{"<sip:p2.example.com;lr>", "<sip:p3.example.com;lr>"}, nextHop: 1,
		},
		{
			name: "in dialog: only our Route: removed, R-URI is the next hop",
			raw:  bye("Route: <sip:10.0.0.1;lr;ftag=a1>"),
			want: 1, routes: nil, nextHop: -1,
		},
		{
			name: "alias and explicit port are ours",
			raw:  bye("Route: <sip:proxy.example.com:5080;lr>", "Route: <sip:p2.example.com;lr>"),
			want: 1, du: "sip:p2.example.com;lr", routes: []string{"<sip:p2.example.com;lr>"}, nextHop: 1,
		},
		{
			name: "no port means 5060: 10.0.0.2 listens on 5080 only, not ours",
			raw:  bye("Route: <sip:10.0.0.2;lr>"),
			want: 1, du: "sip:10.0.0.2;lr", routes: []string{"<sip:10.0.0.2;lr>"}, nextHop: -1,
		},
		{
			name: "initial request, only our Route: -3, Route removed",
			raw:  invite("Route: <sip:10.0.0.1;lr>"),
			want: -3, routes: nil, nextHop: -1,
		},
		{
			name: "loose_route_preloaded: 1 for the same",
			raw:  invite("Route: <sip:10.0.0.1;lr>"),
			fn:   "loose_route_preloaded", want: 1, routes: nil, nextHop: -1,
		},
		{
			name: "initial request, preloaded Route to another host: 1, Route kept",
			raw:  invite("Route: <sip:edge.example.net;lr>"),
			want: 1, du: "sip:edge.example.net;lr", routes: []string{"<sip:edge.example.net;lr>"}, nextHop: -1,
		},
		{
			name: "loose_route_preloaded: -1 for a preloaded Route to another host",
			raw:  invite("Route: <sip:edge.example.net;lr>"),
			fn:   "loose_route_preloaded", want: -1, du: "sip:edge.example.net;lr", routes: []string{"<sip:edge.example.net;lr>"}, nextHop: -1,
		},
		{
			name: "loose_route_preloaded: -1 in dialog",
			raw:  bye("Route: <sip:10.0.0.1;lr>"),
			fn:   "loose_route_preloaded", want: -1, nextHop: -1,
		},
		{
			name: "initial request, ours then another: 1, next hop in $du",
			raw:  invite("Route: <sip:10.0.0.1;lr>", "Route: <sip:as.example.net;lr>"),
			want: 1, du: "sip:as.example.net;lr", routes: []string{"<sip:as.example.net;lr>"}, nextHop: 1,
		},
		{
			name: "double Route (r2): both removed, send socket from the second",
			raw: bye("Route: <sip:10.0.0.1;transport=tcp;r2=on;lr;ftag=a1>",
				"Route: <sip:10.0.0.2:5080;r2=on;lr;ftag=a1>", "Route: <sip:p2.example.com;lr>"),
			want: 1, du: "sip:p2.example.com;lr", routes: []string{"<sip:p2.example.com;lr>"},
			sock: "udp:10.0.0.2:5080", nextHop: 1,
		},
		{
			name: "double Route, tcp second, nothing after: 1, both removed",
			raw:  bye("Route: <sip:10.0.0.1;r2=on;lr;ftag=a1>, <sip:10.0.0.1;transport=tcp;r2=on;lr;ftag=a1>"),
			want: 1, routes: nil, sock: "tcp:10.0.0.1:5060", nextHop: -1,
		},
		{
			name: "double Route, initial request, nothing after: -3",
			raw:  invite("Route: <sip:10.0.0.1;r2=on;lr>", "Route: <sip:10.0.0.1;transport=tcp;r2=on;lr>"),
			want: -3, routes: nil, sock: "tcp:10.0.0.1:5060", nextHop: -1,
		},
		{
			name: "enable_double_rr 0: r2 ignored, second Route is the next hop",
			cfg:  func(c *Config) { c.EnableDoubleRR = 0 },
			raw:  bye("Route: <sip:10.0.0.1;r2=on;lr>", "Route: <sip:10.0.0.1;transport=tcp;r2=on;lr>"),
			want: 1, du: "sip:10.0.0.1;transport=tcp;r2=on;lr", routes: []string{"<sip:10.0.0.1;transport=tcp;r2=on;lr>"}, nextHop: 1,
		},
		{
			name: "force_send_socket: socket of our (single) Route",
			cfg:  func(c *Config) { c.ForceSendSocket = 1 },
			raw:  bye("Route: <sip:10.0.0.2:5080;transport=tcp;lr>", "Route: <sip:p2.example.com;lr>"),
			want: 1, du: "sip:p2.example.com;lr", routes: []string{"<sip:p2.example.com;lr>"}, sock: "tcp:10.0.0.2:5080", nextHop: 1,
		},
		{
			name: "next hop is a strict router: it becomes the R-URI, the R-URI the last Route",
			raw:  bye("Route: <sip:10.0.0.1;lr>", "Route: <sip:strict.example.com>", "Route: <sip:p3.example.com;lr>"),
			want: 1, ruri: "sip:strict.example.com",
			routes:  []string{"<sip:p3.example.com;lr>", "<sip:bob@192.0.2.20:5060>"},
			nextHop: 1,
		},
		{
			name: "next hop strict with maddr",
			raw:  bye("Route: <sip:10.0.0.1;lr>", "Route: <sip:strict.example.com:5070;maddr=192.0.2.77>"),
			want: 1, ruri: "sip:192.0.2.77:5070", routes: []string{"<sip:bob@192.0.2.20:5060>"}, nextHop: 1,
		},
		{
			name: "next hop loose with maddr: $du from maddr",
			raw:  bye("Route: <sip:10.0.0.1;lr>", "Route: <sip:p2.example.com;lr;maddr=192.0.2.50>"),
			want: 1, du: "sip:192.0.2.50", routes: []string{"<sip:p2.example.com;lr;maddr=192.0.2.50>"}, nextHop: 1,
		},
		{
			name: "GRUU Route is not ours",
			raw:  bye("Route: <sip:10.0.0.1;gr=urn:uuid:1;lr>"),
			want: 1, du: "sip:10.0.0.1;gr=urn:uuid:1;lr", routes: []string{"<sip:10.0.0.1;gr=urn:uuid:1;lr>"}, nextHop: -1,
		},
		{
			name: "ignore_user Route is not ours",
			cfg:  func(c *Config) { c.IgnoreUser = "app" },
			raw:  bye("Route: <sip:app@10.0.0.1;lr>"),
			want: 1, du: "sip:app@10.0.0.1;lr", routes: []string{"<sip:app@10.0.0.1;lr>"}, nextHop: -1,
		},
		{
			name: "previous hop strict: R-URI ours, next loose; last Route back into the R-URI",
			raw: request("BYE", "sip:10.0.0.1;lr;ftag=a1", "b1",
				"Route: <sip:p2.example.com;lr>", "Route: <sip:bob@192.0.2.20>"),
			want: 1, du: "sip:p2.example.com;lr", ruri: "sip:bob@192.0.2.20",
			routes: []string{"<sip:p2.example.com;lr>"}, nextHop: -1,
		},
		{
			name: "previous hop strict, next strict: next into the R-URI",
			raw: request("BYE", "sip:10.0.0.1;lr", "b1",
				"Route: <sip:bob@192.0.2.20>"),
			want: 1, ruri: "sip:bob@192.0.2.20", routes: nil, nextHop: -1,
		},
		{
			name: "previous hop strict, double Route of ours first",
			raw: request("BYE", "sip:10.0.0.1;lr", "b1",
				"Route: <sip:10.0.0.1;transport=tcp;r2=on;lr>", "Route: <sip:bob@192.0.2.20>"),
			want: 1, ruri: "sip:bob@192.0.2.20", routes: nil, sock: "tcp:10.0.0.1:5060", nextHop: -1,
		},
		{
			name: "previous hop strict, only a double Route of ours: -1 (Route removed)",
			raw: request("BYE", "sip:10.0.0.1;lr", "b1",
				"Route: <sip:10.0.0.1;transport=tcp;r2=on;lr>"),
			want: -1, routes: nil, sock: "tcp:10.0.0.1:5060", nextHop: -1,
		},
		{
			name: "loose_route_mode(1): R-URI ours is not taken as strict routing",
			raw: request("BYE", "sip:10.0.0.1;lr", "b1",
				"Route: <sip:p2.example.com;lr>", "Route: <sip:bob@192.0.2.20>"),
			fn: "loose_route_mode", mode: 1,
			want: 1, du: "sip:p2.example.com;lr", routes: []string{"<sip:p2.example.com;lr>", "<sip:bob@192.0.2.20>"}, nextHop: -1,
		},
		{
			name: "rewritten R-URI counts for the strict test",
			raw:  bye("Route: <sip:p2.example.com;lr>"),
			setup: func(c *kemi.Ctx) {
				_ = c.Msg.SetRURI("sip:10.0.0.1")
			},
			want: 1, du: "sip:p2.example.com;lr", ruri: "sip:p2.example.com;lr", routes: nil, nextHop: -1,
		},
		{
			name: "no To header: -1",
			raw: crlf("BYE sip:bob@192.0.2.20 SIP/2.0\n" +
				"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1\n" +
				"Route: <sip:10.0.0.1;lr>\n" +
				"From: <sip:alice@example.com>;tag=a1\n" +
				"Call-ID: c1\nCSeq: 2 BYE\nContent-Length: 0\n\n"),
			want: -1, routes: []string{"<sip:10.0.0.1;lr>"}, nextHop: -1,
		},
		{
			name: "Route added as a generic header by other code",
			raw:  bye(),
			setup: func(c *kemi.Ctx) {
				c.Msg.Req.AppendHeader(sip.NewHeader("Route", "<sip:10.0.0.1;lr>, <sip:p2.example.com;lr>"))
			},
			want: 1, du: "sip:p2.example.com;lr", routes: []string{"<sip:p2.example.com;lr>"}, nextHop: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mod := newModule(t, tc.cfg)
			c := newCtx(t, tc.raw)
			if tc.setup != nil {
				tc.setup(c)
			}
			origRURI := c.Msg.RURI()
			origRoutes := len(c.Msg.Headers("route"))
			fn := tc.fn
			var args []any
			switch fn {
			case "":
				fn = "loose_route"
			case "loose_route_mode":
				args = []any{tc.mode}
			}
			run(t, mod, c, []step{{fn, args, tc.want}, call("next_hop_route", tc.nextHop)})
			if c.Msg.DstURI != tc.du {
				t.Errorf("$du = %q, want %q", c.Msg.DstURI, tc.du)
			}
			wantRURI := tc.ruri
			if wantRURI == "" {
				wantRURI = origRURI
			}
			if got := c.Msg.RURI(); got != wantRURI {
				t.Errorf("R-URI = %q, want %q", got, wantRURI)
			}
			if c.Msg.SendSock != tc.sock {
				t.Errorf("send socket = %q, want %q", c.Msg.SendSock, tc.sock)
			}
			routes, rrs := wire(mod, c, "udp", "10.0.0.1", 5060)
			if !slices.Equal(routes, tc.routes) {
				t.Errorf("forwarded Route:\n got %q\nwant %q", routes, tc.routes)
			}
			if len(rrs) != 0 {
				t.Errorf("Record-Route without record_route: %q", rrs)
			}
			// The received headers are still readable unchanged.
			if n := len(c.Msg.Headers("route")); n != origRoutes {
				t.Errorf("received Route headers: %d, had %d", n, origRoutes)
			}
		})
	}
}

// Calling loose_route twice routes the same received Route set again and
// leaves one pending Route edit, not two removals.
func TestLooseRouteTwice(t *testing.T) {
	mod := newModule(t, nil)
	c := newCtx(t, bye("Route: <sip:10.0.0.1;lr>", "Route: <sip:p2.example.com;lr>", "Route: <sip:p3.example.com;lr>"))
	run(t, mod, c, []step{call("loose_route", 1), call("loose_route", 1)})
	routes, _ := wire(mod, c, "udp", "10.0.0.1", 5060)
	if want := []string{"<sip:p2.example.com;lr>", "<sip:p3.example.com;lr>"}; !slices.Equal(routes, want) {
		t.Fatalf("routes %q", routes)
	}
	if n := len(c.Msg.Edits); n != 2 {
		t.Fatalf("%d edits queued, want one replace pair", n)
	}
}

// An initial INVITE with a preloaded Route set starting with us:
// loose_route, then record_route, forwarded UDP→TCP.
func TestPreloadedThenRecordRoute(t *testing.T) {
	mod := newModule(t, nil)
	c := newCtx(t, invite("Route: <sip:10.0.0.1;lr>", "Route: <sip:as.example.net;lr>"))
	run(t, mod, c, []step{call("loose_route", 1), call("record_route", 1)})
	routes, rrs := wire(mod, c, "tcp", "10.0.0.1", 5060)
	if want := []string{"<sip:as.example.net;lr>"}; !slices.Equal(routes, want) {
		t.Fatalf("routes %q", routes)
	}
	if want := []string{"<sip:10.0.0.1;transport=tcp;r2=on;lr;ftag=a1>", "<sip:10.0.0.1;r2=on;lr;ftag=a1>"}; !slices.Equal(rrs, want) {
		t.Fatalf("rrs %q", rrs)
	}
}
