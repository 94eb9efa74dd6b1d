package siptest

import (
	"strings"
	"testing"
)

// RFC 2617 §3.5's example.
func TestDigestRFC2617(t *testing.T) {
	ch, err := ParseChallenge(`Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"`)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Realm != "testrealm@host.com" || !ch.Offers("auth") || !ch.Offers("auth-int") || ch.Opaque != "5ccc069c403ebaf9f0171e9517f40e41" {
		t.Fatalf("parsed %+v", ch)
	}
	v, err := ch.Authorize(Credentials{User: "Mufasa", Password: "Circle Of Life", Method: "GET", URI: "/dir/index.html", NC: 1, CNonce: "0a4f113b"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`response="6629fae49393a05397450978507c4ef1"`, `qop=auth, nc=00000001, cnonce="0a4f113b"`, `opaque="5ccc069c403ebaf9f0171e9517f40e41"`} {
		if !strings.Contains(v, want) {
			t.Errorf("%s\nhas no %s", v, want)
		}
	}
	// no qop offered: RFC 2069 response, no nc
	ch.QOP = nil
	v, _ = ch.Authorize(Credentials{User: "Mufasa", Password: "Circle Of Life", Method: "GET", URI: "/dir/index.html"})
	if strings.Contains(v, "nc=") || strings.Contains(v, "qop=") {
		t.Errorf("qop sent without being offered: %s", v)
	}
}

func TestSplitHeaderValues(t *testing.T) {
	got := SplitHeaderValues([]string{`<sip:a;lr>, "x, y" <sip:b;lr>`, `<sip:c>`})
	want := []string{`<sip:a;lr>`, `"x, y" <sip:b;lr>`, `<sip:c>`}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", got, want)
	}
	if u := HeaderURI(`"Bob" <sip:bob@h;transport=tcp>;expires=60`); u != "sip:bob@h;transport=tcp" {
		t.Errorf("HeaderURI %q", u)
	}
}
