package htable

// Config is the [htable] section. Keys are named after the Kamailio htable
// modparams; only the ones kemigo implements are accepted.
type Config struct {
	// HTable holds one table definition per entry, in Kamailio's modparam
	// syntax: "name=>size=8;autoexpire=300;initval=0;updateexpire=1;".
	HTable []string `toml:"htable"`
	// TimerInterval is how often, in seconds, expired items are removed
	// (the background sweeper). Reads never see expired items anyway.
	TimerInterval int `toml:"timer_interval"`
	// EventCallback names the KEMI function run for htable events
	// ("htable:expired:<table>"). The proxy wires it through
	// Module.SetExpiredHook.
	EventCallback string `toml:"event_callback"`
}

// DefaultConfig returns Kamailio's defaults: no tables, a 20 s sweep.
func DefaultConfig() Config {
	return Config{TimerInterval: 20}
}
