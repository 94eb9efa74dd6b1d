package proxy_test

// Integration tests: a real proxy (transport, Python workers, modules) on
// loopback ports, driven over UDP and TCP by internal/siptest.

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kemigo/kemigo/core/config"
	"github.com/kemigo/kemigo/internal/siptest"
)

// referenceScript is Kamailio's example KEMI script, shipped by the Debian
// package "kamailio"; the tests use it unchanged.
const referenceScript = "/usr/share/doc/kamailio/examples/kemi/kamailio-basic-kemi-python.py"

var protos = []string{"udp", "tcp"}

// quiet is how long a test waits to be sure no reply comes, after the log
// showed that the route ran (so it only has to cover the send path).
const quiet = 400 * time.Millisecond

// withUser is an OPTIONS to a user at the proxy: the reference script's
// keep-alive check does not apply to it, so its sanity check runs.
const withUser = `OPTIONS sip:bob@${server} SIP/2.0
Via: SIP/2.0/${transport} ${local};branch=${branch};rport
Max-Forwards: 70
From: <sip:siptest@${local_ip}>;tag=${tag}
To: <sip:bob@${server}>
Call-ID: ${call_id}
CSeq: ${cseq} CSEQ_METHOD
EXTRA
Content-Length: ${content_length}

`

// userReq is withUser with the CSeq method and one more header line.
func userReq(cseqMethod, extra string) string {
	return strings.NewReplacer("CSEQ_METHOD", cseqMethod, "EXTRA", extra).Replace(withUser)
}

func addrs(udp, tcp string) map[string]string { return map[string]string{"udp": udp, "tcp": tcp} }

// TestReferenceScript runs the unchanged Debian example script.
//
// The client sends from 127.0.0.1, which the script's is_myself($si) treats
// as the proxy itself, so it skips the ipban/pike block (pike is not a
// kemigo module: from another address KSR.pike raises AttributeError and
// the request gets 500).
func TestReferenceScript(t *testing.T) {
	if _, err := os.Stat(referenceScript); err != nil {
		t.Skipf("%s not found: install the Debian package \"kamailio\" (apt-get install kamailio), which ships Kamailio's example KEMI scripts", referenceScript)
	}
	cfg := config.Default()
	cfg.AppPython3.Load = referenceScript
	p, udp, tcp := siptest.StartProxy(t, cfg)
	logs := siptest.Logs(p)

	cases := []struct {
		name   string
		tmpl   string
		code   int    // 0: no reply at all
		reason string // reason phrase of the reply
		logged bool   // "Malformed SIP message from <client>" must be logged
	}{
		{name: "keepalive", tmpl: siptest.Options, code: 200, reason: "Keepalive"},
		{name: "friendly-scanner",
			tmpl: strings.Replace(siptest.Options, "User-Agent: kemigo-siptest", "User-Agent: friendly-scanner", 1),
			code: 200, reason: "Processed"},
		{name: "max-forwards-0",
			tmpl: strings.Replace(siptest.Options, "Max-Forwards: 70", "Max-Forwards: 0", 1),
			code: 483, reason: "Too Many Hops"},
		// sanity check 4 (bit 2 of 17895): a duplicated Call-ID fails
		// without any reply (5.6.3), so the request is dropped.
		{name: "sanity-duplicate-call-id-dropped", tmpl: userReq("OPTIONS", "Call-ID: ${call_id}"),
			logged: true},
		// sanity check 32: the module itself answers 400, then the script
		// logs and stops.
		{name: "sanity-cseq-method-mismatch", tmpl: userReq("INFO", "Subject: mismatch"),
			code: 400, reason: "CSeq method does not match request method", logged: true},
	}
	for _, proto := range protos {
		for _, tc := range cases {
			t.Run(proto+"/"+tc.name, func(t *testing.T) {
				c := siptest.Dial(t, proto, addrs(udp, tcp)[proto])
				sent := c.Send(tc.tmpl)
				if tc.logged {
					e := logs.WaitFor(t, "Malformed SIP message from "+c.Local(), siptest.All(
						siptest.AtLevel("error"),
						siptest.MessageContains("Malformed SIP message from "+c.Local())))
					if got := e.Str("callid"); got != sent.CallID {
						t.Errorf("log entry callid %q, want %q", got, sent.CallID)
					}
				}
				if tc.code == 0 {
					c.ExpectNone(quiet)
					return
				}
				res := c.Expect()
				siptest.AssertStatus(t, res, tc.code, tc.reason)
				siptest.AssertMatches(t, res, sent)
				c.ExpectNone(50 * time.Millisecond) // exactly one reply
			})
		}
	}
}

