package reference

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kemigo/kemigo/core/config"
	"github.com/kemigo/kemigo/internal/siptest"
)

// sippRun is one SIPp process.
type sippRun struct {
	cmd  *exec.Cmd
	out  bytes.Buffer
	dir  string
	done chan error
}

// startSIPp starts sipp with a scenario of tests/reference/sipp and args,
// in a temporary directory (SIPp writes its logs there).
func startSIPp(t *testing.T, bin, scenario string, d time.Duration, args ...string) *sippRun {
	t.Helper()
	sf, err := filepath.Abs(filepath.Join("sipp", scenario))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d+2*time.Second)
	r := &sippRun{dir: t.TempDir(), done: make(chan error, 1)}
	all := []string{"-sf", sf, "-m", "1", "-i", siptest.ProxyIP, "-nostdin", "-trace_err",
		"-timeout", strconv.Itoa(int(d/time.Second)) + "s", "-timeout_error"}
	if !slices.Contains(args, "-p") {
		// SIPp takes 5060 when it is free: stay off it
		port, err := siptest.FreePort(siptest.ProxyIP)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, "-p", strconv.Itoa(port))
	}
	all = append(all, args...)
	r.cmd = exec.CommandContext(ctx, bin, all...)
	r.cmd.Dir = r.dir
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.out
	if err := r.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() { r.done <- r.cmd.Wait(); cancel() }()
	t.Cleanup(func() {
		select {
		case err := <-r.done:
			r.done <- err
		default:
			_ = r.cmd.Process.Kill()
			r.done <- <-r.done
		}
	})
	return r
}

// wait waits for the process and fails the test, with SIPp's screen and
// error log, unless it exited 0 (every call successful).
func (r *sippRun) wait(t *testing.T, what string) {
	t.Helper()
	err := <-r.done
	r.done <- err // for the cleanup
	if err == nil {
		return
	}
	logs, _ := filepath.Glob(filepath.Join(r.dir, "*_errors.log"))
	var errLog []byte
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		errLog = append(errLog, b...)
	}
	t.Fatalf("sipp %s: %v\n%s\nerrors log:\n%s", what, err, r.out.String(), errLog)
}

// waitBound waits until SIPp holds ip:port for proto.
func waitBound(t *testing.T, proto, addr string) {
	t.Helper()
	waitUntil(t, "SIPp listening on "+proto+":"+addr, func() bool {
		if proto == "udp" {
			c, err := net.ListenPacket("udp", addr)
			if err != nil {
				return true
			}
			c.Close()
			return false
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return true
		}
		l.Close()
		return false
	})
}

// TestSIPp runs the SIPp scenarios of docs/QUICKSTART-CALL.md: bob's
// SIPp UAS (uas.xml) registered by register.xml, then alice's
// authenticated call (uac-auth.xml).
//
// With docs/quickstart-call.toml, over UDP and TCP, as the document says.
// With the full cfg (testdata/kamailio-basic.toml) over UDP only: there
// received_avp is set, and a SIPp TCP client sends from another port
// than its Via names, so nat_uac_test(19) (test 16) takes the REGISTER
// for NATed and fix_nated_register() binds bob to the source address of
// register.xml's connection, which is gone when the call comes (Kamailio
// does the same). TestCall covers TCP with that cfg.
func TestSIPp(t *testing.T) {
	bin, err := exec.LookPath("sipp")
	if err != nil {
		t.Skip("SIPp not installed (Debian: apt-get install sip-tester): the SIPp scenarios are not run")
	}
	needScript(t)
	for _, tc := range []struct {
		name   string
		cfg    func(t *testing.T, url string) config.Config
		protos []string
		acc    bool
	}{
		{"quickstart", quickstartConfig, protos, false},
		{"kamailio-basic", func(t *testing.T, url string) config.Config { return baseConfig(t, url) }, []string{"udp"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := sqliteURL(t)
			cfg := tc.cfg(t, url)
			d, users := prepareDB(t, cfg, url, "")
			e := start(t, cfg, d, url, users)
			for _, proto := range tc.protos {
				t.Run(proto, func(t *testing.T) { sippCall(t, e, bin, proto, tc.acc) })
			}
		})
	}
}

// quickstartConfig is docs/quickstart-call.toml with its database in the
// test's directory.
func quickstartConfig(t *testing.T, url string) config.Config {
	t.Helper()
	cfg, err := config.Load(filepath.Join("..", "..", "docs", "quickstart-call.toml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.AuthDB.DBURL = url
	return cfg
}

func sippCall(t *testing.T, e *env, bin, proto string, acc bool) {
	var tr []string
	if proto == "tcp" {
		tr = []string{"-t", "t1"}
	}
	port, err := siptest.FreePort(siptest.ProxyIP)
	if err != nil {
		t.Fatal(err)
	}
	uasAddr := net.JoinHostPort(siptest.ProxyIP, strconv.Itoa(port))
	uas := startSIPp(t, bin, "uas.xml", 2*step, append([]string{"-p", strconv.Itoa(port)}, tr...)...)
	waitBound(t, proto, uasAddr)

	bob, alice := e.users["bob"], e.users["alice"]
	reg := startSIPp(t, bin, "register.xml", step, append(tr, "-key", "user", bob, "-key", "contact_port", strconv.Itoa(port),
		"-au", bob, "-ap", passwords["bob"], e.addr[proto])...)
	reg.wait(t, "register.xml")
	t.Cleanup(func() { _ = e.p.Mods.Usrloc.Remove(bob) })
	var contacts []string
	for _, c := range e.p.Mods.Usrloc.Lookup(bob) {
		contacts = append(contacts, c.URI)
	}
	want := "sip:" + bob + "@" + uasAddr + ";transport=" + strings.ToUpper(proto)
	if len(contacts) != 1 || contacts[0] != want {
		t.Fatalf("bob's contacts %q, want [%s]", contacts, want)
	}

	q := "SELECT count(*) FROM acc WHERE src_user = ? AND dst_ouser = ?"
	before := 0
	if acc {
		before = e.count(t, q, alice, bob)
	}
	call := startSIPp(t, bin, "uac-auth.xml", step, append(tr, "-s", bob, "-key", "user", alice,
		"-au", alice, "-ap", passwords["alice"], e.addr[proto])...)
	call.wait(t, "uac-auth.xml")
	uas.wait(t, "uas.xml")
	if acc {
		// the INVITE and the BYE, accounted
		e.waitCount(t, before+2, q, alice, bob)
	}
}
