package sanity

// Config is the [sanity] section, named after the Kamailio sanity modparams.
type Config struct {
	// DefaultChecks is the msg_checks bitmask of sanity_check_defaults().
	DefaultChecks int `toml:"default_checks"`
	// URIChecks is the uri_checks bitmask of sanity_check_defaults().
	URIChecks int `toml:"uri_checks"`
	// ProxyRequire is the comma separated list of extensions accepted in
	// Proxy-Require (check 512); tokens compare case-sensitively.
	ProxyRequire string `toml:"proxy_require"`
	// Autodrop is accepted for compatibility; it has no effect in KEMI.
	Autodrop int `toml:"autodrop"`
	// NoReply, when non-zero, makes the checks record the error reply
	// instead of sending it; the script sends it with sanity_reply().
	NoReply int `toml:"noreply"`
}

// Check bits of msg_checks (sanity_mod.h).
const (
	CheckRURISIPVersion = 1 << 0  // 1: R-URI SIP version is 2.0 (505)
	CheckRURIScheme     = 1 << 1  // 2: R-URI parses (400)
	CheckRequiredHdrs   = 1 << 2  // 4: From, To, Call-ID, CSeq present, not duplicated
	CheckViaSIPVersion  = 1 << 3  // 8: no-op in Kamailio 5.6.3
	CheckViaProtocol    = 1 << 4  // 16: no-op in Kamailio 5.6.3
	CheckCSeqMethod     = 1 << 5  // 32: CSeq method equals the request method (400)
	CheckCSeqValue      = 1 << 6  // 64: CSeq number is an unsigned int (400)
	CheckContentLength  = 1 << 7  // 128: Content-Length equals the body length (400)
	CheckExpires        = 1 << 8  // 256: Expires is an unsigned int (400)
	CheckProxyRequire   = 1 << 9  // 512: Proxy-Require lists only supported extensions (420)
	CheckParseURIs      = 1 << 10 // 1024: the URIs chosen by uri_checks parse (400)
	CheckDigest         = 1 << 11 // 2048: digest credentials well formed (400)
	CheckDupTags        = 1 << 12 // 4096: at most one tag in From and To (400)
	CheckAuthorization  = 1 << 13 // 8192: as 2048, non-digest credentials pass
	CheckVia1Header     = 1 << 14 // 16384: top Via has a host (no reply)
)

// Bits of uri_checks.
const (
	URICheckRURI    = 1 << 0
	URICheckFrom    = 1 << 1
	URICheckTo      = 1 << 2
	URICheckContact = 1 << 3
)

// DefaultMsgChecks is SANITY_DEFAULT_CHECKS (3047).
const DefaultMsgChecks = CheckRURISIPVersion | CheckRURIScheme | CheckRequiredHdrs |
	CheckCSeqMethod | CheckCSeqValue | CheckContentLength | CheckExpires |
	CheckProxyRequire | CheckDigest

// DefaultURIChecks is SANITY_DEFAULT_URI_CHECKS (7).
const DefaultURIChecks = URICheckRURI | URICheckFrom | URICheckTo

// DefaultConfig returns Kamailio's defaults.
func DefaultConfig() Config {
	return Config{
		DefaultChecks: DefaultMsgChecks,
		URIChecks:     DefaultURIChecks,
		Autodrop:      1,
	}
}
