package proxy

import "github.com/kemigo/kemigo/core/rpc"

// registerModuleRPC registers the RPC methods of modules that have them
// (usrloc, permissions, ...).
func (p *Proxy) registerModuleRPC(srv *rpc.Server) {
	rpc.RegisterPermissions(srv, p.Mods.Perms.Reload, func() any { return p.Mods.Perms.Addresses() })
}
