package sl

// Config is the [sl] section, named after the Kamailio sl modparams.
type Config struct {
	// DefaultCode and DefaultReason are what native cfg scripts fall back
	// to when a parameter cannot be evaluated. KEMI arguments are typed, so
	// kemigo only keeps them for configuration compatibility.
	DefaultCode   int    `toml:"default_code"`
	DefaultReason string `toml:"default_reason"`
	// BindTM 0 makes send_reply always stateless.
	BindTM int `toml:"bind_tm"`
	// RichRedirect adds branch info to the Contacts of 3xx replies:
	// 1 adds ";flags=<branch flags>", 2 adds the path as "?Route=" (sum
	// for both).
	RichRedirect int `toml:"rich_redirect"`
	// EventCallbackFlAck and EventCallbackLresSent name the KEMI functions
	// for "sl:filtered-ack" and "sl:local-response"; the proxy runs them
	// through Module.FilterACK and Module.SetLocalResponseHook.
	EventCallbackFlAck    string `toml:"event_callback_fl_ack"`
	EventCallbackLresSent string `toml:"event_callback_lres_sent"`
}

// DefaultConfig returns Kamailio's defaults.
func DefaultConfig() Config {
	return Config{DefaultCode: 500, DefaultReason: "Internal Server Error", BindTM: 1}
}
