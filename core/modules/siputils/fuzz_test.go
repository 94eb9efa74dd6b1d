package siputils

// FuzzParseURI feeds text to kemigo's own URI parser (Kamailio's
// parse_uri rules: what sanity_check and the URI functions use) and to
// the parameter helpers. It must never panic; the parts of a parsed URI
// are pieces of it, and removing then adding a parameter gives a URI that
// parses again.
//
//	go test ./core/modules/siputils -run '^$' -fuzz FuzzParseURI -fuzztime 60s

import (
	"strings"
	"testing"

	"github.com/kemigo/kemigo/internal/fuzzseed"
)

func FuzzParseURI(f *testing.F) {
	for _, s := range []string{
		"sip:alice@example.com", "sips:bob:pw@[2001:db8::1]:5061;transport=tls;lr?subject=x&h=y",
		"tel:+1-201-555-0123;phone-context=example.com", "urn:service:sos", "sip:example.com;maddr=1.2.3.4",
		"sip:user;par=u%40example.net@example.com", "sip:%61lice@example.com:65535", "sip:a@b:99999", "sip:@", "sip:a@b;;;=;",
	} {
		f.Add(s)
	}
	for _, raw := range fuzzseed.Sorted() {
		line, _, _ := strings.Cut(string(raw), "\r\n")
		parts := strings.Fields(line) // the R-URIs of the torture messages
		if len(parts) >= 2 {
			f.Add(parts[1])
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		_ = NameAddrURI(s)
		_, _ = ParseParams(s)
		u, err := ParseURI(s)
		if err != nil {
			return
		}
		for _, p := range []string{u.User, u.Passwd, u.Host, u.Port, u.Params, u.Headers} {
			if !strings.Contains(s, p) {
				t.Fatalf("part %q not in %q", p, s)
			}
		}
		_ = u.Proto()
		if ps, err := u.ParamList(); err == nil {
			for _, p := range ps {
				_, _ = u.Param(p.Name)
				if w, ok := u.WithoutParam(p.Name); ok {
					if _, err := ParseURI(w); err != nil {
						t.Fatalf("%q without %q: %q does not parse: %v", s, p.Name, w, err)
					}
				}
			}
		}
		_ = u.WithParam("lr")
	})
}
