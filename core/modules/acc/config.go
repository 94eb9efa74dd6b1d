package acc

// Config is the [acc] section, named after the Kamailio acc modparams.
// Flags are message flag numbers 0..31; -1 turns the feature off.
type Config struct {
	// EarlyMedia 1 also accounts provisional replies with a body (183
	// with SDP) going upstream, through OnProvisional.
	EarlyMedia int `toml:"early_media"`
	// FailedTransactionFlag: a transaction with this flag whose final
	// reply is >= 300 is accounted like an answered one (log_flag /
	// db_flag decide where), unless the code is in FailedFilter.
	FailedTransactionFlag int `toml:"failed_transaction_flag"`
	// FailedFilter lists codes never accounted as failed transactions,
	// "408,480" (three digits each, >= 300, at most 15).
	FailedFilter string `toml:"failed_filter"`
	// ReportAck 1 accounts the end-to-end ACK of accounted INVITEs
	// (OnACK).
	ReportAck int `toml:"report_ack"`
	// ReportCancels 1 also accounts CANCEL transactions.
	ReportCancels int `toml:"report_cancels"`
	// DetectDirection 1 swaps from_tag and to_tag for requests going
	// upstream (callee to caller), found from the ";ftag=" of the Route
	// header as rr's is_direction does.
	DetectDirection int `toml:"detect_direction"`
	// AccExtraNullable 1 stores null extra values as SQL NULL instead
	// of "".
	AccExtraNullable int `toml:"acc_extra_nullable"`

	// LogFlag accounts the transaction to the log.
	LogFlag int `toml:"log_flag"`
	// LogMissedFlag logs missed calls (INVITE with a final >= 300).
	LogMissedFlag int `toml:"log_missed_flag"`
	// LogLevel is the Kamailio level of the accounting lines (1, L_NOTICE).
	LogLevel int `toml:"log_level"`
	// LogFacility is accepted for compatibility; kemigo logs through
	// its own logger.
	LogFacility string `toml:"log_facility"`
	// LogExtra adds "name=$pv;..." pairs to each log line.
	LogExtra string `toml:"log_extra"`

	// DBFlag accounts the transaction to the db_table_acc table.
	DBFlag int `toml:"db_flag"`
	// DBMissedFlag stores missed calls in db_table_missed_calls.
	DBMissedFlag int `toml:"db_missed_flag"`
	// DBExtra adds "column=$pv;..." values to each row; the columns must
	// exist (EnsureExtraColumns adds them).
	DBExtra string `toml:"db_extra"`
	// DBURL enables database accounting ("" disables it, and db_flag and
	// db_missed_flag with it, as in Kamailio).
	DBURL string `toml:"db_url"`
	// DBTableAcc and DBTableMissedCalls name the tables; they may hold
	// pseudo-variables, expanded per record.
	DBTableAcc         string `toml:"db_table_acc"`
	DBTableMissedCalls string `toml:"db_table_missed_calls"`
	// Column names of the core values.
	AccMethodColumn    string `toml:"acc_method_column"`
	AccFromTagColumn   string `toml:"acc_from_tag_column"`
	AccToTagColumn     string `toml:"acc_to_tag_column"`
	AccCallidColumn    string `toml:"acc_callid_column"`
	AccSipCodeColumn   string `toml:"acc_sip_code_column"`
	AccSipReasonColumn string `toml:"acc_sip_reason_column"`
	AccTimeColumn      string `toml:"acc_time_column"`
	// DBInsertMode is accepted and ignored: rows are always queued for
	// the module's background writer, which inserts them in batches
	// (closest to Kamailio's mode 2, async insert); see writer.go.
	DBInsertMode int `toml:"db_insert_mode"`
	// TimeMode: only 0 (the time column alone) is supported.
	TimeMode int `toml:"time_mode"`
}

// DefaultConfig returns Kamailio 5.6.3's defaults: every flag off, log
// level L_NOTICE, tables acc and missed_calls.
func DefaultConfig() Config {
	return Config{
		FailedTransactionFlag: -1,
		LogFlag:               -1,
		LogMissedFlag:         -1,
		LogLevel:              1,
		DBFlag:                -1,
		DBMissedFlag:          -1,
		DBTableAcc:            "acc",
		DBTableMissedCalls:    "missed_calls",
		AccMethodColumn:       "method",
		AccFromTagColumn:      "from_tag",
		AccToTagColumn:        "to_tag",
		AccCallidColumn:       "callid",
		AccSipCodeColumn:      "sip_code",
		AccSipReasonColumn:    "sip_reason",
		AccTimeColumn:         "time",
	}
}
