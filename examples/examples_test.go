package examples

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kemigo/kemigo/core/config"
	"github.com/kemigo/kemigo/internal/siptest"
)

// request is a request to the proxy with a free method, R-URI user and
// extra header lines.
func request(method, user, extra string) string {
	ruri := "sip:${server}"
	if user != "" {
		ruri = "sip:" + user + "@${server}"
	}
	h := "User-Agent: kemigo-siptest\n"
	if extra != "" {
		h = extra + "\n"
	}
	return method + " " + ruri + ` SIP/2.0
Via: SIP/2.0/${transport} ${local};branch=${branch};rport
Max-Forwards: 70
From: <sip:siptest@${local_ip}>;tag=${tag}
To: <` + ruri + `>
Call-ID: ${call_id}
CSeq: ${cseq} ` + method + `
Contact: <sip:siptest@${local};transport=${proto}>
` + h + `Content-Length: ${content_length}

`
}

// startKeepaliveReject runs keepalive_reject.py with the configuration the
// README uses (listen addresses aside) and returns the rate limit and window.
func startKeepaliveReject(t *testing.T) (udp, tcp string, logs *siptest.LogBuffer, limit, window int) {
	t.Helper()
	cfg, err := config.Load("keepalive_reject.toml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.AppPython3.Load = "keepalive_reject.py" // the file says examples/...: relative to the repository root
	limit, _ = strconv.Atoi(cfg.KX.Defines["RATE_LIMIT"])
	window, _ = strconv.Atoi(cfg.KX.Defines["RATE_WINDOW"])
	if limit <= 0 || window <= 0 {
		t.Fatalf("keepalive_reject.toml: RATE_LIMIT %q, RATE_WINDOW %q", cfg.KX.Defines["RATE_LIMIT"], cfg.KX.Defines["RATE_WINDOW"])
	}
	p, udp, tcp := siptest.StartProxy(t, cfg)
	return udp, tcp, siptest.Logs(p), limit, window
}

func TestKeepaliveReject(t *testing.T) {
	udp, tcp, logs, limit, window := startKeepaliveReject(t)
	note := func(n int) string { return fmt.Sprintf("%d/%d in %ds", n, limit, window) }
	allow := "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER"

	type step struct {
		tmpl   string
		code   int // 0: no reply
		reason string
		hdrs   map[string]string // exact values of reply headers
		noHdrs []string          // headers the reply must not have
		log    string            // a log message that must appear (the route ran)
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"keepalive", []step{{tmpl: siptest.Options, code: 200, reason: "Keepalive",
			hdrs: map[string]string{"X-Rate-Note": note(1), "Allow": allow}}}},
		{"unknown-method-405", []step{{tmpl: request("PUBLISH", "alice", ""), code: 405, reason: "Method Not Allowed",
			hdrs: map[string]string{"Allow": allow, "X-Rate-Note": note(1)}}}},
		{"invite-403-no-relay", []step{{tmpl: request("INVITE", "alice", ""), code: 403, reason: "Relaying Forbidden",
			hdrs: map[string]string{"X-Rate-Note": note(1)}, noHdrs: []string{"Allow"}}}},
		{"options-to-user-403", []step{{tmpl: request("OPTIONS", "alice", ""), code: 403, reason: "Relaying Forbidden"}}},
		{"max-forwards-0", []step{{tmpl: strings.Replace(siptest.Options, "Max-Forwards: 70", "Max-Forwards: 0", 1),
			code: 483, reason: "Too Many Hops", noHdrs: []string{"X-Rate-Note"}}}},
		{"sanity-400", []step{{tmpl: strings.Replace(request("OPTIONS", "alice", ""), "CSeq: ${cseq} OPTIONS", "CSeq: ${cseq} INFO", 1),
			code: 400, reason: "CSeq method does not match request method", log: "Malformed SIP message from"}}},
		{"sanity-dropped", []step{{tmpl: request("OPTIONS", "alice", "Call-ID: ${call_id}"),
			log: "Malformed SIP message from"}}},
		{"ack-not-answered", []step{{tmpl: request("ACK", "alice", ""), log: "ACK for sip:alice@"}}},
		{"scanner-403-then-banned", []step{
			{tmpl: request("OPTIONS", "", "User-Agent: friendly-scanner"), code: 403, reason: "Forbidden", log: "banned"},
			{tmpl: siptest.Options, log: "dropping OPTIONS from banned"},
		}},
	}
	for pi, proto := range []string{"udp", "tcp"} {
		for ci, tc := range cases {
			t.Run(proto+"/"+tc.name, func(t *testing.T) {
				// one source address per case: the rate and ban tables are
				// keyed by source IP
				ip := fmt.Sprintf("127.0.%d.%d", 10+pi, 10+ci)
				c := siptest.Dial(t, proto, map[string]string{"udp": udp, "tcp": tcp}[proto], siptest.WithLocalIP(ip))
				for _, st := range tc.steps {
					sent := c.Send(st.tmpl)
					if st.log != "" {
						logs.WaitFor(t, st.log, siptest.All(siptest.FieldIs("callid", sent.CallID),
							siptest.MessageContains(st.log)))
					}
					if st.code == 0 {
						c.ExpectNone(400 * time.Millisecond)
						continue
					}
					res := c.Expect()
					siptest.AssertStatus(t, res, st.code, st.reason)
					siptest.AssertMatches(t, res, sent)
					siptest.AssertHeader(t, res, "Server", "kemigo")
					for k, v := range st.hdrs {
						siptest.AssertHeader(t, res, k, v)
					}
					for _, k := range st.noHdrs {
						siptest.AssertNoHeader(t, res, k)
					}
				}
			})
		}
	}
}

// TestKeepaliveRejectRateNote sends RATE_LIMIT keepalives from one address,
// each noted in X-Rate-Note, then one more: 503 with Retry-After.
func TestKeepaliveRejectRateNote(t *testing.T) {
	udp, tcp, logs, limit, window := startKeepaliveReject(t)
	for pi, proto := range []string{"udp", "tcp"} {
		t.Run(proto, func(t *testing.T) {
			ip := fmt.Sprintf("127.0.20.%d", 1+pi)
			c := siptest.Dial(t, proto, map[string]string{"udp": udp, "tcp": tcp}[proto], siptest.WithLocalIP(ip))
			start := time.Now()
			for i := 1; i <= limit; i++ {
				sent, res := c.Exchange(siptest.Options)
				siptest.AssertStatus(t, res, 200, "Keepalive")
				siptest.AssertMatches(t, res, sent)
				siptest.AssertHeader(t, res, "X-Rate-Note", fmt.Sprintf("%d/%d in %ds", i, limit, window))
			}
			sent, res := c.Exchange(siptest.Options)
			if time.Since(start) >= time.Duration(window)*time.Second {
				t.Skipf("sending %d requests took more than the %ds window", limit+1, window)
			}
			siptest.AssertStatus(t, res, 503, "Rate Limit Exceeded")
			siptest.AssertMatches(t, res, sent)
			siptest.AssertHeader(t, res, "Retry-After", strconv.Itoa(window))
			siptest.AssertHeader(t, res, "X-Rate-Note", fmt.Sprintf("%d/%d in %ds", limit+1, limit, window))
			logs.WaitFor(t, "rate note for "+ip, siptest.MessageContains("rate note: "+ip+" sent more than"))
		})
	}
}
