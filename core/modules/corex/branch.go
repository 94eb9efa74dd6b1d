package corex

import (
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/sipmsg"
)

// AppendBranch adds a branch to the destination set (Kamailio's
// append_branch): with no uri, the current R-URI; q is "0.5" style
// or "" for none. Returns 1, or -1 for a bad URI or a reply.
func AppendBranch(m *sipmsg.Msg, uri, q string) int {
	if m.Req == nil {
		return -1
	}
	// As Kamailio's append_branch: the new branch takes the current $du,
	// path, branch flags and forced socket along with the URI.
	b := sipmsg.Branch{URI: uri, Q: -1, Flags: m.BFlags, DstURI: m.DstURI, Path: m.Path, Socket: m.SendSock}
	if uri == "" {
		b.URI = m.RURI()
	} else {
		var u sip.Uri
		if err := sip.ParseUri(uri, &u); err != nil {
			return -1
		}
	}
	if q != "" {
		f, err := strconv.ParseFloat(strings.TrimSpace(q), 64)
		if err != nil || f < 0 || f > 1 {
			return -1
		}
		b.Q = int(f*1000 + 0.5)
	}
	m.AppendBranch(b)
	return 1
}
