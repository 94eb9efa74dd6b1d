// Package rtpengine is Kamailio's rtpengine module: it relays the media of
// calls through Sipwise rtpengine by sending it NG protocol commands
// (bencoded dictionaries behind a cookie, over UDP or a Unix stream
// socket) and replacing the SDP of the message being forwarded with the
// one rtpengine returns.
package rtpengine

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

// Option changes how New builds the module.
type Option func(*Module)

// WithClock replaces time.Now (disable timeouts, call bindings).
func WithClock(now func() time.Time) Option { return func(m *Module) { m.clock = now } }

// WithLogger sets the logger used outside callbacks.
func WithLogger(l zerolog.Logger) Option { return func(m *Module) { m.log = l } }

// WithTimeout overrides rtpengine_tout_ms with a finer duration (tests).
func WithTimeout(d time.Duration) Option { return func(m *Module) { m.tout = d } }

// WithTxRequest tells the module how to find the request of the
// transaction a callback runs in (tm's uas request), which
// rtpengine_manage needs on replies: an INVITE without SDP makes the SDP
// of its 200 OK an offer. Without it (or when it returns nil) a reply is
// handled as having no transaction, as Kamailio without tm.
func WithTxRequest(f func(c *kemi.Ctx) *sipmsg.Msg) Option {
	return func(m *Module) { m.txReq = f }
}

// Module is the rtpengine module.
type Module struct {
	cfg    Config
	clock  func() time.Time
	log    zerolog.Logger
	tout   time.Duration
	txReq  func(c *kemi.Ctx) *sipmsg.Msg
	sets   map[int]*set
	cookie atomic.Uint64

	bindMu sync.Mutex
	binds  map[string]binding // call-id + via-branch -> instance
}

type binding struct {
	n       *node
	expires time.Time
}

type set struct {
	id    int
	nodes []*node
}

// node is one rtpengine instance.
type node struct {
	url    string
	mode   string // udp, udp6, unix
	addr   string
	weight int

	mu       sync.Mutex
	tested   bool
	disabled bool
	recheck  time.Time
}

func (n *node) isDisabled() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.disabled
}

// New builds the module. Instances are pinged on first use.
func New(cfg Config, opts ...Option) (*Module, error) {
	def := DefaultConfig()
	if cfg.RtpengineRetr <= 0 {
		cfg.RtpengineRetr = def.RtpengineRetr
	}
	if cfg.RtpengineToutMs <= 0 {
		cfg.RtpengineToutMs = def.RtpengineToutMs
	}
	if cfg.QueriedNodesLimit <= 0 || cfg.QueriedNodesLimit > 30 {
		cfg.QueriedNodesLimit = def.QueriedNodesLimit
	}
	if cfg.HashTableTout <= 0 {
		cfg.HashTableTout = def.HashTableTout
	}
	m := &Module{cfg: cfg, clock: time.Now, log: zerolog.Nop(), sets: map[int]*set{}, binds: map[string]binding{}}
	m.tout = time.Duration(cfg.RtpengineToutMs) * time.Millisecond
	for _, o := range opts {
		o(m)
	}
	for _, d := range cfg.RtpengineSock {
		if err := m.addSet(d); err != nil {
			return nil, err
		}
	}
	for key, name := range map[string]string{"rtp_inst_pvar": cfg.RtpInstPvar, "write_sdp_pv": cfg.WriteSdpPv, "read_sdp_pv": cfg.ReadSdpPv} {
		if name == "" {
			continue
		}
		if _, err := pv.Parse(name); err != nil && !errors.Is(err, pv.ErrUnknown) {
			return nil, fmt.Errorf("rtpengine: %s: %w", key, err)
		}
	}
	return m, nil
}

