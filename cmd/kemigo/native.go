package main

import (
	"github.com/kemigo/kemigo/core/config"
	"github.com/kemigo/kemigo/core/proxy"
	"github.com/kemigo/kemigo/examples/native"
	"github.com/rs/zerolog"
)

// nativeRoutes builds the native Go route set name (`kemigo run --native
// NAME`) on the export table of p. It runs between the two phases of
// proxy.NewNative: the table exists, nothing has been received yet.
func nativeRoutes(name string, p *proxy.Proxy) (proxy.NativeRoutes, error) {
	return native.New(name, p.Table)
}

// newProxy builds the proxy of `kemigo run`: routed by the Python script of
// cfg, or, when nativeName is not empty, by that native Go route set (the
// script is then not loaded; [app_python3] load may stay in the config).
func newProxy(cfg config.Config, log zerolog.Logger, nativeName string) (*proxy.Proxy, error) {
	if nativeName == "" {
		return proxy.New(cfg, log)
	}
	return proxy.NewNative(cfg, log, proxy.Options{}, func(p *proxy.Proxy) (proxy.NativeRoutes, error) {
		return nativeRoutes(nativeName, p)
	})
}
