package auth_db

import "github.com/kemigo/kemigo/core/db"

// SubscriberTable is Kamailio's credentials table and SubscriberVersion
// its version in Kamailio 5.6.
const (
	SubscriberTable   = "subscriber"
	SubscriberVersion = 7
)

func init() {
	db.Register(db.Table{Name: SubscriberTable, Version: SubscriberVersion, Create: map[db.Dialect][]string{
		db.SQLite: {
			`CREATE TABLE subscriber (
    id INTEGER PRIMARY KEY NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL,
    domain VARCHAR(64) DEFAULT '' NOT NULL,
    password VARCHAR(64) DEFAULT '' NOT NULL,
    ha1 VARCHAR(128) DEFAULT '' NOT NULL,
    ha1b VARCHAR(128) DEFAULT '' NOT NULL,
    CONSTRAINT subscriber_account_idx UNIQUE (username, domain)
)`,
			`CREATE INDEX subscriber_username_idx ON subscriber (username)`,
		},
		db.Postgres: {
			`CREATE TABLE subscriber (
    id SERIAL PRIMARY KEY NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL,
    domain VARCHAR(64) DEFAULT '' NOT NULL,
    password VARCHAR(64) DEFAULT '' NOT NULL,
    ha1 VARCHAR(128) DEFAULT '' NOT NULL,
    ha1b VARCHAR(128) DEFAULT '' NOT NULL,
    CONSTRAINT subscriber_account_idx UNIQUE (username, domain)
)`,
			`CREATE INDEX subscriber_username_idx ON subscriber (username)`,
		},
		db.MySQL: {
			"CREATE TABLE `subscriber` (\n" +
				"    `id` INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL,\n" +
				"    `username` VARCHAR(64) DEFAULT '' NOT NULL,\n" +
				"    `domain` VARCHAR(64) DEFAULT '' NOT NULL,\n" +
				"    `password` VARCHAR(64) DEFAULT '' NOT NULL,\n" +
				"    `ha1` VARCHAR(128) DEFAULT '' NOT NULL,\n" +
				"    `ha1b` VARCHAR(128) DEFAULT '' NOT NULL,\n" +
				"    CONSTRAINT account_idx UNIQUE (`username`, `domain`)\n" +
				")",
			"CREATE INDEX username_idx ON subscriber (`username`)",
		},
	}})
}
