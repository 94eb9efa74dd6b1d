package config

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	c, err := Parse(`
listen = ["udp:127.0.0.1:5070", "tcp:[::1]:5071"]
workers = 2
[app_python3]
load = "/tmp/x.py"
[htable]
htable = ["ipban=>size=8;autoexpire=300;"]
[maxfwd]
max_limit = 30
`)
	if err != nil {
		t.Fatal(err)
	}
	if c.Workers != 2 || c.Script() != "/tmp/x.py" || c.MaxFwd.MaxLimit != 30 || len(c.HTable.HTable) != 1 {
		t.Fatalf("%+v", c)
	}
	if c.KEMI.ReplyRouteCallback != "ksr_reply_route" {
		t.Fatal("defaults lost")
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"[tm]\nfr_timerx = 1", "unknown config key tm.fr_timerx"},
		{"[maxfwd]\nmaxlimit = 1", "unknown config key maxfwd.maxlimit"},
		{"bogus = 1", "unknown config key bogus"},
		{`listen = ["udp:127.0.0.1:99999"]`, "bad port"},
		{"[app_python3]\nscript_style = \"lua\"", "script_style"},
		{"workers = \"x\"", "workers"},
		{"dispatch = \"threads\"", `dispatch: "threads" is not inline or queued`},
		{"gc_percent = -1", `gc_percent: -1 is negative`},
	} {
		_, err := Parse(tc.text)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want %q", tc.text, err, tc.want)
		}
	}
}

func TestParseListen(t *testing.T) {
	for _, tc := range []struct {
		in, proto, host string
		port            int
	}{
		{"udp:127.0.0.1:5060", "udp", "127.0.0.1", 5060},
		{"tcp:127.0.0.1", "tcp", "127.0.0.1", 5060},
		{"127.0.0.2:5080", "udp", "127.0.0.2", 5080},
		{"tcp:[::1]:5090", "tcp", "::1", 5090},
	} {
		p, h, port, err := ParseListen(tc.in)
		if err != nil || p != tc.proto || h != tc.host || port != tc.port {
			t.Errorf("%s: %s %s %d %v", tc.in, p, h, port, err)
		}
	}
}
