package sanity

import (
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/val"
)

// Exports is the module's KEMI export table (as Kamailio 5.6.3's
// sr_kemi_sanity_exports).
func (mod *Module) Exports() []kemi.Export {
	return []kemi.Export{
		{
			Module: "sanity", Name: "sanity_check", Params: kemi.I(2), Ret: kemi.RInt,
			Doc: "run the msg_checks / uri_checks bitmasks: 1 all pass, -1 one failed (error reply sent)",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
				return kemi.RetInt(mod.Check(c, int(a[0].I), int(a[1].I)))
			},
		},
		{
			Module: "sanity", Name: "sanity_check_defaults", Ret: kemi.RInt,
			Doc: "sanity_check with the default_checks and uri_checks modparams",
			Fn: func(c *kemi.Ctx, _ []val.Value) val.Value {
				return kemi.RetInt(mod.CheckDefaults(c))
			},
		},
		{
			Module: "sanity", Name: "sanity_reply", Ret: kemi.RInt,
			Doc: "with noreply=1: send the error reply recorded by the failed check",
			Fn: func(c *kemi.Ctx, _ []val.Value) val.Value {
				return kemi.RetInt(mod.Reply(c))
			},
		},
	}
}
