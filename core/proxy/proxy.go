// Package proxy puts kemigo together: it builds the modules and their export
// table, starts the Python workers and the transport, and routes every
// received message through the script on the worker its Call-ID hashes to,
// so one dialog's messages run in order on one worker.
package proxy

import (
	"errors"
	"fmt"
	"hash/maphash"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kemigo/kemigo/core/config"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/metrics"
	"github.com/kemigo/kemigo/core/rpc"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/core/transport"
	"github.com/kemigo/kemigo/pybridge"
	"github.com/rs/zerolog"
)

// Proxy is one running kemigo.
type Proxy struct {
	Cfg     config.Config
	Log     zerolog.Logger
	Mods    *Modules
	Table   *kemi.Table
	Engine  *pybridge.Engine
	TP      *transport.Transport
	Metrics *metrics.Metrics
	RPC     *rpc.Server    // nil until StartControl
	App     *rpc.AppPython // app_python.reload versions
	me      *myselfRef
	native  NativeRoutes
	seed    maphash.Seed
	started time.Time
	stop    chan struct{}
	reloads atomic.Uint64

	// counters (metrics come later)
	Received   atomic.Uint64
	Overloaded atomic.Uint64
	Exceptions atomic.Uint64
}

// Options change how New builds a proxy (tools and route tests).
type Options struct {
	// Capture makes the transport unbound: nothing is opened and every
	// message sent goes to Capture (kemigo test).
	Capture func(msg sip.Message, proto, host string, port int)
	// ExtraExports are added to the export table after the modules'.
	ExtraExports []kemi.Export
	// NoScript starts the workers without loading a script.
	NoScript bool
	// Native replaces the Python script with Go routes (benchmarks of the
	// same logic in Go, and users who want a native route).
	Native NativeRoutes
}

// NativeRoutes is a route script written in Go: Route runs the callback
// named name ("ksr_request_route", "ksr_reply_route", or a name given to
// t_on_*) and reports whether it exists. KEMI functions are reached through
// the export table (kemi.Table.Lookup), the same entry points Python uses.
type NativeRoutes interface {
	Route(c *kemi.Ctx, name, param string) bool
}

// New builds the proxy: modules, export table, Python workers with the
// script loaded, and the listen sockets. Nothing is received before Start.
func New(cfg config.Config, log zerolog.Logger) (*Proxy, error) {
	return NewWith(cfg, log, Options{})
}

// NewWith is New with options.
func NewWith(cfg config.Config, log zerolog.Logger, opt Options) (*Proxy, error) {
	p := &Proxy{Cfg: cfg, Log: log, me: &myselfRef{}, seed: maphash.MakeSeed(), started: time.Now(), stop: make(chan struct{})}
	mods, err := BuildModules(&cfg, p.me, p, log)
	if err != nil {
		return nil, err
	}
	p.Mods = mods
	if cfg.Perms.DBURL != "" {
		// a broken address table stops the start, as in Kamailio
		if err := mods.Perms.Load(); err != nil {
			return nil, fmt.Errorf("permissions: %w", err)
		}
	}
	p.Table = mods.Table()
	p.Table.Register(opt.ExtraExports...)
	p.native = opt.Native
	if opt.Native != nil {
		opt.NoScript = true
	}
	if err := pybridge.Init(p.Table); err != nil {
		return nil, err
	}
	script := cfg.Script()
	if opt.NoScript {
		script = ""
	} else if script == "" {
		return nil, errors.New("no route script: set --script or [app_python3] load")
	}
	var listens []transport.Listen
	for _, l := range cfg.Listen {
		proto, host, port, err := config.ParseListen(l)
		if err != nil {
			return nil, err
		}
		listens = append(listens, transport.Listen{Proto: proto, IP: host, Port: port})
	}
	// Sockets first: mod_init and child_init may already ask is_myself.
	if opt.Capture != nil {
		p.TP = transport.NewUnbound(listens, cfg.Alias, log, opt.Capture)
	} else if p.TP, err = transport.New(listens, cfg.Alias, cfg.TLS, log); err != nil {
		return nil, err
	}
	p.me.me = p.TP
	nets, err := cfg.SendOnlyNets()
	if err != nil {
		p.TP.Close()
		return nil, err
	}
	p.TP.SetSendOnly(nets)
	p.TP.SetMaxHeaders(cfg.MaxHeaders)
	extra := append([]string(nil), cfg.AppPython3.ExtraPaths...)
	if venv := cfg.AppPython3.Virtualenv; venv != "" {
		matches, _ := filepath.Glob(filepath.Join(venv, "lib", "python3*", "site-packages"))
		extra = append(extra, matches...)
	}
	watchdog := time.Duration(cfg.AppPython3.WatchdogTimeout) * time.Millisecond
	if opt.Capture != nil {
		watchdog = 0 // kemigo test runs a whole test session as one job
	}
	p.Engine, err = pybridge.New(pybridge.Options{
		Script:          script,
		Style:           cfg.AppPython3.ScriptStyle,
		ModInit:         cfg.AppPython3.ModInitFunction,
		ChildInit:       cfg.AppPython3.ChildInitMethod,
		Workers:         cfg.Workers,
		Single:          cfg.AppPython3.SingleInterpreter,
		ExtraPaths:      extra,
		QueueLen:        cfg.QueueLen,
		Queued:          cfg.Dispatch == "queued",
		Table:           p.Table,
		WatchdogTimeout: watchdog,
	}, log)
	if err != nil {
		p.TP.Close()
		return nil, err
	}
	p.initMetrics()
	return p, nil
}

