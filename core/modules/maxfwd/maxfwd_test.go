package maxfwd

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/core/val"
	"github.com/rs/zerolog"
)

func request(extra string) string {
	return crlf("INVITE sip:bob@example.com SIP/2.0\n" +
		"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1\n" +
		extra +
		"From: <sip:alice@example.com>;tag=a1\n" +
		"To: <sip:bob@example.com>\n" +
		"Call-ID: c1@192.0.2.10\n" +
		"CSeq: 1 INVITE\n" +
		"Content-Length: 0\n\n")
}

// crlf turns the line ends of a test message into CRLF.
func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

func ctxFor(t *testing.T, raw string) *kemi.Ctx {
	t.Helper()
	m, err := sipmsg.Parse([]byte(raw))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return &kemi.Ctx{Msg: m, Worker: kemi.NewWorkerState(0), Log: zerolog.Nop(), BranchIdx: -1}
}

func newModule(t *testing.T, maxLimit int) *Module {
	t.Helper()
	cfg := DefaultConfig()
	if maxLimit >= 0 {
		cfg.MaxLimit = maxLimit
	}
	mod, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return mod
}

// wireMaxFwd returns the Max-Forwards values of the request as it would be
// sent on (its text, and a clone of it).
func wireMaxFwd(t *testing.T, m *sipmsg.Msg) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(m.Req.Clone().String(), "\r\n") {
		if strings.HasPrefix(strings.ToLower(line), "max-forwards:") {
			out = append(out, strings.TrimSpace(line[len("max-forwards:"):]))
		}
	}
	return out
}

func TestProcessMaxfwd(t *testing.T) {
	tests := []struct {
		name     string
		hdr      string // Max-Forwards line, "" for none
		limit    int
		maxLimit int // -1: default 70
		want     int
		wire     []string
	}{
		{"absent: added with limit", "", 10, -1, 2, []string{"10"}},
		{"absent: limit 0 added", "", 0, -1, 2, []string{"0"}},
		{"zero", "Max-Forwards: 0\n", 10, -1, -1, []string{"0"}},
		{"decrement", "Max-Forwards: 70\n", 10, -1, 1, []string{"69"}},
		{"one to zero", "Max-Forwards: 1\n", 10, -1, 1, []string{"0"}},
		{"capped at max_limit", "Max-Forwards: 200\n", 10, -1, 1, []string{"70"}},
		{"max_limit+1 decremented", "Max-Forwards: 71\n", 10, -1, 1, []string{"70"}},
		{"configured max_limit", "Max-Forwards: 20\n", 10, 10, 1, []string{"10"}},
		{"max_limit 0", "Max-Forwards: 5\n", 10, 0, 1, []string{"0"}},
		{"five digits wrap like str2s", "Max-Forwards: 65537\n", 10, -1, 1, []string{"0"}},
		{"six digits: parse error", "Max-Forwards: 100000\n", 10, -1, -2, []string{"100000"}},
		{"limit above 255", "Max-Forwards: 70\n", 256, -1, -1, []string{"70"}},
		{"negative limit", "", -1, -1, -1, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mod := newModule(t, tc.maxLimit)
			c := ctxFor(t, request(tc.hdr))
			if got := mod.ProcessMaxfwd(c.Msg, tc.limit); got != tc.want {
				t.Fatalf("ProcessMaxfwd = %d, want %d", got, tc.want)
			}
			if got := wireMaxFwd(t, c.Msg); strings.Join(got, ",") != strings.Join(tc.wire, ",") {
				t.Fatalf("wire Max-Forwards = %q, want %q", got, tc.wire)
			}
		})
	}
}

func TestProcessMaxfwdAddedAtTop(t *testing.T) {
	mod := newModule(t, -1)
	c := ctxFor(t, request(""))
	if got := mod.ProcessMaxfwd(c.Msg, 16); got != 2 {
		t.Fatalf("got %d", got)
	}
	hs := c.Msg.AllHeaders()
	if mf, ok := hs[0].(*sip.MaxForwardsHeader); !ok || *mf != 16 {
		t.Fatalf("first header = %v", hs[0])
	}
	// A second call now sees the header it added and decrements it.
	if got := mod.ProcessMaxfwd(c.Msg, 16); got != 1 {
		t.Fatalf("second call = %d", got)
	}
	if got := wireMaxFwd(t, c.Msg); len(got) != 1 || got[0] != "15" {
		t.Fatalf("wire = %q", got)
	}
}

