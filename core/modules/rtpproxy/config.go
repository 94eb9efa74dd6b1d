package rtpproxy

import "fmt"

// Config is the [rtpproxy] section, named after the Kamailio rtpproxy
// modparams.
type Config struct {
	// RtpproxySock lists the rtpproxy sets, one entry per modparam line:
	// "udp:127.0.0.1:7722", several space-separated sockets with an
	// optional "=weight", and an optional "N == " set id prefix (set 0 by
	// default). A single string is accepted too.
	RtpproxySock StringList `toml:"rtpproxy_sock"`
	// RtpproxyDisableTout is how long, in seconds, a proxy that did not
	// answer is left alone before it is tried again.
	RtpproxyDisableTout int `toml:"rtpproxy_disable_tout"`
	// RtpproxyRetr is how many times a command is sent before giving up.
	RtpproxyRetr int `toml:"rtpproxy_retr"`
	// RtpproxyTout is how long, in seconds, each try waits for the reply.
	RtpproxyTout int `toml:"rtpproxy_tout"`
	// NortpproxyStr is the SDP line added to mark a body as proxied ("" to
	// add none); a body that has it is not proxied again without flag f.
	NortpproxyStr string `toml:"nortpproxy_str"`
	// TimeoutSocket is sent with update commands for rtpproxy's session
	// timeout notifications.
	TimeoutSocket string `toml:"timeout_socket"`
	// ExtraIDPv is the PV (format) appended to the Call-ID with flag b.
	ExtraIDPv string `toml:"extra_id_pv"`
	// RtpInstPvar names a writable PV set to the URL of the rtpproxy used.
	RtpInstPvar string `toml:"rtp_inst_pvar"`
}

// DefaultConfig returns Kamailio 5.6.3's defaults (no rtpproxy).
func DefaultConfig() Config {
	return Config{RtpproxyDisableTout: 60, RtpproxyRetr: 5, RtpproxyTout: 1, NortpproxyStr: "a=nortpproxy:yes"}
}

// StringList is a TOML value given as one string or an array of strings.
type StringList []string

// UnmarshalTOML accepts "x" and ["x", "y"].
func (l *StringList) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case string:
		*l = StringList{x}
	case []any:
		out := make(StringList, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return fmt.Errorf("want strings, got %T", e)
			}
			out = append(out, s)
		}
		*l = out
	default:
		return fmt.Errorf("want a string or an array of strings, got %T", v)
	}
	return nil
}
