// Package examples holds kemigo's own example route scripts (see
// README.md); its test runs them in an in-process proxy and checks their
// replies on the wire over UDP and TCP. There is no Go API here.
package examples
