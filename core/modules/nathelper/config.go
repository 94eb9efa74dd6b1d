package nathelper

import (
	"fmt"
	"strings"
)

// Config is the [nathelper] section, named after the Kamailio nathelper
// modparams.
type Config struct {
	// ReceivedAVP is the AVP fix_nated_register stores the source address
	// in ("$avp(RECEIVED)"); registrar's received_avp must name the same.
	ReceivedAVP string `toml:"received_avp"`
	// NATAddrMode 1 also counts 192.0.0.0/24 (RFC 7335) as a private
	// network; 0 only RFC 1918, RFC 6598 and 192.0.0.0/29.
	NATAddrMode int `toml:"nat_addr_mode"`
	// Keepalive pinging of NATed contacts is not implemented: these are
	// accepted so that a ported configuration loads.
	NATPingInterval int    `toml:"natping_interval"`
	PingNatedOnly   int    `toml:"ping_nated_only"`
	SIPPingBFlag    int    `toml:"sipping_bflag"`
	SIPPingFrom     string `toml:"sipping_from"`
	SIPPingMethod   string `toml:"sipping_method"`
}

// DefaultConfig returns Kamailio's defaults.
func DefaultConfig() Config {
	return Config{NATAddrMode: 1, SIPPingBFlag: -1, SIPPingMethod: "OPTIONS"}
}

// avpName returns the AVP name of a "$avp(name)" spec ("" when unset).
func avpName(spec string) (string, error) {
	s := strings.TrimSpace(spec)
	if s == "" {
		return "", nil
	}
	if !strings.HasPrefix(s, "$avp(") || !strings.HasSuffix(s, ")") {
		return "", fmt.Errorf("nathelper: received_avp %q is not an AVP ($avp(name))", spec)
	}
	name := strings.TrimPrefix(s[5:len(s)-1], "s:")
	if name == "" {
		return "", fmt.Errorf("nathelper: received_avp %q: empty AVP name", spec)
	}
	return name, nil
}