// testReq is an OPTIONS whose X-Test header tells testdata/errors.py what to do.
const testReq = `OPTIONS sip:errors@${server} SIP/2.0
Via: SIP/2.0/${transport} ${local};branch=${branch};rport
Max-Forwards: 70
From: <sip:siptest@${local_ip}>;tag=${tag}
To: <sip:errors@${server}>
Call-ID: ${call_id}
CSeq: ${cseq} OPTIONS
X-Test: ${what}
Content-Length: ${content_length}

`

// markLine returns the 1-based line of file holding "MARK:<name>".
func markLine(t *testing.T, file, name string) int {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if strings.Contains(sc.Text(), "# MARK:"+name) {
			return n
		}
	}
	t.Fatalf("%s: no MARK:%s", file, name)
	return 0
}

func absPath(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// exceptionFor waits for the "unhandled exception" entry of a Call-ID and
// checks its file, line and traceback.
func exceptionFor(t *testing.T, logs *siptest.LogBuffer, callID, file string, line int, excText string) siptest.Entry {
	t.Helper()
	e := logs.WaitFor(t, "unhandled exception for "+callID, siptest.All(
		siptest.AtLevel("error"), siptest.FieldIs("callid", callID),
		siptest.MessageContains("unhandled exception")))
	if got := e.Str("file"); got != file {
		t.Errorf("file: got %q, want %q (%s)", got, file, e)
	}
	if got, ok := e.Int("line"); !ok || got != line {
		t.Errorf("line: got %v, want %d (%s)", e["line"], line, e)
	}
	if got := e.Str("route"); got != "ksr_request_route" {
		t.Errorf("route: got %q", got)
	}
	if tb := e.Str("traceback"); !strings.Contains(tb, excText) {
		t.Errorf("traceback does not contain %q:\n%s", excText, tb)
	}
	return e
}

// routeRan waits for the script's own info line for a Call-ID and returns it.
func routeRan(t *testing.T, logs *siptest.LogBuffer, callID, what string) siptest.Entry {
	t.Helper()
	return logs.WaitFor(t, "errors.py "+what+" for "+callID, siptest.All(
		siptest.AtLevel("info"), siptest.FieldIs("callid", callID),
		siptest.MessageContains("errors.py OPTIONS "+what)))
}

func errorsConfig(t *testing.T) config.Config {
	cfg := config.Default()
	cfg.AppPython3.Load = "testdata/errors.py"
	// Two workers: the test checks that the message after an exception
	// runs on the same worker (same Call-ID) and is handled normally.
	cfg.Workers = 2
	return cfg
}

// TestScriptException: an exception in the request route is logged with
// file and line, answered 500 Server Internal Error, and the worker goes on.
func TestScriptException(t *testing.T) {
	script := absPath(t, "testdata/errors.py")
	p, udp, tcp := siptest.StartProxy(t, errorsConfig(t))
	logs := siptest.Logs(p)
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			c := siptest.Dial(t, proto, addrs(udp, tcp)[proto])
			t.Run("raise-in-helper", func(t *testing.T) {
				sent, res := c.Exchange(testReq, "what", "raise")
				siptest.AssertStatus(t, res, 500, "Server Internal Error")
				siptest.AssertMatches(t, res, sent)
				exc := exceptionFor(t, logs, sent.CallID, script, markLine(t, script, "raise"), "ValueError: boom from a helper")
				c.ExpectNone(50 * time.Millisecond)

				// the next message of the dialog, on the same worker
				next, res := c.Exchange(testReq, "what", "ok", "call_id", sent.CallID)
				siptest.AssertStatus(t, res, 200, "Handled")
				siptest.AssertMatches(t, res, next)
				ran := routeRan(t, logs, sent.CallID, "ok")
				w1, ok1 := exc.Int("worker")
				w2, ok2 := ran.Int("worker")
				if !ok1 || !ok2 || w1 != w2 {
					t.Errorf("exception on worker %v, next message on worker %v", exc["worker"], ran["worker"])
				}
			})
			t.Run("type-error-from-KSR", func(t *testing.T) {
				sent, res := c.Exchange(testReq, "what", "typeerror")
				siptest.AssertStatus(t, res, 500, "Server Internal Error")
				exceptionFor(t, logs, sent.CallID, script, markLine(t, script, "typeerror"), "TypeError")
				_, res = c.Exchange(testReq, "what", "ok", "call_id", sent.CallID)
				siptest.AssertStatus(t, res, 200, "Handled")
			})
			t.Run("raise-after-reply", func(t *testing.T) {
				// a reply was sent: no 500 on top of it
				sent, res := c.Exchange(testReq, "what", "reply-then-raise")
				siptest.AssertStatus(t, res, 202, "Sent Before Raise")
				exceptionFor(t, logs, sent.CallID, script, markLine(t, script, "after-reply"), "RuntimeError: after the reply")
				c.ExpectNone(quiet)
			})
			t.Run("return-none", func(t *testing.T) {
				// 5.6.3 left a TypeError pending after a route returned None,
				// breaking the next message; kemigo must not.
				sent, res := c.Exchange(testReq, "what", "none")
				siptest.AssertStatus(t, res, 200, "Returned None")
				_, res = c.Exchange(testReq, "what", "ok", "call_id", sent.CallID)
				siptest.AssertStatus(t, res, 200, "Handled")
			})
		})
	}
	if n := p.Exceptions.Load(); n != 6 {
		t.Errorf("Exceptions counter %d, want 6 (3 per transport)", n)
	}
}

