package config

// FuzzParse feeds TOML text to Parse (decoding over the defaults, the
// unknown-key check, Validate with ParseListen and send_only_to). It must
// never panic, and text Parse accepts must validate again. Seeds: the
// example configurations and one key of every section.
//
//	go test ./core/config -run '^$' -fuzz FuzzParse -fuzztime 60s

import (
	"os"
	"path/filepath"
	"testing"
)

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "examples", "*.toml"))
	more, _ := filepath.Glob(filepath.Join("..", "..", "cmd", "kemigo", "testdata", "*", "*.toml"))
	for _, p := range append(files, more...) {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(string(b))
		}
	}
	for _, s := range []string{
		"",
		`listen = ["udp:127.0.0.1:5060", "tcp:[::1]:5061", "tls:127.0.0.1:5061"]` + "\n[tls]\ncertificate = \"c.pem\"\nprivate_key = \"k.pem\"\n",
		`send_only_to = ["127.0.0.0/8", "::1", "[::1]"]` + "\nmax_headers = 10\n",
		"workers = -1\n",
		"alias = [\"example.com:5060\"]\n[htable]\nhtable = [\"ipban=>size=8;autoexpire=300;\"]\n",
		"[app_python3]\nload = \"x.py\"\nscript_style = \"python3s\"\nerror_reply = 0\n",
		"[jsonrpcs]\nhttp = \"127.0.0.1:0\"\ntoken = \"t\"\n",
		"[tm]\nfr_timer = 1\n[auth]\nalgorithm = \"SHA-256\"\n[pike]\nsampling_time_unit = 2\n",
		"[unknown]\nkey = 1\n",
		"listen = [\"udp:[::1\"]\n",
		"listen = [\"udp:host:99999999999999999999\"]\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		c, err := Parse(text)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted text that does not validate: %v", err)
		}
		for _, l := range c.Listen {
			if _, host, port, err := ParseListen(l); err != nil || host == "" || port <= 0 || port > 65535 {
				t.Fatalf("listen %q: %q %d %v", l, host, port, err)
			}
		}
		_ = c.Script()
	})
}
