package transport

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLSConfig is the [tls] section, named after the keys of Kamailio's
// tls.cfg (one profile for every TLS socket and outgoing connection).
type TLSConfig struct {
	// Certificate and PrivateKey are PEM files: the server certificate
	// (chain first) of the "tls:" listen sockets, also presented as
	// client certificate on the connections kemigo opens.
	Certificate string `toml:"certificate"`
	PrivateKey  string `toml:"private_key"`
	// CAList is a PEM file of CA certificates: the ones that sign the
	// client certificates accepted with require_certificate, and the
	// servers accepted with verify_certificate (else the system roots).
	CAList string `toml:"ca_list"`
	// VerifyCertificate 1 checks the certificate of the servers kemigo
	// connects to (Kamailio's default is 0: no check).
	VerifyCertificate int `toml:"verify_certificate"`
	// RequireCertificate 1 makes TLS clients present a certificate that
	// verify against ca_list.
	RequireCertificate int `toml:"require_certificate"`
	// ServerName is the SNI name and the name checked in the server's
	// certificate on outgoing connections ("" uses the destination).
	ServerName string `toml:"server_name"`
}

// Validate checks the values that do not need the files.
func (c TLSConfig) Validate() error {
	if (c.Certificate == "") != (c.PrivateKey == "") {
		return errors.New("tls: certificate and private_key go together")
	}
	if c.RequireCertificate != 0 && c.CAList == "" {
		return errors.New("tls: require_certificate needs ca_list")
	}
	return nil
}

// build returns the server configuration (nil unless server) and the
// client configuration of outgoing TLS connections.
func (c TLSConfig) build(server bool) (srv, cli *tls.Config, err error) {
	if err := c.Validate(); err != nil {
		return nil, nil, err
	}
	var certs []tls.Certificate
	if c.Certificate != "" {
		cert, err := tls.LoadX509KeyPair(c.Certificate, c.PrivateKey)
		if err != nil {
			return nil, nil, fmt.Errorf("tls: %w", err)
		}
		certs = []tls.Certificate{cert}
	} else if server {
		return nil, nil, errors.New("tls: a \"tls:\" listen socket needs [tls] certificate and private_key")
	}
	var pool *x509.CertPool
	if c.CAList != "" {
		pem, err := os.ReadFile(c.CAList)
		if err != nil {
			return nil, nil, fmt.Errorf("tls: ca_list: %w", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("tls: ca_list %s: no PEM certificate", c.CAList)
		}
	}
	cli = &tls.Config{
		MinVersion:         tls.VersionTLS12,
		Certificates:       certs,
		RootCAs:            pool,
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.VerifyCertificate == 0, // Kamailio's default; see verify_certificate
	}
	if server {
		srv = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: certs}
		if c.RequireCertificate != 0 {
			srv.ClientAuth = tls.RequireAndVerifyClientCert
			srv.ClientCAs = pool
		}
	}
	return srv, cli, nil
}
