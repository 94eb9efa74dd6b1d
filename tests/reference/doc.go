// Package reference runs Kamailio's reference KEMI script,
// kamailio-basic-kemi-python.py as Debian ships it, unchanged, on a real
// kemigo with the module parameters of kamailio-basic-kemi.cfg
// (testdata/kamailio-basic.toml), through every path of the script, over
// UDP and TCP, with users in SQLite, PostgreSQL and MariaDB.
//
// The package has only tests: go test ./tests/reference/.
package reference
