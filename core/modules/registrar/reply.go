package registrar

import (
	"errors"
	"strconv"
	"strings"

	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/modules/usrloc"
	"github.com/kemigo/kemigo/core/sipmsg"
)

// Kamailio's rerrno values (rerrno.h), in its order.
const (
	rFine = iota
	rULDelR
	rULGetR
	rULNewR
	rInvCSeq
	rULInsC
	rULInsR
	rULDelC
	rULUpdC
	rToUser
	rAORLen
	rAORParse
	rInvExp
	rInvQ
	rParse
	rToMiss
	rCIDMiss
	rCSMiss
	rParseExp
	rParseCont
	rStarExp
	rStarCont
	rOOO
	rRetrans
	rUnescape
	rTooMany
	rContactLen
	rCallIDLen
	rParsePath
	rPathUnsup
	rOBUnsup
	rOBReqd
	rOBUnsupEdge
	rInvRegID
	rLowExp
)

// errorInfo is the P-Registrar-Error text of each rerrno.
var errorInfo = [...]string{
	"No problem", "usrloc_record_delete failed", "usrloc_record_get failed", "usrloc_record_new failed",
	"Invalid CSeq number", "usrloc_contact_insert failed", "usrloc_record_insert failed",
	"usrloc_contact_delete failed", "usrloc_contact_update failed", "No username in To URI",
	"Address Of Record too long", "Error while parsing AOR", "Invalid expires param in contact",
	"Invalid q param in contact", "Message parse error", "To header not found", "Call-ID header not found",
	"CSeq header not found", "Expires parse error", "Contact parse error",
	"* used in contact and expires is not zero", "* used in contact and more than 1 contact",
	"Out of order request", "Retransmission", "Error while unescaping username",
	"Too many registered contacts", "Contact/received too long", "Callid too long", "Path parse error",
	"No support for found Path indicated", "No support for Outbound indicated",
	"No support for Outbound on server", "No support for Outbound on edge proxy", "Invalid Reg-Id number",
	"Interval too brief",
}

// replyCodes is the reply code of each rerrno.
var replyCodes = [...]int{
	200, 500, 500, 500, 400, 500, 500, 500, 500, 400, 500, 400, 400, 400, 400, 400, 400, 400, 400, 400,
	400, 400, 200, 200, 400, 503, 400, 400, 400, 420, 421, 420, 439, 400, 423,
}

var reasons = map[int]string{
	200: "OK", 400: "Bad Request", 420: "Bad Extension", 421: "Extension Required",
	423: "Interval Too Brief", 439: "First Hop Lacks Outbound Support", 500: "Server Internal Error",
	503: "Service Unavailable",
}

// regError carries an rerrno out of the save helpers.
type regError int

func (e regError) Error() string { return errorInfo[e] }

func asRerrno(err error, def int) int {
	var re regError
	if errors.As(err, &re) {
		return int(re)
	}
	return def
}

// buildContact renders the Contact header of the reply: every valid
// contact with ;q=, ;expires=<seconds left>, ;received="..." (when the
// contact has one and received_param is set), pub-gruu / temp-gruu (when
// the REGISTER supports gruu and the contact has an instance),
// +sip.instance and reg-id. It returns "" when there is no valid contact.
func (m *Module) buildContact(msg *sipmsg.Msg, cs []usrloc.Contact, host string, now int64) string {
	gruu := false
	if m.cfg.GruuEnabled == 1 {
		if tags, ok := optionTags(msg, "supported"); ok && tags["gruu"] {
			gruu = true
		}
	}
	var b strings.Builder
	n := 0
	for i := range cs {
		c := &cs[i]
		if !c.Valid(now) {
			continue
		}
		if n == 0 {
			b.WriteString("Contact: ")
		} else {
			b.WriteString(", ")
		}
		n++
		b.WriteByte('<')
		b.WriteString(c.URI)
		b.WriteByte('>')
		if q := q2str(c.Q); q != "" {
			b.WriteString(";q=")
			b.WriteString(q)
		}
		b.WriteString(";expires=")
		left := c.Expires - now
		if c.Expires == 0 {
			left = 0 // permanent contact (Kamailio prints a negative number)
		}
		b.WriteString(strconv.FormatInt(left, 10))
		if m.cfg.ReceivedParam != "" && c.Received != "" {
			b.WriteString(";" + m.cfg.ReceivedParam + "=\"" + c.Received + "\"")
		}
		if gruu && c.Instance != "" {
			user := c.AOR
			pub := "sip:" + c.AOR
			if at := strings.IndexByte(c.AOR, '@'); at < 0 {
				pub = "sip:" + user + "@" + host
			}
			b.WriteString(";pub-gruu=\"" + pub + ";gr=" + trimAngle(c.Instance) + "\"")
			b.WriteString(";temp-gruu=\"sip:" + c.RUID + "-" + hashHex(aorHash(c.AOR)) + "@" + host + ";gr\"")
		}
		if c.Instance != "" {
			b.WriteString(";+sip.instance=\"" + c.Instance + "\"")
		}
		if c.RegID > 0 {
			b.WriteString(";reg-id=" + strconv.FormatUint(uint64(c.RegID), 10))
		}
	}
	if n == 0 {
		return ""
	}
	b.WriteString("\r\n")
	return b.String()
}

