package rpc

import (
	"errors"
	"fmt"
	"net"
	"strings"
)

// Default listen addresses.
const (
	DefaultSocket = "/run/kemigo/kemigo.sock"
	DefaultHTTP   = "127.0.0.1:5071"
)

// Config is the [jsonrpcs] section (after Kamailio's jsonrpcs module).
type Config struct {
	// Socket is the path of the unix stream socket ("" disables it). Its
	// directory is created (0750) and the socket is made 0660: file
	// permissions are its only access control.
	Socket string `toml:"socket"`
	// HTTP is the host:port of the HTTP listener taking JSON-RPC POSTs on
	// / and /RPC ("" disables it). It must be a loopback address unless
	// AllowRemote is set.
	HTTP string `toml:"http"`
	// Token, when set, is required on every HTTP request as
	// "Authorization: Bearer <token>" (401 otherwise).
	Token string `toml:"token"`
	// AllowRemote permits a non-loopback HTTP address; it requires Token.
	AllowRemote bool `toml:"allow_remote"`
}

// DefaultConfig returns the unix socket /run/kemigo/kemigo.sock and HTTP on
// 127.0.0.1:5071 without a token.
func DefaultConfig() Config {
	return Config{Socket: DefaultSocket, HTTP: DefaultHTTP}
}

// Validate checks the HTTP address: a loopback host unless allow_remote,
// and a token whenever allow_remote is set.
func (c Config) Validate() error {
	if c.HTTP == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(c.HTTP)
	if err != nil {
		return fmt.Errorf("jsonrpcs http %q: %w", c.HTTP, err)
	}
	if port == "" {
		return fmt.Errorf("jsonrpcs http %q: missing port", c.HTTP)
	}
	if c.AllowRemote {
		if c.Token == "" {
			return errors.New("jsonrpcs: allow_remote requires a token")
		}
		return nil
	}
	if !IsLoopbackHost(host) {
		return fmt.Errorf("jsonrpcs http %q: not a loopback address (set allow_remote = true and a token to listen on it)", c.HTTP)
	}
	return nil
}

// IsLoopbackHost reports whether host (no port) is "localhost" or a
// loopback IP. An empty host (all interfaces) is not.
func IsLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	if i := strings.IndexByte(host, '%'); i >= 0 { // zone
		host = host[:i]
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
