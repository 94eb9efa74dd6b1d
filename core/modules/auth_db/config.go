package auth_db

import "github.com/kemigo/kemigo/core/db"

// Config is the [auth_db] section, named after the Kamailio auth_db
// modparams.
type Config struct {
	// DBURL is the credentials database (sqlite:///path, postgres://...,
	// mysql://...). It is opened on first use.
	DBURL string `toml:"db_url"`
	// UserColumn and DomainColumn name the lookup keys.
	UserColumn   string `toml:"user_column"`
	DomainColumn string `toml:"domain_column"`
	// PasswordColumn holds H(user:realm:password) ("ha1"), or the clear
	// text password with CalculateHA1; PasswordColumn2 ("ha1b") holds
	// H(user@domain:realm:password), used for digest usernames with a
	// domain part when CalculateHA1 is 0.
	PasswordColumn  string `toml:"password_column"`
	PasswordColumn2 string `toml:"password_column_2"`
	// CalculateHA1 1 reads a clear-text password and computes H(A1) for
	// the algorithm the credentials use (MD5 or SHA-256). When
	// PasswordColumn is left at "ha1", kemigo reads "password" instead
	// (Kamailio needs password_column="password" set by hand).
	CalculateHA1 int `toml:"calculate_ha1"`
	// UseDomain 1 looks users up by username and domain (the digest
	// username's domain part, else the realm) and makes the identity
	// checks of auth_check compare domains.
	UseDomain int `toml:"use_domain"`
	// LoadCredentials lists columns copied to pseudo-variables after a
	// successful check or is_subscriber: "col" (to $avp(col)) or
	// "$pv=col", separated by ';'.
	LoadCredentials string `toml:"load_credentials"`
	// VersionTable 1 checks the table version (7) on first use by
	// www_authorize / proxy_authorize, as Kamailio does at startup.
	VersionTable int `toml:"version_table"`
	// ForceGenerateAVPs 1 loads the credentials even when the password
	// check fails (the user must exist).
	ForceGenerateAVPs int `toml:"force_generate_avps"`
}

// DefaultConfig returns Kamailio's defaults, with kemigo's default
// database instead of Kamailio's read-only MySQL URL.
func DefaultConfig() Config {
	return Config{
		DBURL:           db.DefaultURL,
		UserColumn:      "username",
		DomainColumn:    "domain",
		PasswordColumn:  "ha1",
		PasswordColumn2: "ha1b",
		VersionTable:    1,
	}
}
