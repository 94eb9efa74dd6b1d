package auth

import (
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/pv"
	"github.com/kemigo/kemigo/core/val"
)

// Exports declares KSR.auth.* (catalog.tsv, module auth). Realms may
// contain pseudo-variables ("$fd"); they are expanded first.
func (m *Module) Exports() []kemi.Export {
	x := func(name, params, doc string, fn kemi.Func) kemi.Export {
		return kemi.Export{Module: "auth", Name: name, Params: kemi.P(params), Ret: kemi.RInt, Doc: doc, Fn: fn}
	}
	return []kemi.Export{
		x("auth_challenge", "si", "send 401 (REGISTER) / 407 with a Digest challenge; flags 1 qop=auth, 2 qop=auth-int, 16 stale; 1 or negative",
			func(c *kemi.Ctx, a []val.Value) val.Value {
				return kemi.RetInt(m.AuthChallenge(c, pv.Expand(c, a[0].S), int(a[1].I)))
			}),
		x("consume_credentials", "", "queue removal of the checked credentials header; 1, -1 if none was checked",
			func(c *kemi.Ctx, _ []val.Value) val.Value { return kemi.RetInt(m.ConsumeCredentials(c)) }),
		x("has_credentials", "s", "1 if the request has Digest credentials for the realm, else -1",
			func(c *kemi.Ctx, a []val.Value) val.Value {
				return kemi.RetInt(m.HasCredentials(c, pv.Expand(c, a[0].S)))
			}),
		x("pv_auth_check", "ssii", "Digest check against the given password (flags 1: it is HA1); checks 1: identity; 1 or -1..-8",
			func(c *kemi.Ctx, a []val.Value) val.Value {
				return kemi.RetInt(m.PVAuthCheck(c, pv.Expand(c, a[0].S), a[1].S, int(a[2].I), int(a[3].I)))
			}),
	}
}
