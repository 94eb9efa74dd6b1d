package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strconv"
	"sync/atomic"

	"github.com/kemigo/kemigo/core/sipmsg"
)

// A nonce is base64url (no padding) of:
//
//	expire(4) since(4) nid(4) flags(1) random(8) mac1(16) [mac2(16)]
//
// with the times in Unix seconds (big endian), nid the nonce id used by
// the nonce-count and one-time-nonce tables, flags telling which of those
// tables track it, mac1 = HMAC-SHA256(secret1, the first 21 bytes) cut to
// 16 bytes and mac2 (only when auth_checks_* selects request parts for
// this kind of request) = HMAC-SHA256(secret2, the first 21 bytes and
// those parts). Kamailio uses MD5 over the same fields; the layout is
// private to one deployment, so kemigo uses an HMAC instead.
const (
	nonceFixed = 4 + 4 + 4 + 1 + 8
	macLen     = 16
	nonceShort = nonceFixed + macLen
	nonceLong  = nonceShort + macLen

	nfNC  = 0x80 // NF_VALID_NC_ID
	nfOTN = 0x40 // NF_VALID_OT_ID
)

// auth_checks_* bits.
const (
	checkFullURI = 1 << iota
	checkCallID
	checkFromTag
	checkSrcIP
)

// check_nonce results.
const (
	nonceOK        = 0
	nonceInvalid   = -1
	nonceTooShort  = 1
	nonceNoMatch   = 2
	nonceChecksBad = 3
	nonceStale     = 4
	nonceBadNC     = 5
	nonceReused    = 6
)

var nonceEnc = base64.RawURLEncoding

// authChecks is get_auth_checks: which request parts the nonce of msg is
// bound to.
func (m *Module) authChecks(msg *sipmsg.Msg) int {
	if msg == nil || msg.Req == nil {
		return 0
	}
	if msg.Req.Method == "REGISTER" {
		return m.cfg.AuthChecksRegister
	}
	if to := msg.Req.To(); to != nil {
		if tag, ok := to.Params.Get("tag"); ok && tag != "" {
			return m.cfg.AuthChecksInDlg
		}
	}
	return m.cfg.AuthChecksNoDlg
}

