package permissions

// Config is the [permissions] section, named after the Kamailio
// permissions modparams (the address and trusted parts; the allow/deny
// rule files are not implemented).
type Config struct {
	// DBURL is the database of the address and trusted tables. Empty
	// disables both (allow_* return -1), as in Kamailio, unless
	// AddressFile provides the address records.
	DBURL string `toml:"db_url"`
	// DBMode applies to allow_trusted: 0 queries the trusted table on each
	// call, 1 keeps it in memory (reload with ReloadTrusted). The address
	// table is always kept in memory.
	DBMode int `toml:"db_mode"`
	// AddressTable and its columns.
	AddressTable string `toml:"address_table"`
	GrpCol       string `toml:"grp_col"`
	IPAddrCol    string `toml:"ip_addr_col"`
	MaskCol      string `toml:"mask_col"`
	PortCol      string `toml:"port_col"`
	// TagCol is the tag column of both tables.
	TagCol string `toml:"tag_col"`
	// AddressFile, when set, is read instead of the address table: one
	// record per line, "group address [mask [port [tag]]]", '#' comments.
	AddressFile string `toml:"address_file"`
	// TrustedTable and its columns.
	TrustedTable string `toml:"trusted_table"`
	SourceCol    string `toml:"source_col"`
	ProtoCol     string `toml:"proto_col"`
	FromCol      string `toml:"from_col"`
	RuriCol      string `toml:"ruri_col"`
	PriorityCol  string `toml:"priority_col"`
	// PeerTagAVP ("$avp(name)") receives the tag of the matching record.
	PeerTagAVP string `toml:"peer_tag_avp"`
	// PeerTagMode 1 makes allow_trusted collect the tags of every
	// matching record and return their number (0: the first match).
	PeerTagMode int `toml:"peer_tag_mode"`
	// MaxSubnets bounds the subnet records kept (the rest are dropped
	// with an error log).
	MaxSubnets int `toml:"max_subnets"`
	// LoadBackends selects what is loaded: 1 address, 2 trusted (sum).
	LoadBackends int `toml:"load_backends"`
}

// DefaultConfig returns Kamailio's defaults.
func DefaultConfig() Config {
	return Config{
		AddressTable: "address",
		GrpCol:       "grp",
		IPAddrCol:    "ip_addr",
		MaskCol:      "mask",
		PortCol:      "port",
		TagCol:       "tag",
		TrustedTable: "trusted",
		SourceCol:    "src_ip",
		ProtoCol:     "proto",
		FromCol:      "from_pattern",
		RuriCol:      "ruri_pattern",
		PriorityCol:  "priority",
		MaxSubnets:   512,
		LoadBackends: 0xFFFF,
	}
}
