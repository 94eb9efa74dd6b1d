package usrloc

import (
	"fmt"
	"strings"
)

// Config is the [usrloc] section, named after the Kamailio usrloc
// modparams.
type Config struct {
	// DBURL is the database of the location tables (db_url). Used with
	// db_mode 1 and 2.
	DBURL string `toml:"db_url"`
	// DBMode 0 keeps the location service in memory only; 1 writes every
	// change through to the database (write-through); 2 keeps changes in
	// memory and writes them in one transaction every timer_interval
	// seconds and at shutdown (write-back). 1 and 2 load the table on
	// start. 3 (DB only) and 4 (read-only) are not supported.
	DBMode int `toml:"db_mode"`
	// TimerInterval is the period of the expiry timer (and, with
	// db_mode 2, of the write-back flush), in seconds.
	TimerInterval int `toml:"timer_interval"`
	// UseDomain 1 keys records by "user@domain" instead of "user" (the
	// registrar reads it to build AoRs).
	UseDomain int `toml:"use_domain"`
	// Preload names the domains (location tables) created at start-up.
	// kemigo also creates a domain on its first use.
	Preload StringList `toml:"preload"`
	// NATBFlag is the index of the branch flag marking NATed contacts
	// (-1: none). The registrar adds it to the contact's cflags when the
	// received address comes from a Path header; it sets the keepalive
	// column.
	NATBFlag int `toml:"nat_bflag"`
	// DescTimeOrder 1 orders the contacts of an AoR by modification time
	// only (newest first) instead of by q.
	DescTimeOrder int `toml:"desc_time_order"`
	// MatchingMode says how a REGISTER contact matches a stored one:
	// 0 contact URI, 1 contact URI and Call-ID, 2 contact URI and Path,
	// 3 Call-ID only.
	MatchingMode int `toml:"matching_mode"`
	// CSeqDelay is the window (seconds) in which a REGISTER with the same
	// Call-ID and CSeq is taken for a retransmission and ignored.
	CSeqDelay int `toml:"cseq_delay"`
}

// DefaultConfig returns Kamailio's defaults.
func DefaultConfig() Config {
	return Config{TimerInterval: 60, NATBFlag: -1, CSeqDelay: 20}
}

// Matching modes (matching_mode).
const (
	MatchContact       = 0
	MatchContactCallID = 1
	MatchContactPath   = 2
	MatchCallIDOnly    = 3
)

func (c Config) check() error {
	if c.DBMode < 0 || c.DBMode > 2 {
		return fmt.Errorf("usrloc: db_mode %d not supported (0 memory only, 1 write-through, 2 write-back)", c.DBMode)
	}
	if c.DBMode != 0 && strings.TrimSpace(c.DBURL) == "" {
		return fmt.Errorf("usrloc: db_mode %d needs db_url", c.DBMode)
	}
	if c.MatchingMode < 0 || c.MatchingMode > 3 {
		return fmt.Errorf("usrloc: matching_mode %d out of range 0..3", c.MatchingMode)
	}
	if c.NATBFlag < -1 || c.NATBFlag > 31 {
		return fmt.Errorf("usrloc: nat_bflag %d out of range -1..31", c.NATBFlag)
	}
	return nil
}

// NATFlag returns the branch-flag mask of nat_bflag (0 when unset).
func (c Config) NATFlag() uint32 {
	if c.NATBFlag < 0 {
		return 0
	}
	return 1 << uint(c.NATBFlag)
}

// StringList is a TOML value given either as one string or as an array
// of strings (a modparam that Kamailio accepts several times).
type StringList []string

// UnmarshalTOML accepts "x" and ["x", "y"].
func (l *StringList) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case string:
		*l = StringList{x}
	case []any:
		out := make(StringList, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return fmt.Errorf("want strings, got %T", e)
			}
			out = append(out, s)
		}
		*l = out
	default:
		return fmt.Errorf("want a string or an array of strings, got %T", v)
	}
	return nil
}
