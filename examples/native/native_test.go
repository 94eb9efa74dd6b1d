package native_test

// The native Go route answers like Kamailio's reference Python script: the
// same exchanges run against kemigo with the script and kemigo with
// native.Basic, both with the benchmark's configuration
// (bench/sip/kemigo.toml: auth_db, usrloc, acc, permissions on SQLite),
// and every reply must be the expected one, and the same for both.

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/config"
	"github.com/kemigo/kemigo/core/db"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/modules/auth_db"
	"github.com/kemigo/kemigo/core/proxy"
	"github.com/kemigo/kemigo/examples/native"
	"github.com/kemigo/kemigo/internal/siptest"
	"github.com/rs/zerolog"
)

const referenceScript = "/usr/share/doc/kamailio/examples/kemi/kamailio-basic-kemi-python.py"

const password = "secret"

// benchConfig is bench/sip/kemigo.toml on a fresh SQLite database with the
// users alice and bob (as bench/sip/run.py prepares it).
func benchConfig(t *testing.T) config.Config {
	t.Helper()
	dir := t.TempDir()
	dbURL := "sqlite://" + filepath.Join(dir, "bench.db")
	text, err := os.ReadFile("../../bench/sip/kemigo.toml")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer("@DB@", dbURL, "@RUNDIR@", dir).Replace(string(text))
	cfg, err := config.Parse(s)
	if err != nil {
		t.Fatalf("bench/sip/kemigo.toml: %v", err)
	}
	d, err := db.Open(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Init(); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob"} {
		if err := auth_db.AddUser(d, u+"@127.0.0.1", password); err != nil {
			t.Fatal(err)
		}
	}
	// the acc db_extra columns of kamailio-basic-kemi.cfg
	for _, tb := range []string{"acc", "missed_calls"} {
		for _, col := range []string{"src_user", "src_domain", "src_ip", "dst_ouser", "dst_user", "dst_domain"} {
			if _, err := d.Exec("ALTER TABLE " + tb + " ADD COLUMN " + col + " VARCHAR(128) DEFAULT ''"); err != nil {
				t.Fatal(err)
			}
		}
	}
	cfg.LogLevel = "debug"
	return cfg
}

// start runs a proxy on free loopback ports: Python when nativeName is "",
// else that native route set. It returns the proxy and its address.
func start(t *testing.T, cfg config.Config, nativeName string) (*proxy.Proxy, string, *siptest.LogBuffer) {
	t.Helper()
	buf := &siptest.LogBuffer{}
	log := zerolog.New(buf).Level(zerolog.DebugLevel).With().Timestamp().Logger()
	var p *proxy.Proxy
	var addr string
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		var port int
		if port, err = siptest.FreePort(siptest.ProxyIP); err != nil {
			t.Fatal(err)
		}
		addr = net.JoinHostPort(siptest.ProxyIP, strconv.Itoa(port))
		c := cfg
		c.Listen = []string{"udp:" + addr, "tcp:" + addr}
		if nativeName == "" {
			p, err = proxy.New(c, log)
		} else {
			p, err = proxy.NewNative(c, log, proxy.Options{}, func(p *proxy.Proxy) (proxy.NativeRoutes, error) {
				return native.New(nativeName, p.Table)
			})
		}
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	if err != nil {
		t.Fatalf("proxy: %v\n%s", err, buf.String())
	}
	t.Cleanup(func() {
		p.Close()
		if t.Failed() {
			t.Logf("proxy log:\n%s", buf.String())
		}
	})
	p.Start()
	return p, addr, buf
}

func status(res *sip.Response) string {
	if res == nil {
		return "none"
	}
	return fmt.Sprintf("%d %s", res.StatusCode, res.Reason)
}

