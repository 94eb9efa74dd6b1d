// Package harness runs kemigo for the end-to-end tests of tests/torture
// and tests/security: Kamailio's reference KEMI script, unchanged, with a
// configuration like kamailio-basic-kemi.cfg (its database in a temporary
// directory), on loopback sockets only, with guards that keep every packet
// on loopback.
package harness

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/kemigo/kemigo/core/config"
	"github.com/kemigo/kemigo/core/db"
	"github.com/kemigo/kemigo/core/modules/auth_db"
	"github.com/kemigo/kemigo/core/proxy"
	"github.com/kemigo/kemigo/internal/siptest"
	"github.com/rs/zerolog"
)

// ReferenceScript is Kamailio's example KEMI script (Debian package
// "kamailio"); the tests load it unchanged.
const ReferenceScript = "/usr/share/doc/kamailio/examples/kemi/kamailio-basic-kemi-python.py"

// NeedScript skips the test when the reference script is not installed.
func NeedScript(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(ReferenceScript); err != nil {
		t.Skipf("%s not found: install the Debian package \"kamailio\", which ships Kamailio's example KEMI scripts", ReferenceScript)
	}
}

// DisableDNS turns DNS off for the whole test binary (call it from
// TestMain): every name that is not in /etc/hosts fails to resolve, so no
// lookup leaves the machine. The transport's send_only_to refuses host
// names before any lookup; this also covers the lookups made elsewhere
// (tm's next hop).
func DisableDNS() {
	net.DefaultResolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		return nil, errors.New("kemigo tests: DNS is disabled")
	}}
}

// kamailioBasicCfg is kamailio-basic-kemi.cfg's modparams (WITH_AUTH,
// WITH_IPAUTH, WITH_USRLOCDB, WITH_NAT, WITH_ANTIFLOOD, WITH_ACCDB) in
// kemigo's TOML, with the database (SQLite) at %[1]s, and:
//   - send_only_to: nothing is sent outside loopback (a test-only guard);
//   - short tm timers, so finished transactions go in well under the
//     tests' bounded waits (Kamailio: wait_timer 5 s);
//   - usrloc db_mode 1 (write-through) for Kamailio's db_mode 2, which
//     kemigo does not have.
const kamailioBasicCfg = `
send_only_to = ["127.0.0.0/8", "::1/128"]
workers = 2

[app_python3]
load = %[2]q

[tm]
fr_timer = 2000
fr_inv_timer = 3000
wait_timer = 300

[rr]
enable_full_lr = 1
append_fromtag = 0

[registrar]
method_filtering = 1
max_expires = 3600
gruu_enabled = 0
received_avp = "$avp(RECEIVED)"

[acc]
early_media = 0
report_ack = 0
report_cancels = 0
detect_direction = 0
log_flag = 1
log_missed_flag = 2
failed_transaction_flag = 3
db_flag = 1
db_missed_flag = 2
db_url = %[1]q

[usrloc]
preload = ["location"]
db_url = %[1]q
db_mode = 1
use_domain = 0
nat_bflag = 6

[auth_db]
db_url = %[1]q
calculate_ha1 = 1
password_column = "password"
load_credentials = ""
use_domain = 0

[permissions]
db_url = %[1]q
db_mode = 1

[rtpproxy]
rtpproxy_sock = "udp:127.0.0.1:7722"

[nathelper]
natping_interval = 30
ping_nated_only = 1
sipping_bflag = 7
sipping_from = "sip:pinger@kamailio.org"
received_avp = "$avp(RECEIVED)"

[pike]
sampling_time_unit = 2
reqs_density_per_unit = 16
remove_latency = 4

[htable]
htable = ["ipban=>size=8;autoexpire=300;"]
`

// The subscriber every configuration has, and the password of every
// subscriber.
const (
	User     = "alice"
	Domain   = "127.0.0.1"
	Password = "s3cr3t"
)

