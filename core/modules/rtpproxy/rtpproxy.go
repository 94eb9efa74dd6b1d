// Package rtpproxy is Kamailio's rtpproxy module: it relays the media of
// calls through rtpproxy (https://www.rtpproxy.org) by sending it
// commands over its control protocol (UDP or a Unix stream socket) and
// rewriting the SDP of the message being forwarded with the address and
// ports rtpproxy allocated.
package rtpproxy

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/pv"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/core/val"
	"github.com/rs/zerolog"
)

// Control protocol versions (rtpproxy.c).
const (
	supCProtoVer = "20040107" // base version a proxy must report
	reqCProtoVer = "20050322" // required capability
	repCProtoVer = "20071116" // re-packetization
	ptlCProtoVer = "20081102" // payload type lists
)

const defaultPort = "22222" // CPORT

// ErrNoProxy is returned when no rtpproxy is configured or none answers.
var ErrNoProxy = errors.New("rtpproxy: no available proxies")

// Option changes how New builds the module.
type Option func(*Module)

// WithClock replaces time.Now (disable timeouts).
func WithClock(now func() time.Time) Option { return func(m *Module) { m.clock = now } }

// WithLogger sets the logger used outside callbacks.
func WithLogger(l zerolog.Logger) Option { return func(m *Module) { m.log = l } }

// WithTimeout overrides rtpproxy_tout with a finer duration (tests).
func WithTimeout(d time.Duration) Option { return func(m *Module) { m.tout = d } }

// WithTxRequest tells the module how to find the request of the
// transaction a callback runs in (tm's uas request), which
// rtpproxy_manage needs on replies: an INVITE that had no SDP makes the
// SDP of its 200 OK an offer. Without it (or when it returns nil), a
// reply is treated as having no transaction, as Kamailio without tm.
func WithTxRequest(f func(c *kemi.Ctx) *sipmsg.Msg) Option {
	return func(m *Module) { m.txReq = f }
}

// Module is the rtpproxy module.
type Module struct {
	cfg    Config
	clock  func() time.Time
	log    zerolog.Logger
	tout   time.Duration
	txReq  func(c *kemi.Ctx) *sipmsg.Msg
	sets   map[int]*set
	order  []int
	cookie atomic.Uint64
}

// set is one rtpproxy set.
type set struct {
	id    int
	nodes []*node
}

// node is one rtpproxy instance.
type node struct {
	url    string // as configured, "udp:127.0.0.1:7722"
	mode   string // "udp", "udp6" or "unix"
	addr   string // host:port or socket path
	weight int

	mu       sync.Mutex
	tested   bool      // tested once (Kamailio tests in child_init)
	disabled bool      // not answering
	recheck  time.Time // when to test a disabled node again
	rep      bool      // supports re-packetization
	ptl      bool      // supports payload type lists
}

// New builds the module from its configuration. Nothing is sent until a
// function needs a proxy: each proxy is tested (version and capabilities)
// on first use.
func New(cfg Config, opts ...Option) (*Module, error) {
	def := DefaultConfig()
	if cfg.RtpproxyRetr <= 0 {
		cfg.RtpproxyRetr = def.RtpproxyRetr
	}
	if cfg.RtpproxyTout <= 0 {
		cfg.RtpproxyTout = def.RtpproxyTout
	}
	m := &Module{cfg: cfg, clock: time.Now, log: zerolog.Nop(), sets: map[int]*set{}}
	m.tout = time.Duration(cfg.RtpproxyTout) * time.Second
	for _, o := range opts {
		o(m)
	}
	for _, def := range cfg.RtpproxySock {
		if err := m.addSet(def); err != nil {
			return nil, err
		}
	}
	for _, name := range []string{cfg.RtpInstPvar} {
		if name != "" {
			if _, err := pv.Parse(name); err != nil && !errors.Is(err, pv.ErrUnknown) {
				return nil, fmt.Errorf("rtpproxy: rtp_inst_pvar: %w", err)
			}
		}
	}
	return m, nil
}

