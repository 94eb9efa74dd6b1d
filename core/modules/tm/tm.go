// Package tm is kemigo's transaction layer, Kamailio's tm and tmx: server
// and client transactions (RFC 3261 §17) with retransmissions and timers,
// parallel and serial forking, reply aggregation (§16.7), CANCEL, and the
// branch, onreply and failure callbacks kept by name so they run on the
// transaction's worker after the request route has returned, from whatever
// script is loaded by then.
package tm

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/rs/zerolog"
)

// Kamailio error codes tm returns (error.h).
const (
	EUnspec     = -1
	EOutOfMem   = -2
	ECfg        = -6
	EBadReq     = -400
	ESend       = -477
	EBadAddress = -478
	EBadURI     = -479
	EScript     = -10 // transaction already exists in this route
)

// Env is what tm needs from the proxy.
type Env interface {
	// Exec runs fn on worker w's thread, with a CallFunc for Python callbacks.
	Exec(worker int, fn func(call kemi.CallFunc, ws *kemi.WorkerState))
	// Send sends a message from a local socket of proto to host:port.
	SendTo(msg sip.Message, proto, host string, port int) error
	// LocalAddr returns the IP and port of the socket used to send over proto.
	LocalAddr(proto string) (ip string, port int, ok bool)
	// IsMyself reports whether an address is this proxy.
	IsMyself(host string, port int, proto string) bool
	// Log is the base logger.
	Logger() zerolog.Logger
}

// ForwardHook changes each outgoing branch request (rr adds Record-Route).
type ForwardHook func(c *kemi.Ctx, out *sip.Request, in *sipmsg.Msg, proto, ip string, port int)

// FinalHook sees every transaction's final reply (acc).
type FinalHook func(c *kemi.Ctx, req *sipmsg.Msg, code int, reason string, res *sip.Response)

// Module is the transaction layer.
type Module struct {
	cfg            Config
	env            Env
	log            zerolog.Logger
	mu             sync.Mutex
	server         map[string]*Tx     // server transactions by key
	client         map[string]*branch // client branches by Via branch
	precheck       map[string]int     // tmx.t_precheck_trans marks
	onForward      []ForwardHook
	onFinal        []FinalHook
	onFailureHooks []FailureHook
	onsend         string // onsend route callback name ("" or "none": off)
	active         atomic.Int64
	created        atomic.Uint64
	stats          Stats
	idPrefix       string
	seq            atomic.Uint64
}

// Stats counts transactions (tm.stats).
type Stats struct {
	Created, Completed, Replied2xx, Replied3xx, Replied4xx, Replied5xx, Replied6xx, RelayedLocal atomic.Uint64
}

// New builds the module.
func New(cfg Config, env Env) *Module {
	var b [6]byte
	_, _ = rand.Read(b[:])
	if cfg.WaitTimerOld > 0 {
		cfg.WaitTimer = cfg.WaitTimerOld
	}
	m := &Module{cfg: cfg, env: env, server: map[string]*Tx{}, client: map[string]*branch{},
		precheck: map[string]int{}, idPrefix: hex.EncodeToString(b[:])}
	if env != nil {
		m.log = env.Logger()
	}
	return m
}

// SetOnsendRoute names the onsend route (kemi.onsend_route_callback).
func (m *Module) SetOnsendRoute(name string) {
	if name == "none" {
		name = ""
	}
	m.onsend = name
}

// AddForwardHook registers a hook run on every outgoing branch request.
func (m *Module) AddForwardHook(h ForwardHook) { m.onForward = append(m.onForward, h) }

// AddFinalHook registers a hook run once per transaction with its final reply.
func (m *Module) AddFinalHook(h FinalHook) { m.onFinal = append(m.onFinal, h) }

// Active is the number of live transactions (tests, metrics).
func (m *Module) Active() int64 { return m.active.Load() }

