// Package maxfwd is Kamailio's maxfwd module: Max-Forwards processing.
//
// Kamailio rewrites the digits of the received Max-Forwards header in the
// message buffer, so the decrement is on the forwarded request at once.
// kemigo does the same on the parsed sipgo request: the *sip.MaxForwardsHeader
// is changed in place (sipgo clones share it, so every copy sent on carries
// the new value), and a missing header is added at the top of the header
// list of the request itself rather than queued as a header edit.
package maxfwd

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/sipmsg"
)

// Module is the maxfwd module.
type Module struct {
	cfg Config
}

// New returns the module. max_limit outside 0..255 is an error, as for
// Kamailio's cfg variable.
func New(cfg Config) (*Module, error) {
	if cfg.MaxLimit < 0 || cfg.MaxLimit > 255 {
		return nil, fmt.Errorf("maxfwd: max_limit %d out of range 0..255", cfg.MaxLimit)
	}
	return &Module{cfg: cfg}, nil
}

// present finds the first Max-Forwards header and its value the way
// is_maxfwd_present does: the index of the header in the header list and
// its value, or -1 when absent and -2 when the value is not a number of
// at most five digits (Kamailio's str2s, which wraps at 65536).
func present(m *sipmsg.Msg) (idx int, value int) {
	for i, h := range m.AllHeaders() {
		if !sipmsg.HeaderMatches(h, "max-forwards") {
			continue
		}
		var n uint64
		if mf, ok := h.(*sip.MaxForwardsHeader); ok {
			n = uint64(*mf)
		} else {
			s := strings.TrimSpace(h.Value())
			if s == "" || len(s) > 5 {
				return i, -2
			}
			v, err := strconv.ParseUint(s, 10, 32)
			if err != nil {
				return i, -2
			}
			n = v
		}
		if n > 99999 {
			return i, -2
		}
		return i, int(n % 65536)
	}
	return -1, -1
}

// setValue writes v into the Max-Forwards header at idx.
func setValue(m *sipmsg.Msg, idx, v int) {
	hs := m.AllHeaders()
	if mf, ok := hs[idx].(*sip.MaxForwardsHeader); ok {
		*mf = sip.MaxForwardsHeader(v)
		return
	}
	// A Max-Forwards added as a generic header: replace it by a typed one
	// at the same place (the slice is the message's own header list).
	nh := sip.MaxForwardsHeader(v)
	hs[idx] = &nh
}

// ProcessMaxfwd is process_maxfwd(limit): with no Max-Forwards header one
// is added with value limit (2); a value of 0 gives -1; otherwise the
// value, capped at max_limit+1, is decremented in place (1). -2 when the
// header value is not a number; -1 when limit is outside 0..255.
func (mod *Module) ProcessMaxfwd(m *sipmsg.Msg, limit int) int {
	if limit < 0 || limit > 255 {
		return -1
	}
	idx, v := present(m)
	switch {
	case v == -1:
		nh := sip.MaxForwardsHeader(limit)
		m.SIP().PrependHeader(&nh)
		return 2
	case v == -2:
		return -2
	case v == 0:
		return -1
	}
	if v > mod.cfg.MaxLimit {
		v = mod.cfg.MaxLimit + 1
	}
	setValue(m, idx, v-1)
	return 1
}

// IsMaxfwdLt is is_maxfwd_lt(limit): 1 if the Max-Forwards value is lower
// than limit, -1 if not (or limit is outside 0..255), -2 when there is no
// header, -3 when its value is not a number.
func IsMaxfwdLt(m *sipmsg.Msg, limit int) int {
	if limit < 0 || limit > 255 {
		return -1
	}
	_, v := present(m)
	if v < 0 {
		return v - 1
	}
	if v >= limit {
		return -1
	}
	return 1
}