// addSet parses one rtpproxy_sock value.
func (m *Module) addSet(def string) error {
	def = strings.TrimSpace(def)
	if def == "" {
		return nil
	}
	id := 0
	if i := strings.Index(def, "=="); i >= 0 {
		n, err := strconv.Atoi(strings.TrimSpace(def[:i]))
		if err != nil || n < 0 {
			return fmt.Errorf("rtpproxy_sock %q: invalid set id", def)
		}
		id = n
		def = strings.TrimSpace(def[i+2:])
		if def == "" {
			return fmt.Errorf("rtpproxy_sock: empty rtp proxy list for set %d", id)
		}
	}
	s := m.sets[id]
	if s == nil {
		s = &set{id: id}
		m.sets[id] = s
		m.order = append(m.order, id)
	}
	for _, f := range strings.Fields(def) {
		n := &node{weight: 1}
		if i := strings.IndexByte(f, '='); i >= 0 {
			w, err := strconv.Atoi(f[i+1:])
			if err != nil || w < 0 {
				return fmt.Errorf("rtpproxy_sock %q: bad weight", f)
			}
			n.weight, f = w, f[:i]
		}
		n.url = f
		lower := strings.ToLower(f)
		switch {
		case strings.HasPrefix(lower, "udp:"):
			n.mode, n.addr = "udp", f[4:]
		case strings.HasPrefix(lower, "udp6:"):
			n.mode, n.addr = "udp6", f[5:]
		case strings.HasPrefix(lower, "unix:"):
			n.mode, n.addr = "unix", f[5:]
		default:
			n.mode, n.addr = "unix", f
		}
		if n.mode != "unix" {
			host, port := n.addr, defaultPort
			if i := strings.LastIndexByte(n.addr, ':'); i >= 0 && !strings.HasSuffix(n.addr, "]") {
				host, port = n.addr[:i], n.addr[i+1:]
				if port == "" {
					port = defaultPort
				}
			}
			if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
				return fmt.Errorf("rtpproxy_sock %q: bad port", f)
			}
			n.addr = net.JoinHostPort(strings.Trim(host, "[]"), port)
		}
		s.nodes = append(s.nodes, n)
	}
	return nil
}

// caps returns the optional capabilities found by the last test.
func (n *node) caps() (rep, ptl bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.rep, n.ptl
}

// Configured reports whether any rtpproxy is configured.
func (m *Module) Configured() bool { return len(m.sets) > 0 }

// extKey is this module's sipmsg.Msg.Ext key.
const extKey = "rtpproxy"

type msgState struct {
	set    int  // set chosen by set_rtpproxy_set (-1: default)
	sdpReq bool // INVITE carried SDP (Kamailio's FL_SDP_BODY)
}

func state(m *sipmsg.Msg) *msgState {
	if m.Ext == nil {
		m.Ext = map[string]any{}
	}
	st, ok := m.Ext[extKey].(*msgState)
	if !ok {
		st = &msgState{set: -1}
		m.Ext[extKey] = st
	}
	return st
}

// SetSet is set_rtpproxy_set(id): the set used for the rest of the
// current message. 1, or -1 for an unknown set.
func (m *Module) SetSet(c *kemi.Ctx, id int) int {
	if m.sets[id] == nil {
		c.Log.Error().Msgf("rtpproxy: could not locate rtpproxy set %d", id)
		return -1
	}
	state(c.Msg).set = id
	return 1
}

// selectNode picks a proxy of the message's set for callid (Kamailio's
// select_rtpp_node): the only one, or a weighted choice by a hash of the
// Call-ID among those answering. Nodes are tested on first use and
// disabled ones again after rtpproxy_disable_tout.
func (m *Module) selectNode(c *kemi.Ctx, callid string) *node {
	id := 0
	if st, ok := c.Msg.Ext[extKey].(*msgState); ok && st.set >= 0 {
		id = st.set
	}
	s := m.sets[id]
	if s == nil || len(s.nodes) == 0 {
		if len(m.sets) == 0 {
			c.Log.Error().Msg("rtpproxy: no rtpproxy configured (rtpproxy_sock)")
		} else {
			c.Log.Error().Msgf("rtpproxy: script error - no valid set selected (set %d)", id)
		}
		return nil
	}
	now := m.clock()
	if len(s.nodes) == 1 {
		n := s.nodes[0]
		if m.usable(c, n, now, false) {
			return n
		}
		return nil
	}
	sum := 0
	for i := 0; i < len(callid); i++ {
		sum += int(callid[i])
	}
	sum &= 0xff
	for forced := false; ; forced = true {
		total := 0
		for _, n := range s.nodes {
			if m.usable(c, n, now, forced) {
				total += n.weight
			}
		}
		if total == 0 {
			if forced {
				return nil
			}
			continue
		}
		cut := sum % total
		for _, n := range s.nodes {
			n.mu.Lock()
			dis := n.disabled
			n.mu.Unlock()
			if dis {
				continue
			}
			if cut < n.weight {
				return n
			}
			cut -= n.weight
		}
		return nil
	}
}

