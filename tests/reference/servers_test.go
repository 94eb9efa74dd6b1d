package reference

import (
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/kemigo/kemigo/core/db"
	"github.com/kemigo/kemigo/internal/siptest"
)

// The database servers of the machine (override with these variables).
const (
	envPostgres = "KEMIGO_TEST_POSTGRES_URL"
	envMySQL    = "KEMIGO_TEST_MYSQL_URL"
)

func serverURL(env, def string) string {
	if v := os.Getenv(env); v != "" {
		return v
	}
	return def
}

func uniqueName() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "kemigo_ref_" + hex.EncodeToString(b[:])
}

// freshPostgres creates a schema of its own on the PostgreSQL server and
// returns a db_url whose search_path is that schema; the schema is dropped
// when the test ends. It skips the test when the server is not reachable.
func freshPostgres(t *testing.T) string {
	t.Helper()
	base := serverURL(envPostgres, "postgres://postgres@127.0.0.1:5432/test")
	admin, err := db.Open(base)
	if err != nil {
		t.Skipf("PostgreSQL server not reachable at %s (%v): start it (or set %s) to run the PostgreSQL scenarios", base, err, envPostgres)
	}
	t.Cleanup(func() { admin.Close() })
	schema := uniqueName()
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("PostgreSQL: create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("PostgreSQL: drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// freshMySQL creates a database of its own on the MariaDB/MySQL server
// and returns its db_url; the database is dropped when the test ends. It
// skips the test when the server is not reachable.
func freshMySQL(t *testing.T) string {
	t.Helper()
	base := serverURL(envMySQL, "mysql://root@127.0.0.1:3306/test")
	admin, err := db.Open(base)
	if err != nil {
		t.Skipf("MariaDB/MySQL server not reachable at %s (%v): start it (or set %s) to run the MariaDB scenarios", base, err, envMySQL)
	}
	t.Cleanup(func() { admin.Close() })
	name := uniqueName()
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("MariaDB: create database: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP DATABASE " + name); err != nil {
			t.Errorf("MariaDB: drop database %s: %v", name, err)
		}
	})
	i := strings.LastIndex(base, "/")
	return base[:i+1] + name
}

// TestServerDatabases runs the authentication scenarios (and a call, for
// the location and acc tables) with every table of the cfg's DBURL on
// PostgreSQL and on MariaDB: kemigo db init, kemigo user add, then the
// unchanged script.
func TestServerDatabases(t *testing.T) {
	needScript(t)
	for _, srv := range []struct {
		name  string
		fresh func(*testing.T) string
	}{{"postgres", freshPostgres}, {"mariadb", freshMySQL}} {
		t.Run(srv.name, func(t *testing.T) {
			url := srv.fresh(t)
			cfg := baseConfig(t, url)
			d, users := prepareDB(t, cfg, url, "")
			// the tables are the fresh ones, not the shared server's
			where := "SELECT current_schema()"
			if d.Dialect == db.MySQL {
				where = "SELECT database()"
			}
			var in string
			if err := d.QueryRow(where).Scan(&in); err != nil || !strings.HasPrefix(in, "kemigo_ref_") {
				t.Fatalf("%s: tables in %q (%v), want a fresh kemigo_ref_ schema", url, in, err)
			}
			if ok, err := d.HasTable("location"); err != nil || !ok {
				t.Fatalf("%s: no location table in %s (%v)", url, in, err)
			}
			e := start(t, cfg, d, url, users)
			for _, proto := range protos {
				t.Run(proto, func(t *testing.T) {
					t.Run("register-401-then-200", func(t *testing.T) {
						a := e.ua(t, proto, "alice")
						ch, ok := a.Register(600)
						if ch == nil {
							t.Fatal("REGISTER was not challenged")
						}
						siptest.AssertStatus(t, ch, 401, "Unauthorized")
						assertBinding(t, ok, a.Contact(), 600)
						assertRegistered(t, e, a, 600)
					})
					t.Run("wrong-password-401-again", func(t *testing.T) {
						c := e.ua(t, proto, "carol")
						r := c.RegisterRequest(600)
						c.Send(r)
						ch := c.ExpectFinal(r)
						siptest.AssertStatus(t, ch, 401, "Unauthorized")
						r = c.Authorize(r, ch, func(cr *siptest.Credentials) { cr.Password += "x" })
						c.Send(r)
						siptest.AssertStatus(t, c.ExpectFinal(r), 401, "Unauthorized")
						if n := e.count(t, "SELECT count(*) FROM location WHERE username = ?", c.User); n != 0 {
							t.Errorf("%d location rows for carol", n)
						}
					})
					t.Run("call-accounted", func(t *testing.T) {
						a, b := e.ua(t, proto, "alice"), e.ua(t, proto, "bob")
						e.register(t, a, b)
						c := e.establish(t, a, b)
						e.hangup(t, a, b, c)
						e.waitCount(t, 2, "SELECT count(*) FROM acc WHERE callid = ? AND sip_code = '200' AND src_user = ? AND dst_user = ?",
							c.inv.CallID, a.User, b.User)
					})
				})
			}
		})
	}
}
