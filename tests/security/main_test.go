// Package security holds kemigo's end-to-end security tests (issue
// "Hardening"): Kamailio's reference KEMI script, unchanged, with a
// configuration like kamailio-basic-kemi.cfg, attacked over loopback: open
// relay attempts, digest replays and forged or stale nonces, a request
// flood from several sources (pike), oversized messages and absurd header
// counts, a TLS call with double Record-Route, and the control interface.
// Every wait is bounded; nothing leaves loopback (send_only_to, and DNS is
// off for the test binary).
package security

import (
	"os"
	"testing"

	"github.com/kemigo/kemigo/tests/harness"
)

func TestMain(m *testing.M) {
	harness.DisableDNS()
	os.Exit(m.Run())
}