// usable tests n when it was never tested, when it is disabled and its
// recheck time has come, or when force is set; it reports whether n is
// enabled.
func (m *Module) usable(c *kemi.Ctx, n *node, now time.Time, force bool) bool {
	n.mu.Lock()
	need := !n.tested || force || (n.disabled && !now.Before(n.recheck))
	n.mu.Unlock()
	if need {
		m.test(c, n)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return !n.disabled
}

// test is rtpp_test: "V" must answer the supported protocol version, "VF
// 20050322" must be 1; the optional capabilities are recorded.
func (m *Module) test(c *kemi.Ctx, n *node) {
	ok, rep, ptl := false, false, false
	if reply, err := m.send(c, n, "V"); err != nil {
		c.Log.Warn().Str("rtpproxy", n.url).Msg("rtpproxy: can't get version of the RTP proxy")
	} else if v := strings.TrimSpace(reply); v != supCProtoVer {
		c.Log.Warn().Str("rtpproxy", n.url).Msgf("rtpproxy: unsupported version of RTP proxy <%s> found: %s supported, %s present", n.url, supCProtoVer, v)
	} else if r, err := m.checkCap(c, n, reqCProtoVer); err != nil {
		c.Log.Warn().Msg("rtpproxy: RTP proxy went down during version query")
	} else if !r {
		c.Log.Warn().Msgf("rtpproxy: RTP proxy <%s> doesn't support required protocol version %s", n.url, reqCProtoVer)
	} else {
		ok = true
		rep, _ = m.checkCap(c, n, repCProtoVer)
		ptl, _ = m.checkCap(c, n, ptlCProtoVer)
		c.Log.Info().Msgf("rtpproxy: rtp proxy <%s> found, support for it enabled", n.url)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.tested = true
	n.disabled = !ok
	n.rep, n.ptl = rep, ptl
	if !ok {
		n.recheck = m.clock().Add(time.Duration(m.cfg.RtpproxyDisableTout) * time.Second)
		c.Log.Warn().Msgf("rtpproxy: support for RTP proxy <%s> has been disabled temporarily", n.url)
	}
}

func (m *Module) checkCap(c *kemi.Ctx, n *node, capVer string) (bool, error) {
	reply, err := m.send(c, n, "VF "+capVer)
	if err != nil {
		return false, err
	}
	reply = strings.TrimSpace(reply)
	if strings.HasPrefix(reply, "E") {
		return false, nil
	}
	v, _ := strconv.Atoi(strings.Fields(reply + " ")[0])
	return v == 1, nil
}

// command sends cmd to n; on no answer the node is disabled for
// rtpproxy_disable_tout (send_rtpp_command's badproxy).
func (m *Module) command(c *kemi.Ctx, n *node, cmd string) (string, error) {
	reply, err := m.send(c, n, cmd)
	if err != nil {
		c.Log.Error().Err(err).Msgf("rtpproxy: proxy <%s> does not respond, disable it", n.url)
		n.mu.Lock()
		n.disabled = true
		n.recheck = m.clock().Add(time.Duration(m.cfg.RtpproxyDisableTout) * time.Second)
		n.mu.Unlock()
	}
	return reply, err
}

func (m *Module) nextCookie() string {
	return strconv.Itoa(os.Getpid()) + "_" + strconv.FormatUint(m.cookie.Add(1), 10)
}

// send sends one command and returns the reply without the cookie. UDP
// commands carry a cookie and are retried rtpproxy_retr times, waiting
// rtpproxy_tout for each; Unix stream commands have no cookie.
func (m *Module) send(c *kemi.Ctx, n *node, cmd string) (string, error) {
	if n.mode == "unix" {
		conn, err := net.DialTimeout("unix", n.addr, m.tout)
		if err != nil {
			return "", fmt.Errorf("can't connect to RTP proxy: %w", err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(m.tout * time.Duration(m.cfg.RtpproxyRetr)))
		if _, err := conn.Write([]byte(cmd)); err != nil {
			return "", fmt.Errorf("can't send command to a RTP proxy: %w", err)
		}
		buf := make([]byte, 256)
		k, err := conn.Read(buf)
		if k <= 0 {
			return "", fmt.Errorf("can't read reply from a RTP proxy: %v", err)
		}
		return string(buf[:k]), nil
	}
	network := "udp4"
	if n.mode == "udp6" {
		network = "udp6"
	}
	conn, err := net.Dial(network, n.addr)
	if err != nil {
		return "", fmt.Errorf("can't connect to a RTP proxy: %w", err)
	}
	defer conn.Close()
	cookie := m.nextCookie()
	out := []byte(cookie + " " + cmd)
	buf := make([]byte, 1024)
	for i := 0; i < m.cfg.RtpproxyRetr; i++ {
		if _, err := conn.Write(out); err != nil {
			return "", fmt.Errorf("can't send command to a RTP proxy: %w", err)
		}
		deadline := time.Now().Add(m.tout)
		for {
			_ = conn.SetReadDeadline(deadline)
			k, err := conn.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				break // ICMP port unreachable: next try
			}
			r := string(buf[:k])
			if strings.HasPrefix(r, cookie) {
				r = r[len(cookie):]
				if r != "" {
					r = r[1:]
				}
				return r, nil
			}
		}
	}
	return "", errors.New("timeout waiting reply from a RTP proxy")
}

// setInstPvar stores the URL of the proxy used in rtp_inst_pvar.
func (m *Module) setInstPvar(c *kemi.Ctx, n *node) {
	if m.cfg.RtpInstPvar == "" {
		return
	}
	if err := pv.Set(c, m.cfg.RtpInstPvar, val.OfStr(n.url)); err != nil {
		c.Log.Error().Err(err).Msg("rtpproxy: failed to add RTPProxy URI to pvar")
	}
}