func trimAngle(s string) string {
	if len(s) >= 2 && s[0] == '<' && s[len(s)-1] == '>' {
		return s[1 : len(s)-1]
	}
	return s
}

// aorHash is the hash put in temp-gruus (Kamailio uses its core_hash;
// only kemigo reads it back).
func aorHash(aor string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(aor); i++ {
		h ^= uint32(aor[i])
		h *= 16777619
	}
	return h
}

// hashHex writes h in hex, least significant nibble first (as Kamailio).
func hashHex(h uint32) string {
	var b []byte
	for h != 0 {
		d := byte(h & 0x0f)
		if d >= 10 {
			b = append(b, 'a'+d-10)
		} else {
			b = append(b, '0'+d)
		}
		h >>= 4
	}
	return string(b)
}

// replyHeaders adds the reply headers of the last save (Kamailio's
// reg_reply_helper): the Contact list, Path / Unsupported for RFC 3327,
// Min-Expires for 423, P-Registrar-Error and Retry-After for errors, and
// a Date header for 200 (RFC 3261 §10.3 step 8; Kamailio adds none). They
// go to Msg.ReplyHdrs, so a reply sent later by the script (flag 0x10)
// carries them too. It returns the code and reason.
func (m *Module) replyHeaders(msg *sipmsg.Msg, st *msgState) (int, string) {
	var hdrs []string
	if st.contact != "" {
		hdrs = append(hdrs, st.contact)
		st.contact = ""
	}
	switch st.rerrno {
	case rFine:
		if m.cfg.UsePath != 0 && st.pathVec != "" && m.cfg.PathMode != pathOff {
			tags, ok := optionTags(msg, "supported")
			switch {
			case !ok && m.cfg.PathMode == pathStrict:
				st.rerrno = rPathUnsup
				hdrs = append(hdrs, "Unsupported: path\r\n", "Path: "+st.pathVec+"\r\n")
			case tags["path"]:
				hdrs = append(hdrs, "Path: "+st.pathVec+"\r\n")
			case m.cfg.PathMode == pathStrict:
				st.rerrno = rPathUnsup
				hdrs = append(hdrs, "Unsupported: path\r\n", "Path: "+st.pathVec+"\r\n")
			}
		}
	case rOBReqd:
		hdrs = append(hdrs, "Unsupported: outbound\r\n")
	case rLowExp:
		hdrs = append(hdrs, "Min-Expires: "+strconv.Itoa(m.cfg.MinExpires)+"\r\n")
	}
	code := replyCodes[st.rerrno]
	if code != 200 {
		hdrs = append(hdrs, "P-Registrar-Error: "+errorInfo[st.rerrno]+"\r\n")
		if code >= 500 && code < 600 && m.cfg.RetryAfter > 0 {
			hdrs = append(hdrs, "Retry-After: "+strconv.Itoa(m.cfg.RetryAfter)+"\r\n")
		}
	} else {
		hdrs = append(hdrs, "Date: "+m.clock().UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT")+"\r\n")
	}
	msg.ReplyHdrs = append(msg.ReplyHdrs, hdrs...)
	return code, reasons[code]
}

var errNoReply = errors.New("registrar: message marked no-reply")

// sendReply is reg_send_reply: prepares the headers and sends the reply,
// through tm when the request has a transaction, else statelessly.
func (m *Module) sendReply(c *kemi.Ctx, st *msgState) error {
	msg := c.Msg
	code, reason := m.replyHeaders(msg, st)
	if !msg.IsRequest() {
		return errors.New("registrar: cannot reply to a reply")
	}
	if msg.NoReply {
		return errNoReply
	}
	if h := m.hooks.Load(); h.stateful != nil {
		if handled, rc := h.stateful.TReply(c, code, reason); handled {
			if rc < 0 {
				return errors.New("registrar: tm failed to send the reply")
			}
			return nil
		}
	}
	return msg.SendReply(msg.BuildReply(code, reason))
}
