package pybridge

// FuzzBridge moves fuzzed strings and integers across the real bridge, in
// both directions, through KEMI test exports of TestMain's table: a Go
// string is handed to Python (msg.getHeader: the conversion every str
// result of a KSR function takes), Python passes it back as the argument
// of KSR.t.record, and integers go to KSR.t.add (int argument, int result)
// and KSR.t.xval (None, int or str result). What comes out must be what
// went in, or the documented Python exception: UnicodeDecodeError for a
// string that is not UTF-8, ValueError for a NUL inside a str argument,
// OverflowError for an int argument that does not fit a C int.
//
//	go test ./pybridge -run '^$' -fuzz FuzzBridge -fuzztime 60s

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/internal/fuzzseed"
	"github.com/rs/zerolog"
)

func FuzzBridge(f *testing.F) {
	e, err := New(Options{Script: "testdata/fuzz.py", Workers: 1}, zerolog.Nop())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(e.Close)
	for _, s := range []string{"", "abc", "héllo", "\x00", "a\x00b", "\xff\xfe", "\xed\xa0\x80", "🎉", "\u2028", strings.Repeat("x", 70000)} {
		f.Add(s, int64(0))
	}
	for _, n := range []int64{1, -1, 2, 42, 1<<31 - 1, -1 << 31, 1 << 31, 1<<31 - 2, 715827882, 715827883, -715827883, 1<<63 - 1, -1 << 63} {
		f.Add("n", n)
	}
	for _, raw := range fuzzseed.Sorted() {
		// header values of the torture messages, some not UTF-8
		head, _, _ := strings.Cut(string(raw), "\r\n\r\n")
		for _, line := range strings.Split(head, "\r\n")[1:] {
			if _, v, ok := strings.Cut(line, ":"); ok {
				f.Add(v, int64(len(v)))
			}
		}
	}
	f.Fuzz(func(t *testing.T, s string, n int64) {
		m, err := sipmsg.Parse([]byte(options))
		if err != nil {
			t.Fatal(err)
		}
		m.Req.AppendHeader(sip.NewHeader("X-Fuzz", s))
		m.Req.AppendHeader(sip.NewHeader("X-Int", strconv.FormatInt(n, 10)))
		takeRecords()
		var r RouteResult
		e.Run(0, func(w *Worker) {
			c := &kemi.Ctx{Msg: m, Log: zerolog.Nop(), BranchIdx: -1, Worker: w.State}
			r = w.CallRoute(c, "fuzz", "")
		})
		if r.Status != RouteOK {
			t.Fatalf("route: status %d %+v", r.Status, r.Err)
		}
		got := takeRecords()
		want := expectBridge(s, n)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("s=%q n=%d:\ngot  %q\nwant %q", s, n, got, want)
		}
	})
}

// expectBridge is what testdata/fuzz.py records for s and n.
func expectBridge(s string, n int64) []string {
	var rec, out []string
	if !utf8.ValidString(s) {
		out = append(out, "get:UnicodeDecodeError")
	} else {
		out = append(out, "get:ok")
		if strings.IndexByte(s, 0) >= 0 {
			out = append(out, "rec:ValueError")
		} else {
			rec = append(rec, s)
			out = append(out, "rec:ok")
		}
		out = append(out, fmt.Sprintf("len:%d", utf8.RuneCountInString(s)))
	}
	i := big.NewInt(n)
	fits := func(v *big.Int) bool { return v.IsInt64() && v.Int64() >= -1<<31 && v.Int64() <= 1<<31-1 }
	floorDiv := new(big.Int)
	floorDiv.Div(i, big.NewInt(7)) // Euclidean: the same as Python's // for a positive divisor
	for _, v := range []*big.Int{i, new(big.Int).Neg(i), new(big.Int).Mul(i, big.NewInt(3)), floorDiv} {
		if fits(v) {
			out = append(out, fmt.Sprintf("add:%d", v.Int64()+1))
		} else {
			out = append(out, "add:OverflowError")
		}
	}
	switch {
	case !fits(i):
		out = append(out, "xval:OverflowError")
	case n == 0:
		out = append(out, "xval:None")
	case n == 1:
		out = append(out, "xval:42")
	default:
		out = append(out, "xval:'héllo'")
	}
	return append(rec, strings.Join(out, "|"))
}
