package maxfwd

// Config is the [maxfwd] section, named after the Kamailio maxfwd modparams.
type Config struct {
	// MaxLimit caps the Max-Forwards value of forwarded requests: a
	// larger received value is lowered to max_limit (after the
	// decrement). 0..255.
	MaxLimit int `toml:"max_limit"`
}

// DefaultConfig returns Kamailio's default (max_limit 70).
func DefaultConfig() Config {
	return Config{MaxLimit: 70}
}