// exchanges runs the reference exchanges against addr and returns what each
// step got; it fails the test on any unexpected reply.
func exchanges(t *testing.T, addr string) []string {
	var got []string
	step := func(name, want string, res *sip.Response) {
		t.Helper()
		s := status(res)
		got = append(got, name+": "+s)
		if s != want {
			t.Errorf("%s: got %q, want %q", name, s, want)
		}
	}

	// OPTIONS keepalive to the proxy itself
	c := siptest.Dial(t, "udp", addr)
	sent := c.Send(siptest.Options)
	res := c.Expect()
	step("OPTIONS keepalive", "200 Keepalive", res)
	siptest.AssertMatches(t, res, sent)

	// Max-Forwards: 0
	c.Send(strings.Replace(siptest.Options, "Max-Forwards: 70", "Max-Forwards: 0", 1))
	step("OPTIONS Max-Forwards 0", "483 Too Many Hops", c.Expect())

	// REGISTER: 401 with a challenge, then 200 with credentials. The
	// domain has the port so that the From URI is the proxy itself
	// (is_myself_furi): INVITEs from alice are then authenticated.
	alice := siptest.NewUA(t, "udp", addr, "alice", password, addr)
	challenge, ok := alice.Register(3600)
	step("REGISTER alice", "401 Unauthorized", challenge)
	step("REGISTER alice with credentials", "200 OK", ok)
	if v, _ := siptest.Header(challenge, "WWW-Authenticate"); !strings.Contains(v, `realm="127.0.0.1"`) {
		t.Errorf("challenge %q: want the From domain as realm", v)
	}
	bob := siptest.NewUA(t, "udp", addr, "bob", password, addr)
	challenge, ok = bob.Register(3600)
	step("REGISTER bob", "401 Unauthorized", challenge)
	step("REGISTER bob with credentials", "200 OK", ok)

	// a wrong password gets a new challenge
	r := alice.RegisterRequest(3600)
	alice.Send(r)
	res = alice.ExpectFinal(r)
	r = alice.Authorize(r, res, func(cr *siptest.Credentials) { cr.Password = "wrong" })
	alice.Send(r)
	step("REGISTER wrong password", "401 Unauthorized", alice.ExpectFinal(r))

	// a call alice -> bob: 407, ACK, INVITE with credentials, relayed to
	// bob's contact with Record-Route; 180, 200; ACK and BYE along the
	// route set.
	inv := alice.NewRequest("INVITE", "sip:bob@"+addr)
	inv.Body = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n"
	alice.Send(inv)
	res = alice.ExpectFinal(inv)
	step("INVITE", "407 Proxy Authentication Required", res)
	alice.Send(inv.ACKFor(res))
	inv = alice.Authorize(inv, res)
	alice.Send(inv)
	in := bob.ExpectRequest("INVITE")
	if in == nil {
		t.Fatal("bob got no INVITE")
	}
	rr, _ := siptest.Header(in, "Record-Route")
	got = append(got, "INVITE at bob: Record-Route "+strconv.FormatBool(rr != ""))
	if rr == "" {
		t.Errorf("INVITE relayed without Record-Route:\n%s", in)
	}
	if _, has := siptest.Header(in, "Proxy-Authorization"); has {
		t.Errorf("credentials not consumed:\n%s", in)
	}
	bob.Reply(in, 180, "")
	bob.Reply(in, 200, "")
	ok200, prov := alice.ExpectFinalAll(inv)
	step("INVITE with credentials", "200 OK", ok200)
	for _, p := range prov {
		got = append(got, "provisional: "+status(p))
	}
	dlg := alice.DialogFrom(inv, ok200)
	if len(dlg.Routes) == 0 {
		t.Errorf("200 OK without Record-Route:\n%s", ok200)
	}
	alice.Send(dlg.ACK())
	ack := bob.ExpectRequest("ACK")
	got = append(got, "ACK at bob: "+strconv.FormatBool(ack != nil))
	bye := dlg.Request("BYE")
	alice.Send(bye)
	in = bob.ExpectRequest("BYE")
	if in == nil {
		t.Fatal("bob got no BYE")
	}
	bob.Reply(in, 200, "")
	step("BYE", "200 OK", alice.ExpectFinal(bye))

	// a call to a user with no registration: 404 after authentication
	inv = alice.NewRequest("INVITE", "sip:carol@"+addr)
	alice.Send(inv)
	res = alice.ExpectFinal(inv)
	step("INVITE carol", "407 Proxy Authentication Required", res)
	alice.Send(inv.ACKFor(res))
	inv = alice.Authorize(inv, res)
	alice.Send(inv)
	res = alice.ExpectFinal(inv)
	step("INVITE carol with credentials", "404 Not Found", res)
	alice.Send(inv.ACKFor(res))

	// in-dialog request of no dialog: 404 Not here
	stray := alice.NewRequest("BYE", "sip:bob@"+addr)
	stray.ToTag = "nosuchtag"
	alice.Send(stray)
	step("BYE outside any dialog", "404 Not here", alice.ExpectFinal(stray))

	alice.ExpectNoMore(200 * time.Millisecond)
	bob.ExpectNoMore(200 * time.Millisecond)
	return got
}

// TestBasicLikePython: the same exchanges, the same answers.
func TestBasicLikePython(t *testing.T) {
	if _, err := os.Stat(referenceScript); err != nil {
		t.Skipf("%s not found: apt-get install kamailio (Kamailio's example KEMI scripts)", referenceScript)
	}
	var py, gonative []string
	t.Run("python", func(t *testing.T) {
		p, addr, _ := start(t, benchConfig(t), "")
		if p.Native() != nil {
			t.Fatal("Python proxy has native routes")
		}
		py = exchanges(t, addr)
	})
	t.Run("native", func(t *testing.T) {
		p, addr, _ := start(t, benchConfig(t), "basic")
		if _, ok := p.Native().(*native.Basic); !ok {
			t.Fatalf("native routes are %T", p.Native())
		}
		gonative = exchanges(t, addr)
	})
	if len(py) == 0 || len(gonative) == 0 {
		t.FailNow()
	}
	t.Logf("transcript (both):\n  %s", strings.Join(py, "\n  "))
	if strings.Join(py, "\n") != strings.Join(gonative, "\n") {
		t.Errorf("Python and native answered differently:\npython:\n  %s\nnative:\n  %s",
			strings.Join(py, "\n  "), strings.Join(gonative, "\n  "))
	}
}

// TestNewUnknown: an unknown route set, and a table without a function the script
// calls is refused at build time, naming it.
func TestNewUnknown(t *testing.T) {
	if _, err := native.New("nosuch", proxy.ExportTable()); err == nil || !strings.Contains(err.Error(), "basic") {
		t.Fatalf("New(nosuch): %v", err)
	}
	if _, err := native.New("basic", proxy.ExportTable()); err != nil {
		t.Fatalf("New(basic) on the full table: %v", err)
	}
	if _, err := native.NewBasic(kemiTableWithout("registrar", "lookup")); err == nil || !strings.Contains(err.Error(), "KSR.registrar.lookup") {
		t.Fatalf("NewBasic without registrar.lookup: %v", err)
	}
}

// kemiTableWithout is the full export table less module.name.
func kemiTableWithout(module, name string) *kemi.Table {
	t := kemi.NewTable()
	for _, e := range proxy.ExportTable().All() {
		if e.Module == module && e.Name == name {
			continue
		}
		t.Register(*e)
	}
	return t
}
