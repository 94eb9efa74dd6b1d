package corex

// Config is the [corex] section. None of Kamailio's corex modparams
// (alias_subdomains, dns_cache, nio_*, evcb_reply_out) is implemented, so
// the section takes no keys.
type Config struct{}

// DefaultConfig returns the empty configuration.
func DefaultConfig() Config { return Config{} }