// StatsSnapshot returns counters for tm.stats.
func (m *Module) StatsSnapshot() map[string]any {
	return map[string]any{
		"current": m.active.Load(), "total": m.created.Load(), "total_local": m.stats.RelayedLocal.Load(),
		"2xx": m.stats.Replied2xx.Load(), "3xx": m.stats.Replied3xx.Load(), "4xx": m.stats.Replied4xx.Load(),
		"5xx": m.stats.Replied5xx.Load(), "6xx": m.stats.Replied6xx.Load(),
	}
}

func (m *Module) t1() time.Duration { return time.Duration(m.cfg.RetrTimer1) * time.Millisecond }
func (m *Module) t2() time.Duration { return time.Duration(m.cfg.RetrTimer2) * time.Millisecond }

// Tx is one server transaction with its client branches.
type Tx struct {
	mod      *Module
	key      string
	Req      *sipmsg.Msg // the request as received, with its routing state
	worker   int
	method   string
	isInvite bool
	// callbacks by name, looked up on the handler when they fire
	onBranch, onReply, onFailure, onBranchFailure string
	branches                                      []*branch
	lastReply                                     *sip.Response // last reply sent upstream
	finalCode                                     int
	final                                         bool // a final reply went upstream
	answered                                      bool // a 2xx went upstream
	canceled                                      bool
	inFailure                                     bool
	frTimer, frInvTimer                           time.Duration
	gTimer, hTimer, waitTimer                     *time.Timer
	done                                          bool
	delayedErr                                    int  // t_relay failed; reply when the route ends
	noAutoReply                                   bool // a route replied or relayed after the error
	id                                            string
	nbranch                                       int
	local100                                      bool
	acked                                         bool
}

type branch struct {
	tx         *Tx
	idx        int
	id         string // our Via branch
	req        *sip.Request
	wire       []byte
	proto      string
	host       string
	port       int
	uri        string
	flags      uint32
	provisonal bool
	finalCode  int
	reply      *sip.Response // final reply received (or local 408)
	retrTimer  *time.Timer
	frTimer    *time.Timer
	retrIntv   time.Duration
	cancelled  bool // CANCEL sent
	wantCancel bool // CANCEL when the first provisional arrives
	timedOut   bool
	// the CANCEL of this branch: its Reason (kept while it waits for a
	// provisional), the request (resent on provisionals and over UDP
	// until answered) and its retransmission timer
	cancelReason   string
	cancelReq      *sip.Request
	cancelRetr     *time.Timer
	cancelIntv     time.Duration
	cancelAnswered bool
}

// txKey computes the server transaction key of a request (RFC 3261
// §17.2.3; ACK matches its INVITE).
func txKey(req *sip.Request) string {
	method := string(req.Method)
	if method == "ACK" {
		method = "INVITE"
	}
	v := req.Via()
	if v == nil {
		return ""
	}
	br, _ := v.Params.Get("branch")
	if strings.HasPrefix(br, "z9hG4bK") {
		return br + "|" + v.Host + ":" + strconv.Itoa(v.Port) + "|" + method
	}
	// RFC 2543 fallback: Call-ID, From tag, CSeq number, top Via.
	var ft string
	if f := req.From(); f != nil {
		ft, _ = f.Params.Get("tag")
	}
	var cs uint32
	if c := req.CSeq(); c != nil {
		cs = c.SeqNo
	}
	cid := ""
	if c := req.CallID(); c != nil {
		cid = string(*c)
	}
	return "2543|" + cid + "|" + ft + "|" + strconv.FormatUint(uint64(cs), 10) + "|" + v.Host + ":" + strconv.Itoa(v.Port) + "|" + br + "|" + method
}

// lookup finds the server transaction of a request.
func (m *Module) lookup(req *sip.Request) *Tx {
	k := txKey(req)
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.server[k]
}

// lookupInvite finds the INVITE transaction a CANCEL refers to.
func (m *Module) lookupInvite(req *sip.Request) *Tx {
	k := txKey(req)
	k = strings.TrimSuffix(k, "|CANCEL") + "|INVITE"
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.server[k]
}

