package proxy

import (
	"github.com/kemigo/kemigo/core/config"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/modules/acc"
	"github.com/kemigo/kemigo/core/modules/auth"
	"github.com/kemigo/kemigo/core/modules/auth_db"
	"github.com/kemigo/kemigo/core/modules/corex"
	"github.com/kemigo/kemigo/core/modules/htable"
	"github.com/kemigo/kemigo/core/modules/ksr"
	"github.com/kemigo/kemigo/core/modules/kx"
	"github.com/kemigo/kemigo/core/modules/maxfwd"
	"github.com/kemigo/kemigo/core/modules/nathelper"
	"github.com/kemigo/kemigo/core/modules/permissions"
	"github.com/kemigo/kemigo/core/modules/pike"
	"github.com/kemigo/kemigo/core/modules/registrar"
	"github.com/kemigo/kemigo/core/modules/rr"
	"github.com/kemigo/kemigo/core/modules/rtpengine"
	"github.com/kemigo/kemigo/core/modules/rtpproxy"
	"github.com/kemigo/kemigo/core/modules/sanity"
	"github.com/kemigo/kemigo/core/modules/siputils"
	"github.com/kemigo/kemigo/core/modules/sl"
	"github.com/kemigo/kemigo/core/modules/tm"
	"github.com/kemigo/kemigo/core/modules/usrloc"
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/rs/zerolog"
)

// Myself answers "is this address mine"; the transport implements it.
type Myself interface {
	IsMyself(host string, port int, proto string) bool
}

// Modules holds every module instance of one proxy.
type Modules struct {
	KSR       *ksr.Module
	Corex     *corex.Module
	HTable    *htable.Module
	KX        *kx.Module
	MaxFwd    *maxfwd.Module
	Sanity    *sanity.Module
	SipUtils  *siputils.Module
	SL        *sl.Module
	TM        *tm.Module
	RR        *rr.Module
	Auth      *auth.Module
	AuthDB    *auth_db.Module
	Perms     *permissions.Module
	Usrloc    *usrloc.Module
	Registrar *registrar.Module
	NATHelper *nathelper.Module
	Pike      *pike.Module
	Acc       *acc.Module
	RTPProxy  *rtpproxy.Module
	RTPEngine *rtpengine.Module
}

// myselfRef lets the modules be built (and the export table fixed) before
// the transport exists: the table must be known when Python starts.
type myselfRef struct{ me Myself }

func (r *myselfRef) IsMyself(host string, port int, proto string) bool {
	if r.me == nil {
		return false
	}
	return r.me.IsMyself(host, port, proto)
}

// BuildModules creates the modules from the configuration.
func BuildModules(cfg *config.Config, me *myselfRef, env tm.Env, log zerolog.Logger) (*Modules, error) {
	var err error
	m := &Modules{}
	m.KSR = ksr.New(me)
	m.Corex = corex.New(cfg.Corex)
	if m.HTable, err = htable.New(cfg.HTable, htable.WithLogger(log)); err != nil {
		return nil, err
	}
	m.KX = kx.New(cfg.KX)
	if m.MaxFwd, err = maxfwd.New(cfg.MaxFwd); err != nil {
		return nil, err
	}
	m.Sanity = sanity.New(cfg.Sanity)
	m.SipUtils = siputils.New(cfg.SipUtils, me)
	m.SL = sl.New(cfg.SL)
	m.TM = tm.New(cfg.TM, env)
	m.TM.SetOnsendRoute(cfg.KEMI.OnsendRouteCallback)
	m.SL.SetStateful(m.TM)
	if m.RR, err = rr.New(cfg.RR, me); err != nil {
		return nil, err
	}
	m.TM.AddForwardHook(m.RR.OnForward)
	if m.Auth, err = auth.New(cfg.Auth); err != nil {
		return nil, err
	}
	m.Auth.SetReplier(m.SL.SendReplyStateful, m.SL.SendReply)
	if m.AuthDB, err = auth_db.New(cfg.AuthDB, m.Auth); err != nil {
		return nil, err
	}
	if m.Perms, err = permissions.New(cfg.Perms); err != nil {
		return nil, err
	}
	if m.Usrloc, err = usrloc.New(cfg.Usrloc, usrloc.WithLogger(log)); err != nil {
		return nil, err
	}
	if m.Registrar, err = registrar.New(cfg.Registrar, m.Usrloc); err != nil {
		return nil, err
	}
	m.Registrar.SetStateful(m.TM)
	if m.NATHelper, err = nathelper.New(cfg.NATHelper); err != nil {
		return nil, err
	}
	if m.Pike, err = pike.New(cfg.Pike, pike.WithLogger(log)); err != nil {
		return nil, err
	}
	if m.Acc, err = acc.New(cfg.Acc, acc.WithLogger(log)); err != nil {
		return nil, err
	}
	m.TM.AddFinalHook(m.Acc.FinalHook)
	m.TM.AddFailureHook(m.Acc.OnFailure)
	txReq := func(c *kemi.Ctx) *sipmsg.Msg {
		if tx, ok := c.Tx.(*tm.Tx); ok && tx != nil {
			return tx.Req
		}
		return nil
	}
	if m.RTPProxy, err = rtpproxy.New(cfg.RTPProxy, rtpproxy.WithLogger(log), rtpproxy.WithTxRequest(txReq)); err != nil {
		return nil, err
	}
	if m.RTPEngine, err = rtpengine.New(cfg.RTPEngine, rtpengine.WithLogger(log), rtpengine.WithTxRequest(txReq)); err != nil {
		return nil, err
	}
	return m, nil
}

// Table builds the KEMI export table from the modules, in a fixed order.
func (m *Modules) Table() *kemi.Table {
	t := kemi.NewTable()
	t.Register(m.KSR.Exports()...)
	t.Register(m.Corex.Exports()...)
	t.Register(m.HTable.Exports()...)
	t.Register(m.KX.Exports()...)
	t.Register(m.MaxFwd.Exports()...)
	t.Register(m.Sanity.Exports()...)
	t.Register(m.SipUtils.Exports()...)
	t.Register(m.SL.Exports()...)
	t.Register(m.TM.Exports()...)
	t.Register(m.RR.Exports()...)
	t.Register(m.Auth.Exports()...)
	t.Register(m.AuthDB.Exports()...)
	t.Register(m.Perms.Exports()...)
	t.Register(m.Registrar.Exports()...)
	t.Register(m.NATHelper.Exports()...)
	t.Register(m.Pike.Exports()...)
	t.Register(m.Acc.Exports()...)
	t.Register(m.RTPProxy.Exports()...)
	t.Register(m.RTPEngine.Exports()...)
	return t
}

// ExportTable returns the export table of a default configuration (stubs,
// docs, script check).
func ExportTable() *kemi.Table {
	cfg := config.Default()
	m, err := BuildModules(&cfg, &myselfRef{}, nil, zerolog.Nop())
	if err != nil {
		panic(err)
	}
	return m.Table()
}
