package rtpengine

import "fmt"

// Config is the [rtpengine] section, named after the Kamailio rtpengine
// modparams.
type Config struct {
	// RtpengineSock lists the rtpengine sets, one entry per modparam line:
	// "udp:127.0.0.1:2223", several space-separated sockets with an
	// optional "=weight", and an optional "N == " set id prefix (set 0 by
	// default). udp:, udp6: and unix: sockets. A single string is
	// accepted too.
	RtpengineSock StringList `toml:"rtpengine_sock"`
	// RtpengineDisableTout is how long, in seconds, an instance that did
	// not answer is left alone before it is pinged again.
	RtpengineDisableTout int `toml:"rtpengine_disable_tout"`
	// AggressiveRedetection 1: when no instance of the set is enabled,
	// ping them all again at once.
	AggressiveRedetection int `toml:"aggressive_redetection"`
	// RtpengineToutMs is how long each try waits for the reply.
	RtpengineToutMs int `toml:"rtpengine_tout_ms"`
	// RtpengineRetr is how many times a command is sent before the
	// instance is given up.
	RtpengineRetr int `toml:"rtpengine_retr"`
	// QueriedNodesLimit caps how many instances one command may try.
	QueriedNodesLimit int `toml:"queried_nodes_limit"`
	// SetidDefault is the set used when the script chose none.
	SetidDefault int `toml:"setid_default"`
	// ExtraIDPv is the PV (format) sent as via-branch with via-branch=extra.
	ExtraIDPv string `toml:"extra_id_pv"`
	// RtpInstPvar names a writable PV set to the URL of the instance used.
	RtpInstPvar string `toml:"rtp_inst_pvar"`
	// WriteSdpPv names a writable PV that receives the new SDP instead of
	// the message body.
	WriteSdpPv string `toml:"write_sdp_pv"`
	// ReadSdpPv names a PV holding the SDP to send instead of the body.
	ReadSdpPv string `toml:"read_sdp_pv"`
	// HashTableTout is how long, in seconds, a call stays bound to the
	// instance that handled it.
	HashTableTout int `toml:"hash_table_tout"`
}

// DefaultConfig returns Kamailio 5.6.3's defaults (no rtpengine).
func DefaultConfig() Config {
	return Config{
		RtpengineDisableTout:  60,
		AggressiveRedetection: 1,
		RtpengineToutMs:       1000,
		RtpengineRetr:         5,
		QueriedNodesLimit:     30,
		HashTableTout:         3600,
	}
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
