package rtpproxy

import (
	"strings"
)

// sdp is an SDP body split in lines (each keeps its line ending) with the
// positions of the lines the rtpproxy functions read and rewrite.
type sdp struct {
	lines    []string // text without line ending
	eols     []string // "\r\n", "\n" or "" (last line without ending)
	sessions []*session
}

type session struct {
	o       int // o= line, -1 when none
	c       int // session-level c= line, -1 when none
	streams []*stream
}

type stream struct {
	m        int // m= line
	c        int // media-level c= line, -1 when none
	rtcp     int // a=rtcp: line, -1 when none
	port     string
	proto    string
	payloads string // space-separated formats
}

// parseSDP splits body; it reports false when there is no session with
// a media description.
func parseSDP(body string) *sdp {
	s := &sdp{}
	for len(body) > 0 {
		i := strings.IndexByte(body, '\n')
		var line, eol string
		if i < 0 {
			line, body = body, ""
		} else {
			line, eol, body = body[:i], "\n", body[i+1:]
			if strings.HasSuffix(line, "\r") {
				line, eol = line[:len(line)-1], "\r\n"
			}
		}
		s.lines = append(s.lines, line)
		s.eols = append(s.eols, eol)
	}
	var cur *session
	var st *stream
	for i, l := range s.lines {
		switch {
		case strings.HasPrefix(l, "v="):
			cur = &session{o: -1, c: -1}
			s.sessions = append(s.sessions, cur)
			st = nil
		case cur == nil:
			continue
		case strings.HasPrefix(l, "o=") && st == nil:
			cur.o = i
		case strings.HasPrefix(l, "c="):
			if st == nil {
				cur.c = i
			} else {
				st.c = i
			}
		case strings.HasPrefix(l, "m="):
			f := strings.Fields(l[2:])
			st = &stream{m: i, c: -1, rtcp: -1}
			if len(f) > 1 {
				st.port = digits(f[1])
			}
			if len(f) > 2 {
				st.proto = f[2]
				st.payloads = strings.Join(f[3:], " ")
			}
			cur.streams = append(cur.streams, st)
		case strings.HasPrefix(l, "a=rtcp:") && st != nil:
			st.rtcp = i
		}
	}
	return s
}

// numStreams counts the media descriptions of every session.
func (s *sdp) numStreams() int {
	n := 0
	for _, ss := range s.sessions {
		n += len(ss.streams)
	}
	return n
}

func (s *sdp) String() string {
	var b strings.Builder
	for i, l := range s.lines {
		b.WriteString(l)
		b.WriteString(s.eols[i])
	}
	return b.String()
}

func digits(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

// addr returns the address family ("IP4"/"IP6") and address of a c= or
// o= line ("" when it has none).
func (s *sdp) addr(i int) (pf, ip string) {
	if i < 0 {
		return "", ""
	}
	f := strings.Fields(s.lines[i][2:])
	n := len(f)
	if n < 3 {
		return "", ""
	}
	ip = f[n-1]
	if j := strings.IndexByte(ip, '/'); j >= 0 { // multicast TTL
		ip = ip[:j]
	}
	return f[n-2], ip
}

// isNullAddr is Kamailio's isnulladdr: 0.0.0.0, or an IPv6 address of
// zeros and colons.
func isNullAddr(ip, pf string) bool {
	if pf == "IP6" {
		return strings.Trim(ip, "0:") == ""
	}
	return ip == "0.0.0.0"
}

// setAddr rewrites the address of a c= or o= line to ip of family pf,
// changing the family token when it differs (alter_mediaip). A null
// address of the same family and an unchanged address are left alone.
func (s *sdp) setAddr(i int, pf, ip string) {
	oldPF, oldIP := s.addr(i)
	if oldIP == "" || (oldPF == pf && isNullAddr(oldIP, oldPF)) || (oldPF == pf && oldIP == ip) {
		return
	}
	l := s.lines[i]
	f := strings.Fields(l[2:])
	n := len(f)
	last := f[n-1]
	suffix := ""
	if j := strings.IndexByte(last, '/'); j >= 0 {
		suffix = last[j:]
	}
	f[n-2], f[n-1] = pf, ip+suffix
	s.lines[i] = l[:2] + strings.Join(f, " ")
}

// setPort rewrites the port of an m= line (alter_mediaport).
func (s *sdp) setPort(st *stream, port string) {
	l := s.lines[st.m]
	f := strings.Fields(l[2:])
	if len(f) < 2 || f[1] == port {
		return
	}
	f[1] = port + f[1][len(digits(f[1])):] // keep a "/count"
	s.lines[st.m] = l[:2] + strings.Join(f, " ")
	st.port = port
}

// setRTCPPort rewrites the port of an a=rtcp: line (alter_rtcp); the rest
// of the line (an address) is kept.
func (s *sdp) setRTCPPort(i int, port string) {
	l := s.lines[i]
	rest := l[len("a=rtcp:"):]
	old := digits(rest)
	if old == port {
		return
	}
	s.lines[i] = "a=rtcp:" + port + rest[len(old):]
}

// hasLine reports whether a line starts with text (the nortpproxy marker).
func (s *sdp) hasLine(text string) bool {
	for _, l := range s.lines {
		if strings.HasPrefix(l, text) {
			return true
		}
	}
	return false
}

// appendLine adds a line at the end, with the body's line ending.
func (s *sdp) appendLine(text string) {
	eol := "\r\n"
	if n := len(s.eols); n > 0 {
		if s.eols[n-1] == "" {
			s.eols[n-1] = eol
		} else {
			eol = s.eols[n-1]
		}
	}
	s.lines = append(s.lines, text)
	s.eols = append(s.eols, eol)
}
