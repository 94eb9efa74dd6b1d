package kx

// Config is the [kx] section. Kamailio's kemix module has no modparams;
// the only setting is the table of preprocessor defines that
// KSR.kx.get_def / get_defn / ifdef / ifndef read (Kamailio takes them
// from "#!define NAME value" lines and "-A NAME=value").
type Config struct {
	// Defines maps a define name to its value ("" for a define without
	// a value). KAMAILIO_5, KAMAILIO_5_6 and KAMAILIO_5_6_3 are always
	// defined, as Kamailio 5.6.3 defines them.
	Defines map[string]string `toml:"defines"`
}

// DefaultConfig returns an empty define table.
func DefaultConfig() Config { return Config{} }
