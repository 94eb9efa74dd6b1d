package rr

import (
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/val"
)

// Exports is the module's KEMI export table (as Kamailio 5.6.3's
// sr_kemi_rr_exports).
func (mod *Module) Exports() []kemi.Export {
	ret := kemi.RetInt
	return []kemi.Export{
		{
			Module: "rr", Name: "record_route", Ret: kemi.RInt,
			Doc: "queue this proxy's Record-Route (written per outgoing socket); -1 if already done",
			Fn: func(c *kemi.Ctx, _ []val.Value) val.Value {
				return ret(mod.RecordRoute(c, ""))
			},
		},
		{
			Module: "rr", Name: "record_route_params", Params: kemi.S(1), Ret: kemi.RInt,
			Doc: "record_route with params (\";k=v\") appended to the Record-Route URI",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
				return ret(mod.RecordRoute(c, a[0].S))
			},
		},
		{
			Module: "rr", Name: "loose_route", Ret: kemi.RInt,
			Doc: "route by the Route headers: 1 routed, -1 no route set, -3 only our Route on an initial request",
			Fn: func(c *kemi.Ctx, _ []val.Value) val.Value {
				return ret(mod.LooseRoute(c, 0))
			},
		},
		{
			Module: "rr", Name: "loose_route_preloaded", Ret: kemi.RInt,
			Doc: "loose_route; 1 only when it returned -3 (preloaded Route to this proxy), else -1",
			Fn: func(c *kemi.Ctx, _ []val.Value) val.Value {
				if mod.LooseRoute(c, 0) == rrPreloaded {
					return ret(1)
				}
				return ret(-1)
			},
		},
		{
			Module: "rr", Name: "loose_route_mode", Params: kemi.I(1), Ret: kemi.RInt,
			Doc: "loose_route; mode != 0 skips strict-router handling when the R-URI is this proxy",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
				return ret(mod.LooseRoute(c, int(a[0].I)))
			},
		},
		{
			Module: "rr", Name: "remove_record_route", Ret: kemi.RInt,
			Doc: "drop the Record-Route headers queued for the message; 1",
			Fn: func(c *kemi.Ctx, _ []val.Value) val.Value {
				return ret(mod.RemoveRecordRoute(c))
			},
		},
		{
			Module: "rr", Name: "add_rr_param", Params: kemi.S(1), Ret: kemi.RInt,
			Doc: "add a parameter (\";k=v\") to this proxy's Record-Route, before or after record_route",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
				return ret(mod.AddRRParam(c, a[0].S))
			},
		},
		{
			Module: "rr", Name: "check_route_param", Params: kemi.S(1), Ret: kemi.RInt,
			Doc: "1 if the params of the Route that pointed to this proxy match the regex (case-insensitive)",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
				return ret(mod.CheckRouteParam(c, a[0].S))
			},
		},
		{
			Module: "rr", Name: "is_direction", Params: kemi.S(1), Ret: kemi.RInt,
			Doc: "1 if the request flows \"downstream\" / \"upstream\" (by the ftag Route param), -1 if not",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
				return ret(mod.IsDirection(c, a[0].S))
			},
		},
		{
			Module: "rr", Name: "record_route_preset_one", Params: kemi.S(1), Ret: kemi.RInt,
			Doc: "queue Record-Route <sip:addr;...;lr> with the given address",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
				return ret(mod.RecordRoutePresetOne(c, a[0].S))
			},
		},
		{
			Module: "rr", Name: "record_route_preset", Params: kemi.S(2), Ret: kemi.RInt,
			Doc: "queue Record-Route with addr1, and a second with addr2 when not empty",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
				return ret(mod.RecordRoutePreset(c, a[0].S, a[1].S))
			},
		},
		{
			Module: "rr", Name: "record_route_advertised_address", Params: kemi.S(1), Ret: kemi.RInt,
			Doc: "record_route with the given host[:port] in place of the socket address",
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value {
				return ret(mod.RecordRouteAdvertised(c, a[0].S))
			},
		},
		{
			Module: "rr", Name: "next_hop_route", Ret: kemi.RInt,
			Doc: "1 if loose_route took the next hop from a Route header after ours, else -1",
			Fn: func(c *kemi.Ctx, _ []val.Value) val.Value {
				return ret(mod.NextHopRoute(c))
			},
		},
	}
}
