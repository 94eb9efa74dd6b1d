package sipmsg

// Branch is one extra target of the destination set (Kamailio's dset):
// registrar.lookup and append_branch add them; tm.t_relay forks to the
// R-URI (branch 0, from Msg fields) plus every Branch.
type Branch struct {
	URI      string // request URI of the branch
	DstURI   string // next hop ($du of the branch), "" for URI
	Path     string // Path header value(s) to add as Route
	Q        int    // q value * 1000; -1 when not set
	Flags    uint32 // branch flags
	Socket   string // forced send socket "proto:ip:port", "" for default
	Instance string // +sip.instance
	RUID     string // usrloc record id
	ConnID   int64  // TCP connection the contact registered over (0: none)
}

// AppendBranch adds a branch to the destination set.
func (m *Msg) AppendBranch(b Branch) { m.Branches = append(m.Branches, b) }

// ClearBranches empties the destination set (not branch 0).
func (m *Msg) ClearBranches() { m.Branches = nil }
