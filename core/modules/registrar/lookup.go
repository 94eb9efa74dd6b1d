package registrar

import (
	"strings"

	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/modules/usrloc"
	"github.com/kemigo/kemigo/core/sipmsg"
)

// Lookup is lookup(table) / lookup_uri(table, uri) / lookup_to_dset: it
// finds the bindings of the AoR of uri (the current R-URI when ""). The
// best valid contact accepting the method becomes the R-URI (unless
// toDset): $du is set from its Path (first hop, the Path kept in
// Msg.Path) or its received address, its branch flags are added to
// Msg.BFlags, its socket forced (Msg.SendSock), the rest recorded as
// RURIInfo. The other usable contacts become branches in q order
// (append_branches); with toDset every contact becomes a branch and the
// R-URI is left alone. It returns 1, -1 (no contact), -2 (contacts exist
// but none accepts the method, method_filtering) or -3 (error).
func (m *Module) Lookup(c *kemi.Ctx, table, uri string, toDset bool) int {
	msg := c.Msg
	if uri == "" {
		uri = msg.RURI()
	}
	aor, pu, rc := m.extractAOR(uri)
	if rc != rFine {
		c.Log.Error().Str("uri", uri).Msg("registrar: failed to extract address of record")
		return -3
	}
	d := m.ul.Domain(table)
	now := m.ul.Now()

	// GRUU (RFC 5627): gr=<instance> is a public GRUU, a bare gr a
	// temporary one ("<ruid>-<aor hash>" in the user part)
	inst := ""
	gr, isGRUU := pu.Param("gr")
	var cs []usrloc.Contact
	best := -1
	ret := -1
	if isGRUU && gr.Value == "" {
		user := pu.User
		i := strings.LastIndexByte(user, '-')
		if i < 0 || !isHex(user[i+1:]) {
			c.Log.Error().Str("uri", uri).Msg("registrar: failed to extract temp gruu")
			return -3
		}
		inst = user[:i]
		ct, ok := d.ByRUID("", inst)
		if !ok {
			return -1
		}
		cs = []usrloc.Contact{ct}
		if !ct.Valid(now) {
			return -1
		}
		if !m.allowed(msg, &ct) {
			return -2
		}
		best = 0
	} else {
		if isGRUU {
			inst = gr.Value
		}
		var found bool
		cs, found = d.Get(aor)
		if !found {
			return -1
		}
		for i := range cs {
			ct := &cs[i]
			if !ct.Valid(now) {
				continue
			}
			if !m.allowed(msg, ct) {
				ret = -2
				continue
			}
			if inst != "" && trimAngle(inst) != trimAngle(ct.Instance) {
				continue
			}
			best = i
			break
		}
		if best < 0 {
			return ret
		}
	}

	next := best
	if !toDset {
		ct := &cs[best]
		if err := msg.SetRURI(ct.URI); err != nil {
			c.Log.Error().Err(err).Str("contact", ct.URI).Msg("registrar: unable to rewrite Request-URI")
			return -3
		}
		msg.DstURI = ""
		if ct.Path != "" {
			dst := pathDstURI(ct.Path)
			if dst == "" {
				c.Log.Error().Str("path", ct.Path).Msg("registrar: failed to get dst_uri for Path")
				return -3
			}
			msg.Path = ct.Path
			msg.DstURI = dst
		} else if ct.Received != "" {
			msg.DstURI = ct.Received
		}
		setRURIInfo(msg, &RURIInfo{RUID: ct.RUID, Instance: ct.Instance, RegID: ct.RegID,
			UserAgent: ct.UserAgent, Q: ct.Q, ConnID: ct.ConnID})
		msg.BFlags |= ct.CFlags
		if ct.Socket != "" {
			msg.SendSock = ct.Socket
		}
		next++
	}
	if inst != "" || m.cfg.AppendBranches == 0 {
		return 1
	}
	for i := next; i < len(cs); i++ {
		ct := &cs[i]
		if !ct.Valid(now) || !m.allowed(msg, ct) {
			continue
		}
		b := sipmsg.Branch{URI: ct.URI, Q: ct.Q, Flags: ct.CFlags, Socket: ct.Socket,
			Instance: ct.Instance, RUID: ct.RUID, ConnID: ct.ConnID, DstURI: ct.Received}
		if ct.Path != "" {
			dst := pathDstURI(ct.Path)
			if dst == "" {
				c.Log.Error().Str("path", ct.Path).Msg("registrar: failed to get dst_uri for Path")
				continue
			}
			b.DstURI, b.Path = dst, ct.Path
		}
		msg.AppendBranch(b)
	}
	return 1
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// allowed is Kamailio's allowed_method: method filtering off, the contact
// accepts the request method, or the request is in-dialog (To tag).
func (m *Module) allowed(msg *sipmsg.Msg, c *usrloc.Contact) bool {
	if m.cfg.MethodFiltering == 0 {
		return true
	}
	if methodBit(msg.Method())&c.Methods != 0 {
		return true
	}
	if to := msg.SIP().To(); to != nil {
		if t, ok := to.Params.Get("tag"); ok && t != "" {
			return true
		}
	}
	return false
}

// LookupBranches is lookup_branches(table): lookup for the R-URI, then
// for every branch that is still a bare URI (no $du, Path, socket or
// flags) a lookup of its URI, whose result replaces the branch. 1 when
// any lookup found contacts, else the last lookup's result.
func (m *Module) LookupBranches(c *kemi.Ctx, table string) int {
	msg := c.Msg
	n := len(msg.Branches)
	ret := m.Lookup(c, table, "", false)
	if n == 0 {
		return ret
	}
	found := ret > 0
	saved := struct {
		uri, du, path, sock string
		bflags              uint32
		ri                  RURIInfo
		hasRI               bool
	}{msg.NewURI, msg.DstURI, msg.Path, msg.SendSock, msg.BFlags, RURIInfo{}, false}
	saved.ri, saved.hasRI = LookupResult(msg)
	for i := 0; i < n; i++ {
		br := msg.Branches[i]
		if br.URI == "" || br.DstURI != "" || br.Path != "" || br.Socket != "" || br.Flags != 0 {
			continue
		}
		msg.DstURI, msg.Path, msg.SendSock, msg.BFlags = "", "", "", 0
		setRURIInfo(msg, nil)
		if err := msg.SetRURI(br.URI); err != nil {
			c.Log.Error().Err(err).Int("branch", i).Msg("registrar: unable to rewrite Request-URI for branch")
			ret = -3
			break
		}
		ret = m.Lookup(c, table, "", false)
		if ret > 0 {
			found = true
			ri, _ := LookupResult(msg)
			msg.Branches[i] = sipmsg.Branch{URI: msg.RURI(), DstURI: msg.DstURI, Path: msg.Path, Q: ri.Q,
				Flags: msg.BFlags, Socket: msg.SendSock, Instance: ri.Instance, RUID: ri.RUID, ConnID: ri.ConnID}
		}
	}
	if saved.uri == "" {
		msg.ResetRURI()
	} else if err := msg.SetRURI(saved.uri); err != nil {
		msg.NewURI = saved.uri
	}
	msg.DstURI, msg.Path, msg.SendSock, msg.BFlags = saved.du, saved.path, saved.sock, saved.bflags
	if saved.hasRI {
		setRURIInfo(msg, &saved.ri)
	} else {
		setRURIInfo(msg, nil)
	}
	if found {
		return 1
	}
	return ret
}

// Registered is registered(table[, uri]): 1 when the AoR of uri (the
// R-URI, or the To URI of a reply, when "") has a valid contact, else -1.
func (m *Module) Registered(c *kemi.Ctx, table, uri string) int {
	msg := c.Msg
	if uri == "" {
		if msg.IsRequest() {
			uri = msg.RURI()
		} else if to := msg.SIP().To(); to != nil {
			uri = to.Address.String()
		}
	}
	aor, _, rc := m.extractAOR(uri)
	if rc != rFine {
		c.Log.Error().Str("uri", uri).Msg("registrar: failed to extract address of record")
		return -1
	}
	cs, _ := m.ul.Domain(table).Get(aor)
	now := m.ul.Now()
	for i := range cs {
		if cs[i].Valid(now) {
			return 1
		}
	}
	return -1
}

// Unregister is unregister(table, uri[, ruid]): removes every binding of
// the AoR of uri, or only the one with ruid. 1; -1 for a bad uri; -2 when
// removing failed; -3 when the ruid is not a binding of the AoR.
func (m *Module) Unregister(c *kemi.Ctx, table, uri, ruid string) int {
	if uri == "" {
		c.Log.Error().Msg("registrar: invalid uri parameter")
		return -1
	}
	aor, _, rc := m.extractAOR(uri)
	if rc != rFine {
		c.Log.Error().Str("uri", uri).Msg("registrar: failed to extract Address Of Record")
		return -1
	}
	d := m.ul.Domain(table)
	if ruid == "" {
		if err := d.Update(aor, func(r *usrloc.Record) error { return r.DeleteAll() }); err != nil {
			c.Log.Error().Err(err).Str("aor", aor).Msg("registrar: error unregistering user")
			return -2
		}
		return 1
	}
	res := -3
	d.Update(aor, func(r *usrloc.Record) error {
		for _, ct := range r.Contacts() {
			if ct.RUID == ruid {
				res = 1
				if err := r.Delete(ct); err != nil {
					c.Log.Warn().Err(err).Msg("registrar: could not delete contact")
					res = -2
				}
				return nil
			}
		}
		return nil
	})
	if res == -3 {
		c.Log.Warn().Str("aor", aor).Str("ruid", ruid).Msg("registrar: AOR/Contact not found")
	}
	return res
}

// SetQOverride is set_q_override(q): the q every contact of the next save
// on this message gets. 1, or -1 for a bad q.
func (m *Module) SetQOverride(c *kemi.Ctx, q string) int {
	v, err := str2q(q)
	if err != nil || v < 0 || v > 1000 {
		c.Log.Error().Str("q", q).Msg("registrar: invalid q parameter")
		return -1
	}
	st := state(c.Msg)
	st.qOverride, st.hasQ = v, true
	return 1
}

// RegSendReply is reg_send_reply(): sends the reply of the last save
// (run with flag 0x02). 1, or -1 when sending failed.
func (m *Module) RegSendReply(c *kemi.Ctx) int {
	if err := m.sendReply(c, state(c.Msg)); err != nil {
		c.Log.Error().Err(err).Msg("registrar: failed to send the reply")
		return -1
	}
	return 1
}

// AddSockHdr is add_sock_hdr(name): appends "name: proto:ip:port" (the
// socket the request came in on) to the request, for a registrar behind
// this proxy (sock_hdr_name). 1, or -1.
func (m *Module) AddSockHdr(c *kemi.Ctx, name string) int {
	name = strings.TrimSpace(name)
	sock := msgSocket(c.Msg)
	if name == "" || sock == "" || !c.Msg.IsRequest() {
		return -1
	}
	c.Msg.QueueEdit(sipmsg.HeaderEdit{Op: sipmsg.EditAppend, Text: name + ": " + sock + "\r\n"})
	return 1
}