func TestProcessMaxfwdTwiceDecrementsTwice(t *testing.T) {
	mod := newModule(t, -1)
	c := ctxFor(t, request("Max-Forwards: 10\r\n"))
	mod.ProcessMaxfwd(c.Msg, 70)
	mod.ProcessMaxfwd(c.Msg, 70)
	if got := wireMaxFwd(t, c.Msg); len(got) != 1 || got[0] != "8" {
		t.Fatalf("wire = %q", got)
	}
	if v := c.Msg.Req.MaxForwards(); v == nil || *v != 8 {
		t.Fatalf("parsed header = %v", v)
	}
}

func TestProcessMaxfwdGenericHeader(t *testing.T) {
	mod := newModule(t, -1)
	c := ctxFor(t, request(""))
	// A Max-Forwards added by other code as a plain header.
	c.Msg.Req.PrependHeader(sip.NewHeader("Max-Forwards", "12"))
	if got := mod.ProcessMaxfwd(c.Msg, 70); got != 1 {
		t.Fatalf("got %d", got)
	}
	if got := wireMaxFwd(t, c.Msg); len(got) != 1 || got[0] != "11" {
		t.Fatalf("wire = %q", got)
	}
	c.Msg.Req.RemoveHeader("Max-Forwards")
	c.Msg.Req.PrependHeader(sip.NewHeader("Max-Forwards", "x1"))
	if got := mod.ProcessMaxfwd(c.Msg, 70); got != -2 {
		t.Fatalf("bad value: got %d", got)
	}
}

func TestIsMaxfwdLt(t *testing.T) {
	tests := []struct {
		name  string
		hdr   string
		limit int
		want  int
	}{
		{"absent", "", 10, -2},
		{"lower", "Max-Forwards: 5\r\n", 10, 1},
		{"equal", "Max-Forwards: 10\r\n", 10, -1},
		{"greater", "Max-Forwards: 70\r\n", 10, -1},
		{"zero below one", "Max-Forwards: 0\r\n", 1, 1},
		{"parse error", "Max-Forwards: 123456\r\n", 10, -3},
		{"limit out of range", "Max-Forwards: 5\r\n", 256, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ctxFor(t, request(tc.hdr))
			if got := IsMaxfwdLt(c.Msg, tc.limit); got != tc.want {
				t.Fatalf("IsMaxfwdLt = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestNewRejectsBadMaxLimit(t *testing.T) {
	for _, v := range []int{-1, 256} {
		if _, err := New(Config{MaxLimit: v}); err == nil {
			t.Errorf("max_limit %d accepted", v)
		}
	}
}

func TestExportsCall(t *testing.T) {
	mod := newModule(t, -1)
	c := ctxFor(t, request("Max-Forwards: 0\r\n"))
	exps := map[string]kemi.Export{}
	for _, e := range mod.Exports() {
		exps[e.Name] = e
	}
	if got := exps["process_maxfwd"].Fn(c, []val.Value{val.OfInt(10)}); got != val.OfInt(-1) {
		t.Fatalf("process_maxfwd = %v", got)
	}
	if got := exps["is_maxfwd_lt"].Fn(c, []val.Value{val.OfInt(10)}); got != val.OfInt(1) {
		t.Fatalf("is_maxfwd_lt = %v", got)
	}
}

// TestExportsMatchCatalog checks names, parameter and return types against
// the 5.6.3 catalog when the shared folder is next to the repository.
func TestExportsMatchCatalog(t *testing.T) {
	checkCatalog(t, "maxfwd", newModule(t, -1).Exports())
}

func checkCatalog(t *testing.T, module string, exps []kemi.Export) {
	t.Helper()
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
		if len(col) >= 4 && col[0] == module {
			cat[col[1]] = sig{col[2], col[3]}
		}
	}
	for _, e := range exps {
		if e.Module != module {
			t.Errorf("%s: module %q", e.Name, e.Module)
		}
		want, ok := cat[e.Name]
		if !ok {
			t.Errorf("%s: not in the catalog", e.Name)
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