// addSet parses one rtpengine_sock value.
func (m *Module) addSet(d string) error {
	d = strings.TrimSpace(d)
	if d == "" {
		return nil
	}
	id := 0
	if i := strings.Index(d, "=="); i >= 0 {
		n, err := strconv.Atoi(strings.TrimSpace(d[:i]))
		if err != nil || n < 0 {
			return fmt.Errorf("rtpengine_sock %q: invalid set id", d)
		}
		id, d = n, strings.TrimSpace(d[i+2:])
		if d == "" {
			return fmt.Errorf("rtpengine_sock: empty list for set %d", id)
		}
	}
	s := m.sets[id]
	if s == nil {
		s = &set{id: id}
		m.sets[id] = s
	}
	for _, f := range strings.Fields(d) {
		n := &node{weight: 1}
		if i := strings.IndexByte(f, '='); i >= 0 {
			w, err := strconv.Atoi(f[i+1:])
			if err != nil || w < 0 {
				return fmt.Errorf("rtpengine_sock %q: bad weight", f)
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
			// Kamailio ignores such entries with a warning; ws:// and
			// wss:// need the lwsc module, which kemigo does not have.
			return fmt.Errorf("rtpengine_sock %q: must start with udp:, udp6: or unix:", f)
		}
		if n.mode != "unix" {
			host, port := n.addr, ""
			if i := strings.LastIndexByte(n.addr, ':'); i >= 0 && !strings.HasSuffix(n.addr, "]") {
				host, port = n.addr[:i], n.addr[i+1:]
			}
			if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
				return fmt.Errorf("rtpengine_sock %q: node address must end with a valid port number", f)
			}
			n.addr = net.JoinHostPort(strings.Trim(host, "[]"), port)
		}
		s.nodes = append(s.nodes, n)
	}
	return nil
}

// Configured reports whether any rtpengine is configured.
func (m *Module) Configured() bool { return len(m.sets) > 0 }

// ---- per-message state ----

const extKey = "rtpengine"

type msgState struct {
	set1, set2   int  // sets chosen by set_rtpengine_set / set_rtpengine_set2 (-1: none)
	sdpReq       bool // INVITE carried SDP (FL_SDP_BODY)
	intermediate *string
}

func state(msg *sipmsg.Msg) *msgState {
	if msg.Ext == nil {
		msg.Ext = map[string]any{}
	}
	st, ok := msg.Ext[extKey].(*msgState)
	if !ok {
		st = &msgState{set1: -1, set2: -1}
		msg.Ext[extKey] = st
	}
	return st
}

// ---- instance selection ----

func bindKey(callid, viabranch string) string { return callid + "\x00" + viabranch }