// BasicConfig returns the configuration (extra TOML appended; a key given
// twice is an error, so extra may only add keys and sections) and creates
// its database in a temporary directory: the tables, and the subscribers
// alice@127.0.0.1 and users@127.0.0.1 with password Password.
func BasicConfig(t testing.TB, extra string, users ...string) config.Config {
	t.Helper()
	dbURL := "sqlite://" + filepath.Join(t.TempDir(), "kemigo.db")
	d, err := db.Open(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Init(); err != nil {
		t.Fatal(err)
	}
	for _, u := range append([]string{User}, users...) {
		if err := auth_db.AddUser(d, "sip:"+u+"@"+Domain, Password); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Parse(fmt.Sprintf(kamailioBasicCfg, dbURL, ReferenceScript) + extra)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// SUT is a running proxy, its log, and its addresses by "udp", "tcp",
// "udp6", "tcp6" (with IPv6), "tls" (with TLS).
type SUT struct {
	P     *proxy.Proxy
	Logs  *siptest.LogBuffer
	Addrs map[string]string
	// TLS, when started with TLS, has the CA certificate (PEM) that signed
	// the proxy's certificate, for clients to verify it.
	CAPEM []byte
}

// Has6 reports whether ::1 can be bound.
func Has6() bool {
	l, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// Options says which sockets Start opens besides UDP and TCP on 127.0.0.1.
type Options struct {
	IPv6 bool // UDP and TCP on ::1 too, when available
	TLS  bool // TLS on 127.0.0.1, with a certificate made for the test
}

// Start runs a proxy with cfg (its listen sockets replaced) on free ports
// of 127.0.0.1, UDP and TCP on one port, plus what opts asks. It logs
// JSON at debug level into SUT.Logs, printed if the test fails; the proxy
// is closed in t.Cleanup.
func Start(t testing.TB, cfg config.Config, opts Options) *SUT {
	t.Helper()
	logs := &siptest.LogBuffer{}
	log := zerolog.New(logs).Level(zerolog.DebugLevel).With().Timestamp().Logger()
	s := &SUT{Logs: logs}
	if opts.TLS {
		dir := t.TempDir()
		ca, cert, key := MakeCerts(t, dir, "127.0.0.1")
		cfg.TLS.Certificate, cfg.TLS.PrivateKey = cert, key
		s.CAPEM = ca
	}
	v6 := opts.IPv6 && Has6()
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		c := cfg
		s.Addrs = map[string]string{}
		hp := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "127.0.0.1")))
		c.Listen = []string{"udp:" + hp, "tcp:" + hp}
		s.Addrs["udp"], s.Addrs["tcp"] = hp, hp
		if v6 {
			hp6 := net.JoinHostPort("::1", strconv.Itoa(freePort(t, "::1")))
			c.Listen = append(c.Listen, "udp:"+hp6, "tcp:"+hp6)
			s.Addrs["udp6"], s.Addrs["tcp6"] = hp6, hp6
		}
		if opts.TLS {
			hpt := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "127.0.0.1")))
			c.Listen = append(c.Listen, "tls:"+hpt)
			s.Addrs["tls"] = hpt
		}
		s.P, err = proxy.New(c, log)
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	if err != nil {
		t.Fatalf("proxy.New: %v\nlog:\n%s", err, logs.String())
	}
	t.Cleanup(func() {
		s.P.Close()
		if t.Failed() {
			t.Logf("proxy log:\n%s", logs.String())
		}
	})
	s.P.Start()
	return s
}

func freePort(t testing.TB, ip string) int {
	t.Helper()
	p, err := siptest.FreePort(ip)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// WaitIdle fails the test unless the proxy has no live transaction
// within d.
func (s *SUT) WaitIdle(t testing.TB, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for s.P.Mods.TM.Active() != 0 {
		if time.Now().After(deadline) {
			t.Errorf("%d transactions still live %s after the last message (leak)", s.P.Mods.TM.Active(), d)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// OffLoopback lists the log lines where the transport refused a
// destination (outside send_only_to, or a broadcast address).
func (s *SUT) OffLoopback() []siptest.Entry {
	return s.Logs.Find(siptest.MessageContains("send refused"))
}

// MakeCerts writes into dir a self-signed CA and a certificate for host
// (an IP address or a name) signed by it, and returns the CA certificate
// (PEM) and the paths of the certificate and its private key.
func MakeCerts(t testing.TB, dir, host string) (caPEM []byte, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kemigo test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: host},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), certFile, keyFile
}
