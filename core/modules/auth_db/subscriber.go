package auth_db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/kemigo/kemigo/core/db"
	"github.com/kemigo/kemigo/core/modules/auth"
)

// Subscriber management as kamctl does it (`kamctl add/passwd/rm`),
// for `kemigo user add/passwd/rm/list`. The realm is the domain:
//
//	ha1  = MD5(user:domain:password)
//	ha1b = MD5(user@domain:domain:password)
//
// and the password is also stored in clear text (kamctl's default
// STORE_PLAINTEXT_PW=1), which calculate_ha1 = 1 needs, and which is the
// only way to authenticate SHA-256 credentials with this schema.

// Errors of the subscriber API.
var (
	ErrUserExists = errors.New("user already exists")
	ErrNoUser     = errors.New("no such user")
)

// Subscriber is one row of the subscriber table.
type Subscriber struct {
	ID       int64
	Username string
	Domain   string
	Password string
	HA1      string
	HA1B     string
}

// SplitUser splits "alice@example.com" (a "sip:"/"sips:" prefix is
// allowed) into user and domain.
func SplitUser(uri string) (user, domain string, err error) {
	s := strings.TrimSpace(uri)
	for _, p := range []string{"sip:", "sips:"} {
		if len(s) > len(p) && strings.EqualFold(s[:len(p)], p) {
			s = s[len(p):]
		}
	}
	user, domain, ok := strings.Cut(s, "@")
	if !ok || user == "" || domain == "" || strings.ContainsAny(user, ":@ ") || strings.ContainsAny(domain, "@ ;") {
		return "", "", fmt.Errorf("%q: want user@domain", uri)
	}
	return user, domain, nil
}

// HA1Values returns the ha1 and ha1b kamctl stores for a password.
func HA1Values(user, domain, password string) (ha1, ha1b string) {
	return auth.HA1(auth.MD5, user, domain, password), auth.HA1(auth.MD5, user+"@"+domain, domain, password)
}

func exists(ctx context.Context, d *db.DB, user, domain string) (bool, error) {
	var n int
	err := d.QueryRowContext(ctx, d.Rebind("SELECT count(*) FROM "+SubscriberTable+" WHERE username = ? AND domain = ?"), user, domain).Scan(&n)
	return n > 0, err
}

// AddUser adds a subscriber ("alice@example.com") with a password. It
// returns ErrUserExists when the user is there already.
func AddUser(d *db.DB, uri, password string) error {
	user, domain, err := SplitUser(uri)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	if ok, err := exists(ctx, d, user, domain); err != nil {
		return err
	} else if ok {
		return fmt.Errorf("%s@%s: %w", user, domain, ErrUserExists)
	}
	ha1, ha1b := HA1Values(user, domain, password)
	_, err = d.ExecContext(ctx, d.Rebind("INSERT INTO "+SubscriberTable+" (username, domain, password, ha1, ha1b) VALUES (?, ?, ?, ?, ?)"),
		user, domain, password, ha1, ha1b)
	return err
}

// SetPassword changes a subscriber's password (kamctl passwd).
func SetPassword(d *db.DB, uri, password string) error {
	user, domain, err := SplitUser(uri)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	ha1, ha1b := HA1Values(user, domain, password)
	res, err := d.ExecContext(ctx, d.Rebind("UPDATE "+SubscriberTable+" SET password = ?, ha1 = ?, ha1b = ? WHERE username = ? AND domain = ?"),
		password, ha1, ha1b, user, domain)
	if err != nil {
		return err
	}
	return affected(res, user, domain)
}

// RemoveUser deletes a subscriber. It returns ErrNoUser when there is
// none. (kamctl also drops the user's aliases and contacts; the CLI does
// that through the modules owning those tables.)
func RemoveUser(d *db.DB, uri string) error {
	user, domain, err := SplitUser(uri)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	res, err := d.ExecContext(ctx, d.Rebind("DELETE FROM "+SubscriberTable+" WHERE username = ? AND domain = ?"), user, domain)
	if err != nil {
		return err
	}
	return affected(res, user, domain)
}

type rowsAffected interface{ RowsAffected() (int64, error) }

func affected(res rowsAffected, user, domain string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%s@%s: %w", user, domain, ErrNoUser)
	}
	return nil
}

const subscriberCols = "id, username, domain, password, ha1, ha1b"

// GetUser reads one subscriber.
func GetUser(d *db.DB, uri string) (Subscriber, error) {
	user, domain, err := SplitUser(uri)
	if err != nil {
		return Subscriber{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	var s Subscriber
	err = d.QueryRowContext(ctx, d.Rebind("SELECT "+subscriberCols+" FROM "+SubscriberTable+" WHERE username = ? AND domain = ?"), user, domain).
		Scan(&s.ID, &s.Username, &s.Domain, &s.Password, &s.HA1, &s.HA1B)
	if errors.Is(err, sql.ErrNoRows) {
		return s, fmt.Errorf("%s@%s: %w", user, domain, ErrNoUser)
	}
	return s, err
}

// ListUsers returns every subscriber, ordered by domain and username.
func ListUsers(d *db.DB) ([]Subscriber, error) {
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	rows, err := d.QueryContext(ctx, "SELECT "+subscriberCols+" FROM "+SubscriberTable+" ORDER BY domain, username")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Subscriber
	for rows.Next() {
		var s Subscriber
		if err := rows.Scan(&s.ID, &s.Username, &s.Domain, &s.Password, &s.HA1, &s.HA1B); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
