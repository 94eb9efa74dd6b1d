package auth

// Config is the [auth] section, named after the Kamailio auth modparams.
type Config struct {
	// Secret signs the nonces (HMAC-SHA256). Empty: a random secret is
	// drawn at start, so nonces do not survive a restart (as Kamailio).
	// Set the same value on every instance that must accept the others'
	// nonces.
	Secret string `toml:"secret"`
	// NonceExpire is the nonce lifetime in seconds.
	NonceExpire int `toml:"nonce_expire"`
	// NonceAuthMaxDrift is how far in the future, in seconds, a nonce's
	// creation time may be (clock drift between instances).
	NonceAuthMaxDrift int `toml:"nonce_auth_max_drift"`
	// NonceCount 1 keeps the last nc seen per nonce: a request must carry
	// a higher nc than the one before, or it gets -4 (stale, as Kamailio).
	// Only credentials with a qop carry nc.
	NonceCount int `toml:"nonce_count"`
	// NCArraySize is how many nonces the nonce-count table tracks; a nonce
	// more than NCArraySize challenges old is stale.
	NCArraySize int `toml:"nc_array_size"`
	// OneTimeNonce 1 accepts each nonce only once (-6 on reuse) for
	// credentials without nc; OTNInFlightNo is how many such nonces can be
	// outstanding.
	OneTimeNonce  int `toml:"one_time_nonce"`
	OTNInFlightNo int `toml:"otn_in_flight_no"`
	// AuthChecksRegister, AuthChecksNoDlg and AuthChecksInDlg bind the
	// nonces of REGISTER, out-of-dialog and in-dialog requests to parts of
	// the request: 1 R-URI, 2 Call-ID, 4 From tag, 8 source IP (a sum).
	// A nonce used with different parts is stale.
	AuthChecksRegister int `toml:"auth_checks_register"`
	AuthChecksNoDlg    int `toml:"auth_checks_no_dlg"`
	AuthChecksInDlg    int `toml:"auth_checks_in_dlg"`
	// Algorithm is "" (MD5, not printed in challenges), "MD5", "SHA-256",
	// "MD5-sess", "SHA-256-sess", or a comma-separated list of them: one
	// challenge header per algorithm, in order of preference (RFC 7616
	// §3.7). Credentials without an algorithm parameter use the first.
	Algorithm string `toml:"algorithm"`
	// RealmPrefix is stripped from the start of realms (challenges and
	// credential lookup).
	RealmPrefix string `toml:"realm_prefix"`
	// ForceStatelessReply 1 sends challenges statelessly even inside a
	// transaction.
	ForceStatelessReply int `toml:"force_stateless_reply"`
	// UseDomain 1 makes pv_auth_check's identity checks compare domains too.
	UseDomain int `toml:"use_domain"`
	// ProxyChallengeHeader and WWWChallengeHeader name the challenge headers.
	ProxyChallengeHeader string `toml:"proxy_challenge_header"`
	WWWChallengeHeader   string `toml:"www_challenge_header"`
	// ChallengeAttr is the AVP pv_auth_check writes the challenge header
	// to (flags 2, 4, 8).
	ChallengeAttr string `toml:"challenge_attr"`
	// AddAuthinfoHdr 1 adds an Authentication-Info header (rspauth,
	// nextnonce) to local replies to successfully authenticated requests.
	AddAuthinfoHdr int `toml:"add_authinfo_hdr"`
}

// DefaultConfig returns Kamailio's defaults, except nonce_count, which
// kemigo turns on (Kamailio: 0) so that replayed credentials with a qop
// are refused out of the box.
func DefaultConfig() Config {
	return Config{
		NonceExpire:          300,
		NonceAuthMaxDrift:    3,
		NonceCount:           1,
		NCArraySize:          1 << 20,
		OTNInFlightNo:        1 << 20,
		ProxyChallengeHeader: "Proxy-Authenticate",
		WWWChallengeHeader:   "WWW-Authenticate",
		ChallengeAttr:        "$digest_challenge",
	}
}
