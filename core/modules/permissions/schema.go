package permissions

import "github.com/kemigo/kemigo/core/db"

// Kamailio 5.6 table versions.
const (
	AddressVersion = 6
	TrustedVersion = 6
)

func init() {
	db.Register(db.Table{Name: "address", Version: AddressVersion, Create: map[db.Dialect][]string{
		db.SQLite: {`CREATE TABLE address (
    id INTEGER PRIMARY KEY NOT NULL,
    grp INTEGER DEFAULT 1 NOT NULL,
    ip_addr VARCHAR(50) NOT NULL,
    mask INTEGER DEFAULT 32 NOT NULL,
    port SMALLINT DEFAULT 0 NOT NULL,
    tag VARCHAR(64)
)`},
		db.Postgres: {`CREATE TABLE address (
    id SERIAL PRIMARY KEY NOT NULL,
    grp INTEGER DEFAULT 1 NOT NULL,
    ip_addr VARCHAR(50) NOT NULL,
    mask INTEGER DEFAULT 32 NOT NULL,
    port SMALLINT DEFAULT 0 NOT NULL,
    tag VARCHAR(64)
)`},
		db.MySQL: {"CREATE TABLE `address` (\n" +
			"    `id` INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL,\n" +
			"    `grp` INT(11) UNSIGNED DEFAULT 1 NOT NULL,\n" +
			"    `ip_addr` VARCHAR(50) NOT NULL,\n" +
			"    `mask` INT DEFAULT 32 NOT NULL,\n" +
			"    `port` SMALLINT(5) UNSIGNED DEFAULT 0 NOT NULL,\n" +
			"    `tag` VARCHAR(64)\n" +
			")"},
	}})
	db.Register(db.Table{Name: "trusted", Version: TrustedVersion, Create: map[db.Dialect][]string{
		db.SQLite: {`CREATE TABLE trusted (
    id INTEGER PRIMARY KEY NOT NULL,
    src_ip VARCHAR(50) NOT NULL,
    proto VARCHAR(4) NOT NULL,
    from_pattern VARCHAR(64) DEFAULT NULL,
    ruri_pattern VARCHAR(64) DEFAULT NULL,
    tag VARCHAR(64),
    priority INTEGER DEFAULT 0 NOT NULL
)`, `CREATE INDEX trusted_peer_idx ON trusted (src_ip)`},
		db.Postgres: {`CREATE TABLE trusted (
    id SERIAL PRIMARY KEY NOT NULL,
    src_ip VARCHAR(50) NOT NULL,
    proto VARCHAR(4) NOT NULL,
    from_pattern VARCHAR(64) DEFAULT NULL,
    ruri_pattern VARCHAR(64) DEFAULT NULL,
    tag VARCHAR(64),
    priority INTEGER DEFAULT 0 NOT NULL
)`, `CREATE INDEX trusted_peer_idx ON trusted (src_ip)`},
		db.MySQL: {"CREATE TABLE `trusted` (\n" +
			"    `id` INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL,\n" +
			"    `src_ip` VARCHAR(50) NOT NULL,\n" +
			"    `proto` VARCHAR(4) NOT NULL,\n" +
			"    `from_pattern` VARCHAR(64) DEFAULT NULL,\n" +
			"    `ruri_pattern` VARCHAR(64) DEFAULT NULL,\n" +
			"    `tag` VARCHAR(64),\n" +
			"    `priority` INT DEFAULT 0 NOT NULL\n" +
			")", "CREATE INDEX peer_idx ON trusted (`src_ip`)"},
	}})
}
