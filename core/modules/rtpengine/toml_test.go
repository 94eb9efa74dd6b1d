package rtpengine

import (
	"testing"

	"github.com/BurntSushi/toml"
)

func TestConfigTOML(t *testing.T) {
	cfg := DefaultConfig()
	if _, err := toml.Decode(`rtpengine_sock = "udp:127.0.0.1:2223"`+"\nrtpengine_tout_ms = 500", &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.RtpengineSock) != 1 || cfg.RtpengineSock[0] != "udp:127.0.0.1:2223" || cfg.RtpengineToutMs != 500 || cfg.RtpengineRetr != 5 {
		t.Fatalf("%+v", cfg)
	}
	if _, err := toml.Decode(`rtpengine_sock = ["udp:127.0.0.1:2223", "1 == udp:127.0.0.1:2224"]`, &cfg); err != nil || len(cfg.RtpengineSock) != 2 {
		t.Fatalf("%+v %v", cfg.RtpengineSock, err)
	}
}
