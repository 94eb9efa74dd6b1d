package registrar

import (
	"strconv"
	"strings"

	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/modules/usrloc"
	"github.com/kemigo/kemigo/core/sipmsg"
)

// save flags (registrar.h REG_SAVE_*).
const (
	SaveMemOnly     = 0x01 // keep the bindings in memory only
	SaveNoReply     = 0x02 // send no reply
	SaveSingle      = 0x04 // one contact per AoR: the new one replaces the others
	SaveNoVariation = 0x08 // no expires_range / default_expires_range
	SavePrepReply   = 0x10 // with 0x02: prepare the reply headers only
)

// Save is save(table, flags[, uri]): it processes the REGISTER (or a
// reply, in a reply route) and updates the bindings of the AoR of the To
// URI (or of uri), then sends the reply in a request or failure route
// unless flag 0x02 is set. It returns 1 (inserted), 2 (updated), 3
// (deleted), 4 (bindings only returned), -1 (error, error reply sent in a
// request route) or -2 (too many contacts).
func (m *Module) Save(c *kemi.Ctx, table string, flags int, uri string) int {
	msg := c.Msg
	if uri == "" {
		to := msg.SIP().To()
		if to == nil {
			c.Log.Error().Msg("registrar: failed to extract Address Of Record (no To)")
			return -1
		}
		uri = to.Address.String()
	}
	aor, pu, rc := m.extractAOR(uri)
	if rc != rFine {
		c.Log.Error().Str("uri", uri).Str("error", errorInfo[rc]).Msg("registrar: failed to extract Address Of Record")
		return -1
	}
	d := m.ul.Domain(table)
	st := state(msg)
	*st = msgState{qOverride: st.qOverride, hasQ: st.hasQ}

	s := &saveCtx{m: m, c: c, msg: msg, st: st, now: m.ul.Now(),
		memOnly: flags&SaveMemOnly != 0, novariation: flags&SaveNoVariation != 0}
	ret, err := s.run(d, aor, pu.Host, flags&SaveSingle != 0)
	if err == nil {
		m.accepted.Add(1)
		if flags&SaveNoReply == 0 {
			if c.Route == kemi.RouteRequest || c.Route == kemi.RouteFailure {
				if err := m.sendReply(c, st); err != nil {
					c.Log.Error().Err(err).Msg("registrar: failed to send the reply")
					return -1
				}
			}
		} else if flags&SavePrepReply != 0 {
			m.replyHeaders(msg, st)
		}
		st.pathVec = ""
		return ret
	}
	st.rerrno = asRerrno(err, rULGetR)
	m.rejected.Add(1)
	c.Log.Info().Str("aor", aor).Str("error", errorInfo[st.rerrno]).Msg("registrar: REGISTER rejected")
	if c.Route == kemi.RouteRequest && flags&SaveNoReply == 0 {
		if err := m.sendReply(c, st); err != nil {
			c.Log.Error().Err(err).Msg("registrar: failed to send the error reply")
		}
	}
	if st.rerrno == rTooMany {
		return -2
	}
	return -1
}

// saveCtx is one save call.
type saveCtx struct {
	m           *Module
	c           *kemi.Ctx
	msg         *sipmsg.Msg
	st          *msgState
	now         int64
	memOnly     bool
	novariation bool

	hdrExp      int64
	hdrExpValid bool

	base     usrloc.Contact // message-level part (pack_ci with a message)
	hasPath  bool
	pathRcv  string
	allowed  uint32
	rcvAVP   string
	prepared bool
}

