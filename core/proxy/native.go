package proxy

import (
	"errors"

	"github.com/kemigo/kemigo/core/config"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/rs/zerolog"
)

// NativeBuilder makes the Go routes of a proxy once its export table exists:
// a native route resolves its KEMI functions from p.Table (the same entry
// points Python uses) once, before any message is received.
type NativeBuilder func(p *Proxy) (NativeRoutes, error)

// pendingNative stands in for the Go routes while NewWith runs: it makes
// NewWith start the workers without a script, and answers "no such route"
// (nothing can be received before Start).
type pendingNative struct{}

func (pendingNative) Route(*kemi.Ctx, string, string) bool { return false }

// NewNative builds a proxy routed by Go code in two phases: NewWith builds
// the modules, the export table, the workers (no script) and the sockets;
// then build gets the proxy, so it can look its functions up in p.Table,
// and what it returns becomes the routes. Nothing is received before Start.
// opt.Native and opt.NoScript are ignored.
func NewNative(cfg config.Config, log zerolog.Logger, opt Options, build NativeBuilder) (*Proxy, error) {
	if build == nil {
		return nil, errors.New("proxy: NewNative needs a builder")
	}
	opt.Native = pendingNative{}
	p, err := NewWith(cfg, log, opt)
	if err != nil {
		return nil, err
	}
	r, err := build(p)
	if err == nil && r == nil {
		err = errors.New("proxy: native route builder returned no routes")
	}
	if err != nil {
		p.Close()
		return nil, err
	}
	p.native = r
	return p, nil
}

// Native returns the Go routes of the proxy, or nil when a Python script
// routes it.
func (p *Proxy) Native() NativeRoutes {
	if _, ok := p.native.(pendingNative); ok {
		return nil
	}
	return p.native
}