// Start begins receiving.
func (p *Proxy) Start() {
	p.Mods.HTable.Start()
	p.Mods.Usrloc.Start()
	p.Mods.Pike.Start()
	p.TP.SetUDPReaders(len(p.Engine.Workers()))
	p.TP.SetUDPBuffer(p.Cfg.MaxBuffer)
	p.TP.Start(p.onMessage)
	if p.Cfg.AppPython3.Watch {
		go p.watchScript(p.stop)
	}
	socks := make([]string, 0, len(p.TP.Sockets()))
	for _, s := range p.TP.Sockets() {
		socks = append(socks, s.String())
	}
	p.Log.Info().Strs("listen", socks).Int("workers", len(p.Engine.Workers())).
		Str("python", pybridge.PyVersion()).Str("mode", p.Engine.Mode()).
		Str("script", p.Cfg.Script()).Msg("kemigo started")
}

// Close stops receiving, then the workers.
func (p *Proxy) Close() {
	close(p.stop)
	if p.RPC != nil {
		p.RPC.Close()
	}
	p.TP.Close()
	p.Engine.Close()
	p.Mods.HTable.Stop()
	p.Mods.Usrloc.Close()
	p.Mods.Pike.Stop()
	_ = p.Mods.Acc.Close()
}

// Uptime is the time since New.
func (p *Proxy) Uptime() time.Duration { return time.Since(p.started) }

// WorkerFor picks the worker of a Call-ID.
func (p *Proxy) WorkerFor(callID string) int {
	n := len(p.Engine.Workers())
	if n == 1 {
		return 0
	}
	return int(maphash.String(p.seed, callID) % uint64(n))
}

// onMessage runs on a transport reader goroutine. A UDP datagram's route
// runs right there when its worker is free (Dispatch; the UDP socket has
// other readers for when it is not); a stream's message is handed to the
// worker's thread, so one slow route never holds a connection's reader.
func (p *Proxy) onMessage(m *sipmsg.Msg) {
	p.Received.Add(1)
	if m.Req != nil {
		p.Metrics.IncRequest(string(m.Req.Method))
	}
	w := p.WorkerFor(m.CallID())
	job := func(wk *pybridge.Worker) {
		t0 := time.Now()
		p.Route(wk, m)
		p.Metrics.AddBusy(wk.ID, time.Since(t0))
	}
	// In-dialog traffic may use the queue's reserve: an overload sheds new
	// calls and registrations, not the BYEs, ACKs and replies of the calls
	// already up (a 503 to a BYE leaves a call half up).
	inDialog := m.Req == nil || m.Req.Method == sip.ACK || m.HasToTag()
	var ok bool
	switch {
	case m.Proto == "udp":
		ok = p.Engine.Dispatch(w, job, m.Placed, inDialog)
	case inDialog:
		ok = p.Engine.SubmitInDialog(w, job)
	default:
		ok = p.Engine.Submit(w, job)
	}
	if !ok {
		p.Overloaded.Add(1)
		p.Metrics.IncOverload()
		// Overload: answer 503 rather than queueing without bound.
		if m.Req != nil && m.Req.Method != sip.ACK {
			res := m.BuildReply(503, "Service Unavailable")
			res.AppendHeader(sip.NewHeader("Retry-After", "5"))
			_ = m.SendReply(res)
		}
	}
}

// Route runs the script for one received message on worker w.
func (p *Proxy) Route(w *pybridge.Worker, m *sipmsg.Msg) {
	c := &kemi.Ctx{Msg: m, Worker: w.State, BranchIdx: -1, Call: p.callFunc(w)}
	c.Log = kemi.MsgLogger(p.Log, w.ID, m.CallID())
	if m.Req != nil {
		c.Route = kemi.RouteRequest
		r := p.run(w, c, "ksr_request_route", "")
		p.after(c, "ksr_request_route", r)
		p.Mods.TM.AfterRoute(c)
		return
	}
	c.Route = kemi.RouteReply
	name := p.Cfg.KEMI.ReplyRouteCallback
	if name != "" && name != "none" {
		r := p.run(w, c, name, "")
		if r.Status != pybridge.RouteMissing {
			p.after(c, name, r)
		}
	}
	if c.Drop {
		return
	}
	if !p.Mods.TM.HandleReply(c) {
		p.forwardReply(c)
	}
}

// run runs one route callback: the Python script's, or the native one.
func (p *Proxy) run(w *pybridge.Worker, c *kemi.Ctx, name, param string) pybridge.RouteResult {
	if p.native == nil {
		return w.CallRoute(c, name, param)
	}
	t0 := time.Now()
	if !p.native.Route(c, name, param) {
		return pybridge.RouteResult{Status: pybridge.RouteMissing}
	}
	return pybridge.RouteResult{Status: pybridge.RouteOK, Duration: time.Since(t0)}
}

