// Package corex is the part of Kamailio's corex module that needs nothing
// beyond the current message: has_ruri_user, has_user_agent,
// is_faked_msg, file_read and file_write.
package corex

import (
	"os"
	"strings"

	"github.com/kemigo/kemigo/core/modules/siputils"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/core/val"
)

// Module is the corex module.
type Module struct {
	cfg Config
}

// New returns the module.
func New(cfg Config) *Module { return &Module{cfg: cfg} }

// HasRURIUser returns 1 if the current R-URI ($ru, the rewritten one when
// set) parses and has a user part, else -1 (always -1 for replies).
func HasRURIUser(m *sipmsg.Msg) int {
	if siputils.RURIHasUser(m) {
		return 1
	}
	return -1
}

// HasUserAgent returns 1 if the first User-Agent header has a non-empty
// body, else -1.
func HasUserAgent(m *sipmsg.Msg) int {
	if v, ok := m.HeaderValue("user-agent"); ok && strings.TrimSpace(v) != "" {
		return 1
	}
	return -1
}

// IsFakedMsg returns 1 for the dummy message used outside routes, else -1.
func IsFakedMsg(m *sipmsg.Msg) int {
	if m.Faked {
		return 1
	}
	return -1
}

// FileRead returns the whole content of the file, or null when it cannot
// be read.
func FileRead(name string) val.Value {
	b, err := os.ReadFile(name)
	if err != nil {
		return val.NullValue
	}
	return val.OfStr(string(b))
}

// FileWrite replaces the content of the file (created with mode 0644)
// with data: 1, or -1 when the file cannot be opened.
func FileWrite(name, data string) int {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return -1
	}
	_, _ = f.WriteString(data) // as Kamailio, a short write still returns 1
	if err := f.Close(); err != nil {
		return -1
	}
	return 1
}
