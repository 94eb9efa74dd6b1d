package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/kemigo/kemigo/core/config"
	"github.com/kemigo/kemigo/core/db"
	"github.com/kemigo/kemigo/core/modules/auth_db"
	_ "github.com/kemigo/kemigo/core/proxy" // every module registers its tables
)

// dbURL picks the database: --db, else the config's [auth_db] db_url.
func dbURL(fs *flag.FlagSet, args []string) (string, []string, error) {
	url := fs.String("db", "", "db_url (sqlite:///path, postgres://..., mysql://...)")
	cfgFile := fs.String("c", "", "TOML config file (its [auth_db] db_url)")
	if err := fs.Parse(flagsFirst(args)); err != nil {
		return "", nil, err
	}
	if *url != "" {
		return *url, fs.Args(), nil
	}
	cfg := config.Default()
	if *cfgFile != "" {
		var err error
		if cfg, err = config.Load(*cfgFile); err != nil {
			return "", nil, err
		}
	}
	return cfg.AuthDB.DBURL, fs.Args(), nil
}

func openDB(url string) (*db.DB, error) {
	if p, ok := strings.CutPrefix(url, "sqlite://"); ok && p != ":memory:" {
		if i := strings.LastIndexByte(p, '/'); i > 0 {
			_ = os.MkdirAll(p[:i], 0o750)
		}
	}
	return db.Open(url)
}

// cmdDB: kemigo db init — creates Kamailio's tables (as kamdbctl create).
func cmdDB(args []string) error {
	if len(args) == 0 || args[0] != "init" {
		return errors.New("usage: kemigo db init [--db URL | -c kemigo.toml]")
	}
	url, _, err := dbURL(flag.NewFlagSet("db init", flag.ContinueOnError), args[1:])
	if err != nil {
		return err
	}
	d, err := openDB(url)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Init(); err != nil {
		return err
	}
	var names []string
	for _, t := range db.Tables() {
		names = append(names, t.Name)
	}
	fmt.Printf("%s: tables ready: version, %s\n", url, strings.Join(names, ", "))
	return nil
}

// cmdUser: kemigo user add|rm|passwd|list (as kamctl add/rm/passwd).
func cmdUser(args []string) error {
	usage := errors.New("usage: kemigo user add USER@DOMAIN PASSWORD | rm USER@DOMAIN | passwd USER@DOMAIN PASSWORD | list  [--db URL | -c kemigo.toml]")
	if len(args) == 0 {
		return usage
	}
	op := args[0]
	url, rest, err := dbURL(flag.NewFlagSet("user", flag.ContinueOnError), args[1:])
	if err != nil {
		return err
	}
	d, err := openDB(url)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Init(); err != nil {
		return err
	}
	switch {
	case op == "add" && len(rest) == 2:
		if err := auth_db.AddUser(d, rest[0], rest[1]); err != nil {
			return err
		}
		fmt.Printf("added %s\n", rest[0])
	case op == "rm" && len(rest) == 1:
		if err := auth_db.RemoveUser(d, rest[0]); err != nil {
			return err
		}
		fmt.Printf("removed %s\n", rest[0])
	case op == "passwd" && len(rest) == 2:
		if err := auth_db.SetPassword(d, rest[0], rest[1]); err != nil {
			return err
		}
		fmt.Printf("password changed for %s\n", rest[0])
	case op == "list" && len(rest) == 0:
		users, err := auth_db.ListUsers(d)
		if err != nil {
			return err
		}
		for _, u := range users {
			fmt.Printf("%s@%s\n", u.Username, u.Domain)
		}
	default:
		return usage
	}
	return nil
}

// flagsFirst moves "-x value" pairs before the positional arguments, so
// `kemigo user add alice@example.com secret --db URL` parses.
func flagsFirst(args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			flags = append(flags, a)
			if !strings.Contains(a, "=") && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
}