// TestErrorReplyOff: [app_python3] error_reply = 0 sends nothing after an
// exception (Kamailio's behaviour), but still logs it.
func TestErrorReplyOff(t *testing.T) {
	script := absPath(t, "testdata/errors.py")
	cfg, err := config.Parse("[app_python3]\nerror_reply = 0\n")
	if err != nil {
		t.Fatal(err)
	}
	cfg.AppPython3.Load = "testdata/errors.py"
	p, udp, tcp := siptest.StartProxy(t, cfg)
	logs := siptest.Logs(p)
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			c := siptest.Dial(t, proto, addrs(udp, tcp)[proto])
			sent := c.Send(testReq, "what", "raise")
			exceptionFor(t, logs, sent.CallID, script, markLine(t, script, "raise"), "ValueError")
			c.ExpectNone(quiet)
			_, res := c.Exchange(testReq, "what", "ok", "call_id", sent.CallID)
			siptest.AssertStatus(t, res, 200, "Handled")
		})
	}
}

// TestMissingRequestRoute: a handler without ksr_request_route logs an
// error for each request and sends nothing.
func TestMissingRequestRoute(t *testing.T) {
	cfg := config.Default()
	cfg.AppPython3.Load = "testdata/missing.py"
	p, udp, tcp := siptest.StartProxy(t, cfg)
	logs := siptest.Logs(p)
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			c := siptest.Dial(t, proto, addrs(udp, tcp)[proto])
			sent := c.Send(siptest.Options)
			logs.WaitFor(t, "ksr_request_route not found", siptest.All(
				siptest.AtLevel("error"), siptest.FieldIs("callid", sent.CallID),
				siptest.MessageContains("ksr_request_route not found or is not callable")))
			c.ExpectNone(quiet)
		})
	}
	if n := p.Exceptions.Load(); n != 0 {
		t.Errorf("Exceptions counter %d, want 0", n)
	}
}

