package maxfwd

import (
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/val"
)

// Exports is the module's KEMI export table (as Kamailio 5.6.3's
// sr_kemi_maxfwd_exports).
func (mod *Module) Exports() []kemi.Export {
	return []kemi.Export{
		{
			Module: "maxfwd", Name: "process_maxfwd", Params: kemi.I(1), Ret: kemi.RInt,
			Doc: "decrement Max-Forwards (1), add it with value limit (2); -1 when it is 0",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
				return kemi.RetInt(mod.ProcessMaxfwd(c.Msg, int(a[0].I)))
			},
		},
		{
			Module: "maxfwd", Name: "is_maxfwd_lt", Params: kemi.I(1), Ret: kemi.RInt,
			Doc: "1 if Max-Forwards is lower than limit; -1 if not, -2 no header, -3 bad value",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
				return kemi.RetInt(IsMaxfwdLt(c.Msg, int(a[0].I)))
			},
		},
	}
}
