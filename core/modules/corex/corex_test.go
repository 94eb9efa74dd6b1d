package corex

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/core/val"
	"github.com/rs/zerolog"
)

func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

func request(ruri, extra string) string {
	return crlf("INVITE " + ruri + " SIP/2.0\n" +
		"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1\n" +
		"From: <sip:alice@example.com>;tag=a1\n" +
		"To: <sip:bob@example.com>\n" +
		"Call-ID: c1@192.0.2.10\n" +
		"CSeq: 1 INVITE\n" +
		extra +
		"Content-Length: 0\n\n")
}

const okReply = "SIP/2.0 200 OK\n" +
	"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1\n" +
	"From: <sip:alice@example.com>;tag=a1\n" +
	"To: <sip:bob@example.com>;tag=b1\n" +
	"Call-ID: c1@192.0.2.10\n" +
	"CSeq: 1 INVITE\n" +
	"User-Agent: phone/1.0\n" +
	"Content-Length: 0\n\n"

func ctxFor(t *testing.T, raw string) *kemi.Ctx {
	t.Helper()
	m, err := sipmsg.Parse([]byte(raw))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, raw)
	}
	return &kemi.Ctx{Msg: m, Worker: kemi.NewWorkerState(0), Log: zerolog.Nop(), BranchIdx: -1}
}

func exports(t *testing.T) map[string]kemi.Export {
	t.Helper()
	out := map[string]kemi.Export{}
	for _, e := range New(DefaultConfig()).Exports() {
		out[e.Name] = e
	}
	return out
}

func TestMessageChecks(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		newRURI string
		userRet int
		uaRet   int
	}{
		{"user and agent", request("sip:bob@example.com", "User-Agent: softphone 2.1\n"), "", 1, 1},
		{"no user", request("sip:example.com", ""), "", -1, -1},
		{"tel URI number is the user", request("tel:+4312345", ""), "", 1, -1},
		{"rewritten R-URI without user", request("sip:bob@example.com", ""), "sip:198.51.100.7:5060", -1, -1},
		{"rewritten R-URI with user", request("sip:example.com", ""), "sip:carol@example.org", 1, -1},
		{"R-URI Kamailio cannot parse", request("sip:bob@exa_mple.com", ""), "", -1, -1},
		{"empty User-Agent", request("sip:bob@example.com", "User-Agent:\n"), "", 1, -1},
		{"reply", crlf(okReply), "", -1, 1},
	}
	exps := exports(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ctxFor(t, tc.raw)
			if tc.newRURI != "" {
				if err := c.Msg.SetRURI(tc.newRURI); err != nil {
					t.Fatal(err)
				}
			}
			if got := exps["has_ruri_user"].Fn(c, nil); got != val.OfInt(int64(tc.userRet)) {
				t.Errorf("has_ruri_user = %v, want %d", got, tc.userRet)
			}
			if got := exps["has_user_agent"].Fn(c, nil); got != val.OfInt(int64(tc.uaRet)) {
				t.Errorf("has_user_agent = %v, want %d", got, tc.uaRet)
			}
			if got := exps["is_faked_msg"].Fn(c, nil); got != val.OfInt(-1) {
				t.Errorf("is_faked_msg = %v", got)
			}
		})
	}
	c := &kemi.Ctx{Msg: sipmsg.Faked(), Worker: kemi.NewWorkerState(0), Log: zerolog.Nop(), BranchIdx: -1}
	if got := exps["is_faked_msg"].Fn(c, nil); got != val.OfInt(1) {
		t.Errorf("is_faked_msg on the faked message = %v", got)
	}
	if got := exps["has_ruri_user"].Fn(c, nil); got != val.OfInt(1) {
		t.Errorf("has_ruri_user on the faked message = %v", got)
	}
}

func TestFiles(t *testing.T) {
	exps := exports(t)
	c := ctxFor(t, request("sip:bob@example.com", ""))
	dir := t.TempDir()
	name := filepath.Join(dir, "data.txt")

	if got := exps["file_read"].Fn(c, []val.Value{val.OfStr(name)}); !got.IsNull() {
		t.Fatalf("missing file: %v", got)
	}
	if got := exps["file_write"].Fn(c, []val.Value{val.OfStr(name), val.OfStr("hello\nworld")}); got != val.OfInt(1) {
		t.Fatalf("file_write = %v", got)
	}
	if got := exps["file_read"].Fn(c, []val.Value{val.OfStr(name)}); got != val.OfStr("hello\nworld") {
		t.Fatalf("file_read = %v", got)
	}
	// Writing again replaces the content.
	exps["file_write"].Fn(c, []val.Value{val.OfStr(name), val.OfStr("x")})
	if got := exps["file_read"].Fn(c, []val.Value{val.OfStr(name)}); got != val.OfStr("x") {
		t.Fatalf("file_read after rewrite = %v", got)
	}
	if got := exps["file_write"].Fn(c, []val.Value{val.OfStr(filepath.Join(dir, "no", "such")), val.OfStr("x")}); got != val.OfInt(-1) {
		t.Fatalf("file_write in a missing folder = %v", got)
	}
	empty := filepath.Join(dir, "empty")
	exps["file_write"].Fn(c, []val.Value{val.OfStr(empty), val.OfStr("")})
	if got := exps["file_read"].Fn(c, []val.Value{val.OfStr(empty)}); got != val.OfStr("") {
		t.Fatalf("empty file = %v", got)
	}
}

func TestExportsMatchCatalog(t *testing.T) {
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
		if len(col) >= 4 && col[0] == "corex" {
			cat[col[1]] = sig{col[2], col[3]}
		}
	}
	for _, e := range New(DefaultConfig()).Exports() {
		want, ok := cat[e.Name]
		if !ok || e.Module != "corex" {
			t.Errorf("%s.%s: not in the catalog", e.Module, e.Name)
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
}

func TestAppendBranch(t *testing.T) {
	m, err := sipmsg.Parse([]byte("INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	m.DstURI = "sip:10.0.0.1:5080"
	for _, tc := range []struct {
		uri, q string
		rc     int
	}{
		{"", "", 1},
		{"sip:carol@example.net", "0.5", 1},
		{"sip:dave@example.net", "", 1},
		{"not a uri", "", -1},
		{"sip:eve@example.net", "2", -1},
	} {
		if rc := AppendBranch(m, tc.uri, tc.q); rc != tc.rc {
			t.Errorf("%q %q: rc %d want %d", tc.uri, tc.q, rc, tc.rc)
		}
	}
	if len(m.Branches) != 3 || m.Branches[0].URI != "sip:bob@example.com" || m.Branches[0].DstURI != "sip:10.0.0.1:5080" ||
		m.Branches[1].Q != 500 || m.Branches[2].Q != -1 {
		t.Fatalf("branches %+v", m.Branches)
	}
}