// TestSysExit: sys.exit() ends the route quietly: no error logged, no 500;
// a reply sent before it stands, and nothing after it runs.
func TestSysExit(t *testing.T) {
	p, udp, tcp := siptest.StartProxy(t, errorsConfig(t))
	logs := siptest.Logs(p)
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			c := siptest.Dial(t, proto, addrs(udp, tcp)[proto])

			sent := c.Send(testReq, "what", "exit")
			logs.WaitFor(t, "route ended by sys.exit()", siptest.All(
				siptest.AtLevel("debug"), siptest.FieldIs("callid", sent.CallID),
				siptest.MessageContains("sys.exit()")))
			c.ExpectNone(quiet)

			sent2, res := c.Exchange(testReq, "what", "reply-then-exit")
			siptest.AssertStatus(t, res, 202, "Sent Before Exit")
			siptest.AssertMatches(t, res, sent2)
			logs.WaitFor(t, "route ended by sys.exit()", siptest.All(
				siptest.AtLevel("debug"), siptest.FieldIs("callid", sent2.CallID),
				siptest.MessageContains("sys.exit()")))
			c.ExpectNone(quiet)

			for _, id := range []string{sent.CallID, sent2.CallID} {
				if es := logs.Find(siptest.All(siptest.FieldIs("callid", id), func(e siptest.Entry) bool {
					return e.Level() == "error" || e.Level() == "warn"
				})); len(es) > 0 {
					t.Errorf("sys.exit() logged %v", es)
				}
			}
		})
	}
	if n := p.Exceptions.Load(); n != 0 {
		t.Errorf("Exceptions counter %d, want 0", n)
	}
}

// TestDispatchModes: with dispatch "inline" (the default) a UDP keepalive's
// route runs on the reader's thread and a TCP one is queued for the
// worker's thread; with "queued" every route runs on the worker's thread.
// Both answer the same on the wire.
func TestDispatchModes(t *testing.T) {
	if _, err := os.Stat(referenceScript); err != nil {
		t.Skipf("%s not found: install the Debian package \"kamailio\"", referenceScript)
	}
	for _, mode := range []string{"inline", "queued"} {
		t.Run(mode, func(t *testing.T) {
			cfg := config.Default()
			cfg.AppPython3.Load = referenceScript
			cfg.Dispatch = mode
			p, udp, tcp := siptest.StartProxy(t, cfg)
			inlined := func() (n uint64) {
				for _, w := range p.Engine.Workers() {
					n += w.Inline.Load()
				}
				return n
			}
			for _, proto := range protos {
				before := inlined()
				c := siptest.Dial(t, proto, addrs(udp, tcp)[proto])
				for i := 0; i < 3; i++ {
					sent := c.Send(siptest.Options)
					res := c.Expect()
					siptest.AssertStatus(t, res, 200, "Keepalive")
					siptest.AssertMatches(t, res, sent)
				}
				want := uint64(0)
				if mode == "inline" && proto == "udp" {
					want = 3
				}
				// a job is counted once it returns, just after its reply left
				inline := inlined() - before
				for wait := time.Now(); inline < want && time.Since(wait) < 2*time.Second; inline = inlined() - before {
					time.Sleep(time.Millisecond)
				}
				if want == 0 {
					time.Sleep(50 * time.Millisecond)
					inline = inlined() - before
				}
				if inline != want {
					t.Errorf("%s over %s: %d of 3 routes ran inline, want %d", mode, proto, inline, want)
				}
			}
		})
	}
}
