package registrar

import (
	"fmt"
	"strings"
)

// Config is the [registrar] section, named after the Kamailio registrar
// modparams. use_domain belongs to [usrloc] (the registrar reads it from
// there, as Kamailio does).
type Config struct {
	DefaultExpires      int    `toml:"default_expires"`       // expires of a contact with no expires param and no Expires header
	DefaultExpiresRange int    `toml:"default_expires_range"` // percent of random reduction of default_expires
	ExpiresRange        int    `toml:"expires_range"`         // percent of random reduction of a requested expires
	MinExpires          int    `toml:"min_expires"`           // 0: no minimum
	MinExpiresMode      int    `toml:"min_expires_mode"`      // 1: reject a too brief expires with 423 instead of raising it
	MaxExpires          int    `toml:"max_expires"`           // 0: no maximum
	MaxContacts         int    `toml:"max_contacts"`          // 0: no limit
	DefaultQ            int    `toml:"default_q"`             // q of a contact without q (-1: unspecified)
	AppendBranches      int    `toml:"append_branches"`       // lookup adds the other contacts as branches
	CaseSensitive       int    `toml:"case_sensitive"`        // 1: the user part of AoRs keeps its case
	RealmPrefix         string `toml:"realm_prefix"`          // prefix stripped from the AoR domain (use_domain)
	ReceivedParam       string `toml:"received_param"`        // Contact param carrying the received address in the 200 OK
	ReceivedAVP         string `toml:"received_avp"`          // AVP holding the received address (nathelper.fix_nated_register)
	RetryAfter          int    `toml:"retry_after"`           // Retry-After of 5xx replies (0: none)
	MethodFiltering     int    `toml:"method_filtering"`      // lookup skips contacts not accepting the method
	UsePath             int    `toml:"use_path"`              // save Path headers (RFC 3327)
	PathMode            int    `toml:"path_mode"`             // 0 off, 1 lazy, 2 strict
	PathUseReceived     int    `toml:"path_use_received"`     // take received from the first Path URI
	GruuEnabled         int    `toml:"gruu_enabled"`          // pub-gruu / temp-gruu in the 200 OK (RFC 5627)
	OutboundMode        int    `toml:"outbound_mode"`         // only 0 (no outbound support) is implemented
	ContactMaxSize      int    `toml:"contact_max_size"`      // longest contact URI accepted
	SockFlag            int    `toml:"sock_flag"`             // message flag: take the socket from sock_hdr_name
	SockHdrName         string `toml:"sock_hdr_name"`         // header holding the socket ("proto:ip:port")
}

// DefaultConfig returns Kamailio 5.6's defaults.
func DefaultConfig() Config {
	return Config{
		DefaultExpires: 3600,
		MinExpires:     60,
		DefaultQ:       -1,
		AppendBranches: 1,
		ReceivedParam:  "received",
		PathMode:       pathStrict,
		GruuEnabled:    1,
		ContactMaxSize: 512,
		SockFlag:       -1,
	}
}

// path_mode values.
const (
	pathOff    = 0
	pathLazy   = 1
	pathStrict = 2
)

// rcvAVPName returns the AVP name of received_avp ("$avp(RECEIVED)" or
// "$avp(s:RECEIVED)" give "RECEIVED"); "" when unset.
func rcvAVPName(spec string) (string, error) {
	s := strings.TrimSpace(spec)
	if s == "" {
		return "", nil
	}
	if !strings.HasPrefix(s, "$avp(") || !strings.HasSuffix(s, ")") {
		return "", fmt.Errorf("received_avp %q: not an AVP ($avp(name))", spec)
	}
	name := strings.TrimPrefix(s[5:len(s)-1], "s:")
	if name == "" {
		return "", fmt.Errorf("received_avp %q: empty AVP name", spec)
	}
	return name, nil
}

func (c Config) check() error {
	if c.OutboundMode != 0 {
		return fmt.Errorf("registrar: outbound_mode %d not supported (only 0)", c.OutboundMode)
	}
	if c.PathMode < 0 || c.PathMode > 2 {
		return fmt.Errorf("registrar: path_mode %d out of range 0..2", c.PathMode)
	}
	if c.DefaultQ < -1 || c.DefaultQ > 1000 {
		return fmt.Errorf("registrar: default_q %d out of range -1..1000", c.DefaultQ)
	}
	if c.DefaultExpiresRange < 0 || c.DefaultExpiresRange > 100 || c.ExpiresRange < 0 || c.ExpiresRange > 100 {
		return fmt.Errorf("registrar: expires ranges are percents (0..100)")
	}
	if c.SockFlag < -1 || c.SockFlag > 31 {
		return fmt.Errorf("registrar: sock_flag %d out of range -1..31", c.SockFlag)
	}
	_, err := rcvAVPName(c.ReceivedAVP)
	return err
}