func (s *saveCtx) run(d *usrloc.Domain, aor, host string, single bool) (int, error) {
	msg := s.msg
	// parse_message
	if msg.CallID() == "" {
		return 0, regError(rCIDMiss)
	}
	if msg.SIP().CSeq() == nil {
		return 0, regError(rCSMiss)
	}
	if v, ok := msg.HeaderValue("expires"); ok {
		v = strings.TrimSpace(v)
		if v == "" {
			return 0, regError(rParseExp)
		}
		s.hdrExp, s.hdrExpValid = parseExpiresHF(v)
	}
	contacts, err := msgContacts(msg)
	if err != nil {
		return 0, regError(rParseCont)
	}
	// check_contacts
	star := false
	if len(contacts) > 0 && contacts[0].star {
		if !s.hdrExpValid || s.hdrExp != 0 {
			return 0, regError(rStarExp)
		}
		if len(contacts) > 1 {
			return 0, regError(rStarCont)
		}
		star = true
	} else {
		for _, rc := range contacts {
			if rc.star {
				return 0, regError(rStarCont)
			}
			if len(rc.uri) > s.m.cfg.ContactMaxSize || len(rc.received) > receivedMaxSize {
				return 0, regError(rContactLen)
			}
		}
	}
	// outbound is not supported (outbound_mode 0)
	if tags, ok := optionTags(msg, "require"); ok && tags["outbound"] {
		return 0, regError(rOBReqd)
	}

	if star {
		var left []usrloc.Contact
		err := d.Update(aor, func(r *usrloc.Record) error {
			if err := r.DeleteAllAs(s.memOnly); err != nil {
				left = r.Snapshot()
				return regError(rULDelR)
			}
			return nil
		})
		if err != nil {
			s.st.contact = s.m.buildContact(msg, left, host, s.now)
			return 0, err
		}
		return 3, nil
	}
	if len(contacts) == 0 {
		cs, _ := d.Get(aor)
		s.st.contact = s.m.buildContact(msg, cs, host, s.now)
		return 4, nil
	}
	ret := 0
	err = d.Update(aor, func(r *usrloc.Record) error {
		if len(r.Contacts()) == 0 {
			if err := s.insert(r, contacts); err != nil {
				return err
			}
			ret = 1
		} else {
			rc, err := s.update(r, contacts, single)
			if err != nil {
				s.st.contact = s.m.buildContact(msg, r.Snapshot(), host, s.now)
				return err
			}
			ret = rc
		}
		s.st.contact = s.m.buildContact(msg, r.Snapshot(), host, s.now)
		return nil
	})
	if err != nil {
		return 0, err
	}
	if ret == 0 {
		ret = 1
	}
	return ret, nil
}

// parseExpiresHF parses an Expires body as Kamailio's parse_expires: digits
// (up to ten) are valid, anything else makes the header count as absent.
func parseExpiresHF(v string) (int64, bool) {
	if len(v) > 10 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= '0' && c <= '9':
			n = n*10 + int64(c-'0')
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			return n, true
		default:
			return 0, false
		}
	}
	return n, true
}

// prepare fills the message-level part of the contact info (Call-ID, CSeq,
// socket, TCP connection, User-Agent, Path, flags, branch flags).
func (s *saveCtx) prepare() error {
	if s.prepared {
		return nil
	}
	s.prepared = true
	msg, cfg := s.msg, s.m.cfg
	callid := strings.TrimRight(msg.CallID(), " \t\r\n")
	if len(callid) > callidMaxSize {
		return regError(rCallIDLen)
	}
	b := usrloc.Contact{CallID: callid, CSeq: int(msg.SIP().CSeq().SeqNo), LastModified: s.now, CFlags: msg.BFlags}
	if s.memOnly {
		b.Flags = usrloc.FlagMem
	}
	if cfg.SockFlag >= 0 && cfg.SockHdrName != "" && msg.IsFlagSet(cfg.SockFlag) {
		if v, ok := msg.HeaderExact(cfg.SockHdrName); ok {
			if sock, ok := parseSocket(v); ok {
				b.Socket = sock
			} else {
				s.c.Log.Error().Str("socket", v).Msg("registrar: bad socket in header")
			}
		}
	}
	if b.Socket == "" {
		b.Socket = msgSocket(msg)
	}
	if isStream(msg.Proto) {
		b.ConnID = msg.ConnID
	}
	if ua, ok := msg.HeaderValue("user-agent"); ok && len(ua) > 0 && len(ua) < maxUASize {
		b.UserAgent = ua
	} else {
		b.UserAgent = "n/a"
	}
	if cfg.UsePath != 0 {
		var bodies []string
		for _, h := range msg.Headers("path") {
			bodies = append(bodies, h.Value())
		}
		if vec := strings.Join(bodies, ","); vec != "" {
			first := pathDstURI(vec)
			pu, err := parseURI(first)
			if err != nil {
				return regError(rParsePath)
			}
			if _, ok := pu.Param("lr"); !ok {
				s.c.Log.Error().Msg("registrar: first Path URI is not a loose-router, not supported")
				return regError(rParsePath)
			}
			if cfg.PathUseReceived != 0 {
				if p, ok := pu.Param("received"); ok && p.Value != "" {
					rcv, ok := unescape(p.Value)
					if !ok {
						return regError(rParsePath)
					}
					s.pathRcv = rcv
				}
			}
			b.Path, s.hasPath = vec, true
			if cfg.PathMode != pathOff {
				s.st.pathVec = vec
			}
		}
	}
	if s.pathRcv != "" {
		b.CFlags |= s.m.ul.NATFlag()
		b.Received = s.pathRcv
	}
	s.allowed = usrloc.AllMethods
	if hs := msg.Headers("allow"); len(hs) > 0 {
		var all uint32
		ok := true
		for _, h := range hs {
			v, good := parseMethods(h.Value())
			if !good {
				ok = false
				break
			}
			all |= v
		}
		if ok {
			s.allowed = all
		}
	}
	if s.m.rcvAVP != "" {
		if vs := msg.AVP(s.m.rcvAVP); len(vs) > 0 && vs[0].String() != "" && !vs[0].IsNull() {
			s.rcvAVP = vs[0].String()
			if len(s.rcvAVP) > receivedMaxSize {
				return regError(rContactLen)
			}
		}
	}
	s.base = b
	return nil
}