// txOf returns the transaction of the context: the one bound to it, or
// the one its request belongs to.
func (m *Module) txOf(c *kemi.Ctx) *Tx {
	if tx, ok := c.Tx.(*Tx); ok && tx != nil {
		return tx
	}
	if c.Msg == nil || c.Msg.Req == nil || c.Msg.Faked {
		return nil
	}
	if c.Msg.Req.Method == sip.ACK || c.Msg.Req.Method == sip.CANCEL {
		return nil
	}
	tx := m.lookup(c.Msg.Req)
	if tx != nil && tx.Req == c.Msg {
		return tx
	}
	return nil
}

// newTx creates and registers the server transaction of c's request.
func (m *Module) newTx(c *kemi.Ctx) (*Tx, bool) {
	req := c.Msg.Req
	k := txKey(req)
	m.mu.Lock()
	if old := m.server[k]; old != nil {
		m.mu.Unlock()
		return old, false
	}
	tx := &Tx{mod: m, key: k, Req: c.Msg, worker: c.Worker.ID, method: string(req.Method),
		isInvite: req.Method == sip.INVITE,
		frTimer:  time.Duration(m.cfg.FrTimer) * time.Millisecond, frInvTimer: time.Duration(m.cfg.FrInvTimer) * time.Millisecond,
		id: m.idPrefix + strconv.FormatUint(m.seq.Add(1), 36)}
	if pend, ok := c.Msg.Ext["tm.pending"].(*pending); ok {
		tx.onBranch, tx.onReply, tx.onFailure, tx.onBranchFailure = pend.onBranch, pend.onReply, pend.onFailure, pend.onBranchFailure
		if pend.fr > 0 {
			tx.frTimer = pend.fr
		}
		if pend.frInv > 0 {
			tx.frInvTimer = pend.frInv
		}
	}
	m.server[k] = tx
	m.mu.Unlock()
	m.active.Add(1)
	m.created.Add(1)
	c.Tx = tx
	return tx, true
}

// pending holds t_on_* names and t_set_fr values set before the
// transaction exists.
type pending struct {
	onBranch, onReply, onFailure, onBranchFailure string
	fr, frInv                                     time.Duration
}

func pendingOf(c *kemi.Ctx) *pending {
	if c.Msg.Ext == nil {
		c.Msg.Ext = map[string]any{}
	}
	p, ok := c.Msg.Ext["tm.pending"].(*pending)
	if !ok {
		p = &pending{}
		c.Msg.Ext["tm.pending"] = p
	}
	return p
}

// release removes a finished transaction.
func (tx *Tx) release() {
	if tx.done {
		return
	}
	tx.done = true
	m := tx.mod
	m.mu.Lock()
	if m.server[tx.key] == tx {
		delete(m.server, tx.key)
	}
	for _, b := range tx.branches {
		if m.client[b.id] == b {
			delete(m.client, b.id)
		}
		b.stopTimers()
	}
	m.mu.Unlock()
	for _, t := range []*time.Timer{tx.gTimer, tx.hTimer, tx.waitTimer} {
		if t != nil {
			t.Stop()
		}
	}
	m.active.Add(-1)
	m.stats.Completed.Add(1)
}

func (b *branch) stopTimers() {
	if b.retrTimer != nil {
		b.retrTimer.Stop()
	}
	if b.frTimer != nil {
		b.frTimer.Stop()
	}
	if b.cancelRetr != nil {
		b.cancelRetr.Stop()
	}
}

// after runs fn on the transaction's worker after d.
func (tx *Tx) after(d time.Duration, fn func(call kemi.CallFunc, ws *kemi.WorkerState)) *time.Timer {
	return time.AfterFunc(d, func() { tx.mod.env.Exec(tx.worker, fn) })
}

// ctx builds a context for a callback of this transaction.
func (tx *Tx) ctx(msg *sipmsg.Msg, route kemi.RouteType, call kemi.CallFunc, ws *kemi.WorkerState, bidx int) *kemi.Ctx {
	return &kemi.Ctx{Msg: msg, Route: route, Worker: ws, BranchIdx: bidx, Tx: tx, Call: call,
		Log: kemi.MsgLogger(tx.mod.log, tx.worker, tx.Req.CallID())}
}
