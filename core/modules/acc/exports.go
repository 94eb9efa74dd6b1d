package acc

import (
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/val"
)

// Exports declares KSR.acc.* (catalog.tsv, module acc).
func (m *Module) Exports() []kemi.Export {
	return []kemi.Export{
		{
			Module: "acc", Name: "acc_log_request", Params: kemi.S(1), Ret: kemi.RInt,
			Doc: `log "ACC: request accounted:" for the current request; comment is "code reason"`,
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
				return kemi.RetInt(m.LogRequest(c, a[0].S))
			},
		},
		{
			Module: "acc", Name: "acc_db_request", Params: kemi.S(2), Ret: kemi.RInt,
			Doc: "store the current request in the given table (queued, written in the background: later database errors are logged); -1 without db_url or on a bad or missing table",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
				return kemi.RetInt(m.DBRequest(c, a[0].S, a[1].S))
			},
		},
		{
			Module: "acc", Name: "acc_request", Params: kemi.S(2), Ret: kemi.RInt,
			Doc: "acc_log_request, then acc_db_request into table when db_url is set",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
				return kemi.RetInt(m.Request(c, a[0].S, a[1].S))
			},
		},
	}
}