// info builds the contact info of one contact (pack_ci with a contact).
func (s *saveCtx) info(rc regContact, expires int64) (usrloc.Contact, error) {
	if err := s.prepare(); err != nil {
		return usrloc.Contact{}, err
	}
	ci := s.base
	ci.URI = rc.uri
	switch {
	case s.st.hasQ:
		ci.Q = s.st.qOverride
	case !rc.hasQ:
		ci.Q = s.m.cfg.DefaultQ
	default:
		q, err := str2q(rc.q)
		if err != nil {
			return ci, regError(rInvQ)
		}
		ci.Q = q
	}
	ci.Expires = expires
	if rc.hasMeth {
		v, ok := parseMethods(rc.methods)
		if !ok {
			return ci, regError(rParse)
		}
		ci.Methods = v
	} else {
		ci.Methods = s.allowed
	}
	if ci.Received == "" {
		if rc.received != "" {
			ci.Received = rc.received
		} else {
			ci.Received = s.rcvAVP
		}
	}
	if rc.instance != "" {
		ci.Instance = rc.instance
		if rc.regID != "" {
			v, err := strconv.ParseUint(rc.regID, 10, 32)
			if err != nil || v == 0 {
				return ci, regError(rInvRegID)
			}
			ci.RegID = uint32(v)
		}
	}
	ci.RUID = s.m.ul.NewRUID()
	return ci, nil
}

// expires computes the absolute expiry of a contact (calc_contact_expires):
// its expires param, else the Expires header, else default_expires; a
// value under min_expires is raised to it (or rejected with
// min_expires_mode), randomly reduced by the expires ranges unless
// no-variation, capped at max_expires. 0 means remove.
func (s *saveCtx) expires(rc regContact) (int64, error) {
	cfg := s.m.cfg
	var e int64
	rng := 0
	if rc.expires == "" {
		if s.hdrExpValid {
			e, rng = s.hdrExp, cfg.ExpiresRange
		} else {
			e, rng = int64(cfg.DefaultExpires), cfg.DefaultExpiresRange
		}
	} else if v, err := strconv.ParseUint(rc.expires, 10, 32); err == nil {
		e, rng = int64(v), cfg.ExpiresRange
	} else {
		e, rng = int64(cfg.DefaultExpires), cfg.DefaultExpiresRange
	}
	if e == 0 {
		return 0, nil
	}
	lo := int64(cfg.MinExpires)
	if e < lo {
		if cfg.MinExpiresMode != 0 {
			return 0, regError(rLowExp)
		}
		e = lo
	}
	if !s.novariation && rng > 0 {
		rmin := e - int64(float64(rng)/100*float64(e))
		e = rmin + int64(float64(s.m.rnd()%100)/100*float64(e-rmin))
		if e < lo {
			e = lo
		}
	}
	if cfg.MaxExpires > 0 && e > int64(cfg.MaxExpires) {
		e = int64(cfg.MaxExpires)
	}
	return e + s.now, nil
}

// insert handles an AoR without bindings (insert_contacts): every contact
// with a non-zero expires is added; on an error nothing is kept.
func (s *saveCtx) insert(r *usrloc.Record, contacts []regContact) error {
	maxc := s.m.cfg.MaxContacts
	num := 0
	fail := func(err error) error {
		r.DeleteAllAs(s.memOnly)
		return err
	}
	for _, mc := range contacts {
		e, err := s.expires(mc)
		if err != nil {
			return fail(err)
		}
		if e == 0 {
			continue
		}
		if maxc > 0 && num >= maxc {
			s.c.Log.Info().Int("max", maxc).Str("aor", r.AOR()).Msg("registrar: too many contacts")
			return fail(regError(rTooMany))
		}
		num++
		ci, err := s.info(mc, e)
		if err != nil {
			return fail(err)
		}
		// several contacts with the same address in one REGISTER: the
		// later one updates the earlier (Kamailio's CSeq+1 lookup)
		var c *usrloc.Contact
		res := 1
		if len(r.Contacts()) > 0 {
			c, res = r.FindByInstance(ci.URI, ci.CallID, ci.Path, s.hasPath, ci.CSeq+1, ci.Instance, ci.RegID)
		}
		if res != 0 {
			if _, err := r.Insert(ci); err != nil {
				s.c.Log.Error().Err(err).Msg("registrar: failed to insert contact")
				return fail(regError(rULInsC))
			}
		} else if err := r.Set(c, updated(c, ci)); err != nil {
			s.c.Log.Error().Err(err).Msg("registrar: failed to update contact")
			return fail(regError(rULUpdC))
		}
	}
	return nil
}

