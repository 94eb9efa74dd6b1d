// Package registrar is Kamailio's registrar module: REGISTER processing
// into the usrloc location service (save) and contact lookup for requests
// to registered users (lookup), with the KSR.registrar.* functions and the
// $ulc pseudo-variable.
package registrar

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/modules/usrloc"
	"github.com/kemigo/kemigo/core/sipmsg"
)

// StatefulReplier answers a request through its transaction. The tm
// module implements it (the same method as sl.StatefulReplier): handled is
// false when the request has no transaction (the registrar then replies
// statelessly); otherwise rc is tm's result (negative on failure). The
// reply carries Msg.ReplyHdrs, where the registrar puts its headers.
type StatefulReplier interface {
	TReply(c *kemi.Ctx, code int, reason string) (handled bool, rc int)
}

// hooks are the other modules plugged in after New.
type hooks struct {
	stateful StatefulReplier
}

// Option changes how New builds the module.
type Option func(*Module)

// WithClock replaces time.Now (the Date header; expiry uses usrloc's clock).
func WithClock(now func() time.Time) Option { return func(m *Module) { m.clock = now } }

// WithRand replaces the random source of expires ranges: it returns a
// number in [0, 100).
func WithRand(f func() int) Option { return func(m *Module) { m.rnd = f } }

// Module is the registrar.
type Module struct {
	cfg    Config
	ul     *usrloc.Module
	rcvAVP string
	clock  func() time.Time
	rnd    func() int

	mu    sync.Mutex
	hooks atomic.Pointer[hooks]

	accepted atomic.Uint64
	rejected atomic.Uint64
}

// New builds the registrar on top of a usrloc module.
func New(cfg Config, ul *usrloc.Module, opts ...Option) (*Module, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	name, _ := rcvAVPName(cfg.ReceivedAVP)
	if cfg.ContactMaxSize <= 0 {
		cfg.ContactMaxSize = DefaultConfig().ContactMaxSize
	}
	m := &Module{cfg: cfg, ul: ul, rcvAVP: name, clock: time.Now, rnd: func() int { return rand.IntN(100) }}
	for _, o := range opts {
		o(m)
	}
	m.hooks.Store(&hooks{})
	registerPVs()
	return m, nil
}

// SetStateful plugs in tm (nil: replies are always stateless).
func (m *Module) SetStateful(r StatefulReplier) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := *m.hooks.Load()
	h.stateful = r
	m.hooks.Store(&h)
}

// Stats returns Kamailio's registrar counters (accepted_regs, rejected_regs).
func (m *Module) Stats() map[string]uint64 {
	return map[string]uint64{
		"accepted_regs":  m.accepted.Load(),
		"rejected_regs":  m.rejected.Load(),
		"max_expires":    uint64(m.cfg.MaxExpires),
		"max_contacts":   uint64(m.cfg.MaxContacts),
		"default_expire": uint64(m.cfg.DefaultExpires),
	}
}

// msgState is the per-message state Kamailio keeps in process globals:
// the result of the last save and its Contact list (for reg_send_reply),
// the path vector for the reply, the q override.
type msgState struct {
	rerrno    int
	contact   string
	pathVec   string
	qOverride int
	hasQ      bool
}

const extState = "registrar"

func state(msg *sipmsg.Msg) *msgState {
	if st, ok := msg.Ext[extState].(*msgState); ok {
		return st
	}
	st := &msgState{}
	if msg.Ext == nil {
		msg.Ext = map[string]any{}
	}
	msg.Ext[extState] = st
	return st
}

// RURIInfo is what lookup records about the contact it put in the R-URI
// (branch 0), beside Msg.DstURI, Msg.Path, Msg.SendSock and Msg.BFlags:
// Kamailio's ruid, instance, reg-id, location user agent and R-URI q, plus
// the TCP connection the contact registered over.
type RURIInfo struct {
	RUID      string
	Instance  string
	RegID     uint32
	UserAgent string
	Q         int
	ConnID    int64
}

// ExtRURI is the Msg.Ext key of the RURIInfo set by lookup.
const ExtRURI = "registrar.ruri"

// LookupResult returns the RURIInfo lookup left on m.
func LookupResult(m *sipmsg.Msg) (RURIInfo, bool) {
	ri, ok := m.Ext[ExtRURI].(RURIInfo)
	return ri, ok
}

func setRURIInfo(m *sipmsg.Msg, ri *RURIInfo) {
	if m.Ext == nil {
		m.Ext = map[string]any{}
	}
	if ri == nil {
		delete(m.Ext, ExtRURI)
		return
	}
	m.Ext[ExtRURI] = *ri
}
