package rtpproxy

import (
	"testing"

	"github.com/BurntSushi/toml"
)

func TestConfigTOML(t *testing.T) {
	for _, tc := range []struct {
		text string
		want []string
	}{
		{`rtpproxy_sock = "udp:127.0.0.1:7722"`, []string{"udp:127.0.0.1:7722"}},
		{`rtpproxy_sock = ["udp:127.0.0.1:7722", "1 == udp:127.0.0.1:7723"]`, []string{"udp:127.0.0.1:7722", "1 == udp:127.0.0.1:7723"}},
	} {
		cfg := DefaultConfig()
		if _, err := toml.Decode(tc.text, &cfg); err != nil {
			t.Fatalf("%s: %v", tc.text, err)
		}
		if len(cfg.RtpproxySock) != len(tc.want) || cfg.RtpproxySock[0] != tc.want[0] {
			t.Errorf("%s: %q", tc.text, cfg.RtpproxySock)
		}
		if cfg.RtpproxyRetr != 5 {
			t.Errorf("defaults lost: %+v", cfg)
		}
	}
	var cfg Config
	if _, err := toml.Decode(`rtpproxy_sock = 5`, &cfg); err == nil {
		t.Error("int accepted")
	}
}
