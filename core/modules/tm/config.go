package tm

// Config is the [tm] section (Kamailio tm modparams; times in ms).
type Config struct {
	FrTimer       int    `toml:"fr_timer"`            // final reply timeout, no provisional yet (30000)
	FrInvTimer    int    `toml:"fr_inv_timer"`        // INVITE final reply timeout after a provisional (120000)
	WaitTimer     int    `toml:"wt_timer"`            // how long a completed transaction lingers (5000; Kamailio's wt_timer)
	WaitTimerOld  int    `toml:"wait_timer"`          // older name of wt_timer, accepted too
	RetrTimer1    int    `toml:"retr_timer1"`         // T1 (500)
	RetrTimer2    int    `toml:"retr_timer2"`         // T2 (4000)
	MaxInvLife    int    `toml:"max_inv_lifetime"`    // (180000)
	MaxNoInvLife  int    `toml:"max_noninv_lifetime"` // (32000)
	AutoInv100    int    `toml:"auto_inv_100"`        // send 100 Trying on t_relay of INVITE (1)
	Inv100Reason  string `toml:"auto_inv_100_reason"`
	EventCallback string `toml:"event_callback"`
	// OnsendCallback overrides kemi.onsend_route_callback for tm (internal).
}

// DefaultConfig returns Kamailio 5.6's defaults.
func DefaultConfig() Config {
	return Config{
		FrTimer:      30000,
		FrInvTimer:   120000,
		WaitTimer:    5000,
		RetrTimer1:   500,
		RetrTimer2:   4000,
		MaxInvLife:   180000,
		MaxNoInvLife: 32000,
		AutoInv100:   1,
		Inv100Reason: "trying -- your call is important to us",
	}
}
