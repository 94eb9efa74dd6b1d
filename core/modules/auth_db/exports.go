package auth_db

import (
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/pv"
	"github.com/kemigo/kemigo/core/val"
)

// Exports declares KSR.auth_db.* (catalog.tsv, module auth_db). Realms
// and URIs may contain pseudo-variables; they are expanded first.
func (m *Module) Exports() []kemi.Export {
	x := func(name, params, doc string, fn kemi.Func) kemi.Export {
		return kemi.Export{Module: "auth_db", Name: name, Params: kemi.P(params), Ret: kemi.RInt, Doc: doc, Fn: fn}
	}
	return []kemi.Export{
		x("auth_check", "ssi", "Digest check against the table (Authorization for REGISTER, else Proxy-Authorization); flags 1 identity, 2 skip it for INVITE/BYE/PRACK/UPDATE/MESSAGE; 1 or -1..-8",
			func(c *kemi.Ctx, a []val.Value) val.Value {
				return kemi.RetInt(m.AuthCheck(c, pv.Expand(c, a[0].S), a[1].S, int(a[2].I)))
			}),
		x("is_subscriber", "ssi", "1 if the URI's user (flags 1: and domain) is in the table (flags 2: do not load credentials); -1 error, -2 not found",
			func(c *kemi.Ctx, a []val.Value) val.Value {
				return kemi.RetInt(m.IsSubscriber(c, pv.Expand(c, a[0].S), a[1].S, int(a[2].I)))
			}),
	}
}