// updated is the contact c after an update with ci (mem_update_ucontact):
// the address changes only when the REGISTER has a +sip.instance; the
// instance, reg-id, server id and keepalive stay.
func updated(c *usrloc.Contact, ci usrloc.Contact) usrloc.Contact {
	n := ci
	if ci.Instance == "" {
		n.URI = c.URI
	}
	if n.CallID == "" {
		n.CallID = c.CallID
	}
	n.Instance, n.RegID, n.ServerID, n.Keepalive = c.Instance, c.RegID, c.ServerID, c.Keepalive
	return n
}

// update handles an AoR with bindings (update_contacts): new contacts
// are inserted, known ones refreshed, those with expires 0 deleted. It
// returns the code of the last change: 1 insert, 2 update, 3 delete, 0
// none.
func (s *saveCtx) update(r *usrloc.Record, contacts []regContact, single bool) (int, error) {
	if err := s.prepare(); err != nil {
		return 0, err
	}
	if maxc := s.m.cfg.MaxContacts; !single && maxc > 0 {
		if err := s.testMaxContacts(r, contacts, maxc); err != nil {
			return 0, err
		}
	}
	rc := 0
	deleteOthers := func(keep *usrloc.Contact, same func(c *usrloc.Contact) bool) error {
		for _, o := range append([]*usrloc.Contact(nil), r.Contacts()...) {
			if o != keep && same(o) {
				if err := r.Delete(o); err != nil {
					return err
				}
			}
		}
		return nil
	}
	all := func(*usrloc.Contact) bool { return true }
	for _, mc := range contacts {
		e, err := s.expires(mc)
		if err != nil {
			return rc, err
		}
		ci, err := s.info(mc, e)
		if err != nil {
			return rc, err
		}
		c, res := r.FindByInstance(ci.URI, ci.CallID, ci.Path, s.hasPath, ci.CSeq, ci.Instance, ci.RegID)
		done := false
		switch {
		case res == -1:
			s.c.Log.Error().Str("aor", r.AOR()).Msg("registrar: invalid cseq")
			return rc, regError(rInvCSeq)
		case res == -2: // retransmission
			if e != 0 && single {
				return rc, nil
			}
			continue
		case res > 0: // not found
			if e == 0 {
				continue
			}
			nc, err := r.Insert(ci)
			if err != nil {
				s.c.Log.Error().Err(err).Msg("registrar: failed to insert contact")
				return rc, regError(rULInsC)
			}
			rc = 1
			if single {
				if err := deleteOthers(nc, all); err != nil {
					return rc, regError(rULDelC)
				}
				done = true
			}
		case e == 0:
			if err := r.DeleteAs(c, s.memOnly); err != nil {
				s.c.Log.Error().Err(err).Msg("registrar: failed to delete contact")
				return rc, regError(rULDelC)
			}
			rc = 3
		default:
			if single {
				if err := deleteOthers(c, all); err != nil {
					return rc, regError(rULDelC)
				}
				done = true
			}
			// a new Call-ID for an instance: its other bindings go
			if ci.Instance != "" && ci.CallID != c.CallID {
				inst := c.Instance
				if err := deleteOthers(c, func(o *usrloc.Contact) bool { return o.Instance == inst }); err != nil {
					return rc, regError(rULDelC)
				}
				done = true
			}
			if err := r.Set(c, updated(c, ci)); err != nil {
				s.c.Log.Error().Err(err).Msg("registrar: failed to update contact")
				return rc, regError(rULUpdC)
			}
			rc = 2
		}
		if done {
			break
		}
	}
	return rc, nil
}

// testMaxContacts counts the valid bindings the AoR would have after the
// REGISTER and fails with rTooMany above max.
func (s *saveCtx) testMaxContacts(r *usrloc.Record, contacts []regContact, max int) error {
	num := 0
	for _, c := range r.Contacts() {
		if c.Valid(s.now) {
			num++
		}
	}
	for _, mc := range contacts {
		e, err := s.expires(mc)
		if err != nil {
			return err
		}
		inst, regID := mc.instance, uint32(0)
		if inst != "" && mc.regID != "" {
			if v, err := strconv.ParseUint(mc.regID, 10, 32); err == nil {
				regID = uint32(v)
			}
		}
		_, res := r.FindByInstance(mc.uri, s.base.CallID, s.base.Path, s.hasPath, s.base.CSeq, inst, regID)
		switch {
		case res == -1:
			return regError(rInvCSeq)
		case res == -2:
			continue
		case res > 0:
			if e != 0 {
				num++
			}
		default:
			if e == 0 {
				num--
			}
		}
	}
	if num > max {
		s.c.Log.Info().Int("n", num).Int("max", max).Str("aor", r.AOR()).Msg("registrar: too many contacts")
		return regError(rTooMany)
	}
	return nil
}