// checkParts is what mac2 covers for the auth_checks bits cfg.
func checkParts(cfg int, msg *sipmsg.Msg) []byte {
	var b []byte
	add := func(s string) {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	if cfg&checkFullURI != 0 {
		add(msg.RURI())
	}
	if cfg&checkCallID != 0 {
		add(msg.CallID())
	}
	if cfg&checkFromTag != 0 {
		tag := ""
		if f := msg.Req.From(); f != nil {
			tag, _ = f.Params.Get("tag")
		}
		add(tag)
	}
	if cfg&checkSrcIP != 0 {
		add(msg.SrcIP)
	}
	return b
}

func mac(secret, data, extra []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write(data)
	h.Write(extra)
	return h.Sum(nil)[:macLen]
}

// newNonce is calc_new_nonce: a fresh nonce for a challenge to msg,
// registered in the nonce-count and one-time-nonce tables when enabled.
func (m *Module) newNonce(msg *sipmsg.Msg) string {
	now := uint32(m.now().Unix())
	var nid uint32
	var flags byte
	if m.nc != nil || m.otn != nil {
		nid = m.nid.Add(1)
		if m.nc != nil {
			m.nc.reset(nid)
			flags |= nfNC
		}
		if m.otn != nil {
			m.otn.reset(nid)
			flags |= nfOTN
		}
	}
	b := make([]byte, nonceFixed, nonceLong)
	binary.BigEndian.PutUint32(b[0:], now+uint32(m.cfg.NonceExpire))
	binary.BigEndian.PutUint32(b[4:], now)
	binary.BigEndian.PutUint32(b[8:], nid)
	b[12] = flags
	_, _ = rand.Read(b[13:nonceFixed])
	fixed := b[:nonceFixed]
	b = append(b, mac(m.secret1, fixed, nil)...)
	if cfg := m.authChecks(msg); cfg != 0 {
		b = append(b, mac(m.secret2, fixed, checkParts(cfg, msg))...)
	}
	return nonceEnc.EncodeToString(b)
}

// checkNonce is Kamailio's check_nonce, in the same order: stale when it
// predates this instance or comes from the future, not matching when the
// signature is wrong, then nonce-count (which, when the credentials carry
// nc, replaces the one-time-nonce and request-part checks), one-time
// nonce, request parts, and finally expiry.
func (m *Module) checkNonce(cred *Credentials, msg *sipmsg.Msg) int {
	if !cred.HasNonce {
		return nonceInvalid
	}
	if len(cred.Nonce) < nonceEnc.EncodedLen(nonceShort) {
		return nonceTooShort
	}
	raw, err := nonceEnc.DecodeString(cred.Nonce)
	if err != nil || len(raw) < nonceShort {
		return nonceInvalid
	}
	cfg := m.authChecks(msg)
	expire := int64(binary.BigEndian.Uint32(raw[0:]))
	since := int64(binary.BigEndian.Uint32(raw[4:]))
	nid := binary.BigEndian.Uint32(raw[8:])
	flags := raw[12]
	now := m.now().Unix()
	if up := m.upSince.Load(); since < up {
		if now < up {
			m.upSince.Store(now)
		}
		if since < now {
			return nonceStale
		}
	}
	if since > now && since-now > int64(m.cfg.NonceAuthMaxDrift) {
		return nonceStale
	}
	if m.otn != nil && flags&nfOTN == 0 {
		return nonceStale
	}
	fixed := raw[:nonceFixed]
	if !hmac.Equal(raw[nonceFixed:nonceShort], mac(m.secret1, fixed, nil)) {
		return nonceNoMatch
	}
	if m.nc != nil && flags&nfNC != 0 && cred.HasNC && cred.NC != "" {
		if len(cred.NC) != 8 {
			return nonceBadNC
		}
		nc, err := strconv.ParseUint(cred.NC, 16, 32)
		if err != nil {
			return nonceBadNC
		}
		if !m.nc.check(nid, uint32(nc), m.nid.Load()) {
			return nonceStale // replayed or too old: Kamailio forces a re-auth
		}
		if expire < now {
			return nonceStale
		}
		return nonceOK
	}
	if m.otn != nil && flags&nfOTN != 0 {
		if !m.otn.use(nid, m.nid.Load()) {
			return nonceReused
		}
	}
	if cfg != 0 {
		if len(raw) != nonceLong {
			return nonceNoMatch
		}
		if !hmac.Equal(raw[nonceShort:], mac(m.secret2, fixed, checkParts(cfg, msg))) {
			return nonceChecksBad
		}
	}
	if expire < now {
		return nonceStale
	}
	return nonceOK
}

// ncTable keeps the highest nonce count seen for the last len(slots)
// nonce ids (Kamailio's nc_array).
type ncTable struct {
	slots []atomic.Uint32
}

func newNCTable(size int) *ncTable {
	if size <= 0 {
		size = 1 << 20
	}
	return &ncTable{slots: make([]atomic.Uint32, size)}
}

func (t *ncTable) slot(id uint32) *atomic.Uint32 { return &t.slots[id%uint32(len(t.slots))] }

func (t *ncTable) reset(id uint32) { t.slot(id).Store(0) }

// check records nc for nonce id and reports whether it is acceptable:
// the id must not have been overwritten by newer nonces and nc must be
// higher than every nc seen before for it.
func (t *ncTable) check(id, nc, cur uint32) bool {
	if cur-id >= uint32(len(t.slots)) {
		return false
	}
	s := t.slot(id)
	for {
		old := s.Load()
		if old >= nc {
			return false
		}
		if s.CompareAndSwap(old, nc) {
			return true
		}
	}
}

// otnTable remembers which of the last n nonce ids were used (Kamailio's
// one-time-nonce bitmap).
type otnTable struct {
	bits []atomic.Uint64
	n    uint32
}

func newOTNTable(n int) *otnTable {
	if n <= 0 {
		n = 1 << 20
	}
	return &otnTable{bits: make([]atomic.Uint64, (n+63)/64), n: uint32(n)}
}

func (t *otnTable) pos(id uint32) (*atomic.Uint64, uint64) {
	i := id % t.n
	return &t.bits[i/64], 1 << (i % 64)
}

func (t *otnTable) reset(id uint32) {
	w, bit := t.pos(id)
	w.And(^bit)
}

// use marks nonce id used; false when it was used already or is too old.
func (t *otnTable) use(id, cur uint32) bool {
	if cur-id >= t.n {
		return false
	}
	w, bit := t.pos(id)
	return w.Or(bit)&bit == 0
}