// selectNode picks an instance of set s for the call: the one the call
// is bound to, else a weighted choice by a hash of the Call-ID among
// those that answer and were not queried yet.
func (m *Module) selectNode(c *kemi.Ctx, s *set, callid, viabranch string, queried map[*node]bool) *node {
	now := m.clock()
	m.bindMu.Lock()
	b, ok := m.binds[bindKey(callid, viabranch)]
	m.bindMu.Unlock()
	if ok && now.Before(b.expires) && !queried[b.n] && !b.n.isDisabled() {
		for _, n := range s.nodes {
			if n == b.n {
				return n
			}
		}
	}
	sum := 0
	for i := 0; i < len(callid); i++ {
		sum += int(callid[i])
	}
	sum &= 0xff
	for forced := false; ; forced = true {
		total := 0
		for _, n := range s.nodes {
			if m.usable(c, n, now, forced) && !queried[n] {
				total += n.weight
			}
		}
		if total == 0 {
			if forced || m.cfg.AggressiveRedetection == 0 {
				return nil
			}
			continue
		}
		cut := sum % total
		for _, n := range s.nodes {
			if n.isDisabled() || queried[n] {
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

// usable pings n when it was never tested, when it is disabled and its
// recheck time has come, or when forced; it reports whether n is enabled.
func (m *Module) usable(c *kemi.Ctx, n *node, now time.Time, force bool) bool {
	n.mu.Lock()
	need := !n.tested || force || (n.disabled && !now.Before(n.recheck))
	n.mu.Unlock()
	if need {
		m.ping(c, n)
	}
	return !n.isDisabled()
}

// ping is rtpp_test: "ping" must answer result "pong".
func (m *Module) ping(c *kemi.Ctx, n *node) bool {
	d := NewDict()
	d.Set("command", "ping")
	ok := false
	if reply, err := m.send(n, d); err != nil {
		c.Log.Error().Err(err).Str("rtpengine", n.url).Msg("rtpengine: proxy did not respond to ping")
	} else if r, err := DecodeDict(reply); err != nil {
		c.Log.Error().Err(err).Msg("rtpengine: proxy responded with invalid response")
	} else if res, _ := r.Str("result"); res != "pong" {
		c.Log.Error().Str("result", res).Msg("rtpengine: proxy responded with invalid response")
	} else {
		ok = true
		c.Log.Info().Msgf("rtpengine: rtpengine instance <%s> found, support for it enabled", n.url)
	}
	n.mu.Lock()
	n.tested = true
	n.disabled = !ok
	if !ok {
		n.recheck = m.clock().Add(time.Duration(m.cfg.RtpengineDisableTout) * time.Second)
	}
	n.mu.Unlock()
	return ok
}

func (m *Module) disable(n *node) {
	n.mu.Lock()
	n.disabled = true
	n.recheck = m.clock().Add(time.Duration(m.cfg.RtpengineDisableTout) * time.Second)
	n.mu.Unlock()
}

func (m *Module) bind(callid, viabranch string, n *node) {
	now := m.clock()
	m.bindMu.Lock()
	defer m.bindMu.Unlock()
	if len(m.binds) > 1024 {
		for k, b := range m.binds {
			if !now.Before(b.expires) {
				delete(m.binds, k)
			}
		}
	}
	m.binds[bindKey(callid, viabranch)] = binding{n: n, expires: now.Add(time.Duration(m.cfg.HashTableTout) * time.Second)}
}

func (m *Module) unbind(callid, viabranch string) {
	m.bindMu.Lock()
	delete(m.binds, bindKey(callid, viabranch))
	m.bindMu.Unlock()
}

// ---- transport ----

func (m *Module) nextCookie() string {
	return "0_" + strconv.Itoa(os.Getpid()) + "_" + strconv.FormatUint(m.cookie.Add(1), 10)
}

// send sends a command dictionary and returns the bencoded reply without
// its cookie. UDP: "<cookie> <dict>", retried rtpengine_retr times,
// waiting rtpengine_tout_ms each; Unix stream: the dictionary alone.
func (m *Module) send(n *node, d *Dict) ([]byte, error) {
	payload, err := Encode(d)
	if err != nil {
		return nil, err
	}
	if n.mode == "unix" {
		conn, err := net.DialTimeout("unix", n.addr, m.tout)
		if err != nil {
			return nil, fmt.Errorf("can't connect to RTPEngine <%s>: %w", n.url, err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(m.tout * time.Duration(m.cfg.RtpengineRetr)))
		if _, err := conn.Write(payload); err != nil {
			return nil, fmt.Errorf("can't send command to RTPEngine <%s>: %w", n.url, err)
		}
		buf := make([]byte, 0x40000)
		k, err := conn.Read(buf)
		if k <= 0 {
			return nil, fmt.Errorf("can't read reply from RTPEngine <%s>: %v", n.url, err)
		}
		return buf[:k], nil
	}
	network := "udp4"
	if n.mode == "udp6" {
		network = "udp6"
	}
	conn, err := net.Dial(network, n.addr)
	if err != nil {
		return nil, fmt.Errorf("can't connect to RTPEngine <%s>: %w", n.url, err)
	}
	defer conn.Close()
	cookie := m.nextCookie()
	out := append([]byte(cookie+" "), payload...)
	buf := make([]byte, 0x40000)
	for i := 0; i < m.cfg.RtpengineRetr; i++ {
		if _, err := conn.Write(out); err != nil {
			return nil, fmt.Errorf("can't send command to RTPEngine <%s>: %w", n.url, err)
		}
		deadline := time.Now().Add(m.tout)
		for {
			_ = conn.SetReadDeadline(deadline)
			k, err := conn.Read(buf)
			if err != nil {
				break // timeout or ICMP unreachable: next try
			}
			r := buf[:k]
			if len(r) > len(cookie) && string(r[:len(cookie)]) == cookie && r[len(cookie)] == ' ' {
				return append([]byte(nil), r[len(cookie)+1:]...), nil
			}
		}
	}
	return nil, fmt.Errorf("timeout waiting reply from RTPEngine <%s>", n.url)
}

// setInstPvar stores the URL of the instance used in rtp_inst_pvar.
func (m *Module) setInstPvar(c *kemi.Ctx, n *node) {
	if m.cfg.RtpInstPvar == "" {
		return
	}
	if err := pv.Set(c, m.cfg.RtpInstPvar, val.OfStr(n.url)); err != nil {
		c.Log.Error().Err(err).Msg("rtpengine: failed to add RTP Engine URI to pvar")
	}
}
