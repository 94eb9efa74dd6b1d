package pike

import (
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/val"
)

// Exports declares KSR.pike.* (catalog.tsv, module pike).
func (m *Module) Exports() []kemi.Export {
	return []kemi.Export{
		{
			Module: "pike", Name: "pike_check_req", Ret: kemi.RInt,
			Doc: "count the request against its source IP: 1 allowed, -2 flood detected now, -1 still blocked",
			Fn: func(c *kemi.Ctx, _ []val.Value) val.Value {
				return kemi.RetInt(m.CheckReq(c))
			},
		},
		{
			Module: "pike", Name: "pike_check_ip", Params: kemi.S(1), Ret: kemi.RInt,
			Doc: "count a request against the given IP: 1 allowed, -2 flood detected now, -1 still blocked or bad IP",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
				return kemi.RetInt(m.CheckIP(c, a[0].S))
			},
		},
	}
}
