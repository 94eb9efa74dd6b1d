package rr

// Config is the [rr] section, named after the Kamailio rr modparams.
type Config struct {
	// EnableFullLR writes ";lr=on" instead of ";lr" in Record-Route
	// (for old user agents that drop parameters without a value).
	EnableFullLR int `toml:"enable_full_lr"`
	// AppendFromtag adds ";ftag=<From tag>" (the To tag for an upstream
	// request) to Record-Route. is_direction needs it.
	AppendFromtag int `toml:"append_fromtag"`
	// EnableDoubleRR 1 inserts two Record-Route headers (both with
	// ";r2=on") when the request leaves on another socket or transport
	// than it came in on; 2 always inserts two; 0 never (only the
	// receiving socket is recorded).
	EnableDoubleRR int `toml:"enable_double_rr"`
	// AddUsername puts the R-URI user (or custom_user_avp) in the
	// Record-Route URI.
	AddUsername int `toml:"add_username"`
	// IgnoreUser: a Route / R-URI whose user is this string is not
	// "myself", and a Record-Route user equal to it gets its first
	// character changed to 'x' (or 'y'). Kamailio only has it when rr is
	// built with ENABLE_USER_CHECK (not in the stock packages).
	IgnoreUser string `toml:"ignore_user"`
	// CustomUserAVP names an AVP ("$avp(name)") whose value is used as
	// the Record-Route user when add_username is set.
	CustomUserAVP string `toml:"custom_user_avp"`
	// ForceSendSocket makes loose_route force the send socket to the one
	// of our own top Route (not only for double Route, where it is always
	// done).
	ForceSendSocket int `toml:"force_send_socket"`
	// EnableSocketMismatchWarning logs a warning when the second of a
	// double Route does not match a local socket.
	EnableSocketMismatchWarning int `toml:"enable_socket_mismatch_warning"`
	// IgnoreSips 1 always writes "sip:" in Record-Route, even for a sips
	// R-URI.
	IgnoreSips int `toml:"ignore_sips"`
}

// DefaultConfig returns Kamailio's defaults.
func DefaultConfig() Config {
	return Config{
		AppendFromtag:               1,
		EnableDoubleRR:              1,
		EnableSocketMismatchWarning: 1,
	}
}
