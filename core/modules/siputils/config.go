package siputils

// Config is the [siputils] section. Keys are named after the Kamailio
// siputils modparams; only the ones kemigo uses are accepted.
type Config struct {
	// OptionsAccept is the Accept header body of options_reply().
	OptionsAccept string `toml:"options_accept"`
	// OptionsAcceptEncoding is the Accept-Encoding header body of options_reply().
	OptionsAcceptEncoding string `toml:"options_accept_encoding"`
	// OptionsAcceptLanguage is the Accept-Language header body of options_reply().
	OptionsAcceptLanguage string `toml:"options_accept_language"`
	// OptionsSupport is the Supported header body of options_reply().
	OptionsSupport string `toml:"options_support"`
}

// DefaultConfig returns Kamailio's defaults.
func DefaultConfig() Config {
	return Config{
		OptionsAccept:         "*/*",
		OptionsAcceptEncoding: "",
		OptionsAcceptLanguage: "en",
		OptionsSupport:        "",
	}
}
