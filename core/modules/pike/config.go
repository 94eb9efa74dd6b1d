package pike

// Config is the [pike] section, named after the Kamailio pike modparams.
type Config struct {
	// SamplingTimeUnit is the length of one counting window, in seconds.
	SamplingTimeUnit int `toml:"sampling_time_unit"`
	// ReqsDensityPerUnit is how many requests per window an address may
	// send before it is blocked (the prefix tree makes the real limit a
	// little higher, see README).
	ReqsDensityPerUnit int `toml:"reqs_density_per_unit"`
	// RemoveLatency is how long, in seconds, an address stays in memory
	// after its last request.
	RemoveLatency int `toml:"remove_latency"`
	// PikeLogLevel is the Kamailio log level of the blocking and
	// unblocking messages: -5..-2 (alert..crit) and -1 (err) log as error,
	// 0 (L_WARN) as warn, 1 (notice) and 2 (info) as info, 3 as debug.
	PikeLogLevel int `toml:"pike_log_level"`
}

// DefaultConfig returns Kamailio 5.6.3's defaults.
func DefaultConfig() Config {
	return Config{SamplingTimeUnit: 2, ReqsDensityPerUnit: 30, RemoveLatency: 120, PikeLogLevel: 0}
}