// callFunc runs callbacks named at run time (branch, onreply, failure,
// onsend) on worker w; errors are logged like any route's.
func (p *Proxy) callFunc(w *pybridge.Worker) kemi.CallFunc {
	return func(c *kemi.Ctx, route, param string) bool {
		if c.Call == nil {
			c.Call = p.callFunc(w)
		}
		r := p.run(w, c, route, param)
		if r.Status == pybridge.RouteMissing {
			c.Log.Debug().Str("route", route).Msg("callback not found")
			return false
		}
		p.after(c, route, r)
		return true
	}
}

// Exec runs fn on worker i (tm timers); it waits for room in the queue.
func (p *Proxy) Exec(i int, fn func(call kemi.CallFunc, ws *kemi.WorkerState)) {
	p.Engine.SubmitWait(i, func(w *pybridge.Worker) { fn(p.callFunc(w), w.State) })
}

// SendTo sends from a local socket of proto.
func (p *Proxy) SendTo(msg sip.Message, proto, host string, port int) error {
	return p.TP.SendTo(msg, proto, host, port)
}

// LocalAddr is the address of the socket used to send over proto.
func (p *Proxy) LocalAddr(proto string) (string, int, bool) {
	s := p.TP.Socket(proto)
	if s == nil {
		return "", 0, false
	}
	return s.IP, s.Port, true
}

// IsMyself reports whether an address is one of ours.
func (p *Proxy) IsMyself(host string, port int, proto string) bool {
	return p.me.IsMyself(host, port, proto)
}

// Logger returns the base logger.
func (p *Proxy) Logger() zerolog.Logger { return p.Log }

// after logs what a route left behind and applies the error-reply policy.
func (p *Proxy) after(c *kemi.Ctx, name string, r pybridge.RouteResult) {
	m := c.Msg
	p.Metrics.ObserveRoute(name, r.Duration)
	if r.Status == pybridge.RouteExc {
		p.Metrics.IncException(name)
	}
	switch r.Status {
	case pybridge.RouteMissing:
		if c.Route == kemi.RouteRequest {
			c.Log.Error().Str("route", name).Msg(name + " not found or is not callable")
		}
	case pybridge.RouteExit:
		c.Log.Debug().Str("route", name).Msg("route ended by sys.exit()")
	case pybridge.RouteExc:
		p.Exceptions.Add(1)
		c.Log.Error().Str("route", name).Str("file", r.Err.File).Int("line", r.Err.Line).
			Str("traceback", r.Err.Text).
			Msg(fmt.Sprintf("%s: unhandled exception in the Python code at %s:%d", name, r.Err.File, r.Err.Line))
		code := p.Cfg.AppPython3.ErrorReply
		if code > 0 && c.Route == kemi.RouteRequest && m.Req != nil && m.Replied == 0 && !m.Relayed && !m.NoReply && m.Req.Method != sip.ACK {
			if err := m.Reply(code, reasonFor(code)); err != nil {
				c.Log.Warn().Err(err).Msg("error reply not sent")
			}
		}
	}
	p.Mods.HTable.UnlockAll(c.Worker.ID)
}

func reasonFor(code int) string {
	if code == 500 {
		return "Server Internal Error"
	}
	return "Server Error"
}

// forwardReply relays a reply with no transaction statelessly: the top Via
// must be ours; it goes to the next Via (RFC 3261 §16.7 step 9 without tm).
func (p *Proxy) forwardReply(c *kemi.Ctx) {
	res := c.Msg.Res
	vias := res.GetHeaders("Via")
	if len(vias) < 2 {
		return
	}
	top, ok := vias[0].(*sip.ViaHeader)
	if !ok || !p.TP.IsMyself(top.Host, top.Port, "") {
		c.Log.Debug().Msg("reply whose top Via is not ours dropped")
		return
	}
	next, ok := vias[1].(*sip.ViaHeader)
	if !ok {
		return
	}
	out := res.Clone()
	out.RemoveHeader("Via")
	c.Msg.ApplyEdits(out)
	host, port := next.Host, next.Port
	if r, ok := next.Params.Get("received"); ok && r != "" {
		host = r
	}
	if rp, ok := next.Params.Get("rport"); ok && rp != "" {
		fmt.Sscanf(rp, "%d", &port)
	}
	if port == 0 {
		port = 5060
	}
	proto := strings.ToLower(next.Transport)
	if err := p.TP.SendTo(out, proto, host, port); err != nil {
		c.Log.Warn().Err(err).Msg("reply not forwarded")
	}
}

// Reload re-imports the script in every worker (app_python.reload).
func (p *Proxy) Reload() error {
	if _, err := os.Stat(p.Cfg.Script()); err != nil {
		return err
	}
	if err := p.Engine.Reload(p.Cfg.Script()); err != nil {
		return err
	}
	p.reloads.Add(1)
	return nil
}

// Reloads counts successful reloads (app_python.reload's version).
func (p *Proxy) Reloads() uint64 { return p.reloads.Load() }
