package rtpproxy

import (
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/val"
)

// Exports declares KSR.rtpproxy.* (catalog.tsv, module rtpproxy).
func (m *Module) Exports() []kemi.Export {
	x := func(name, params string, doc string, fn kemi.Func) kemi.Export {
		return kemi.Export{Module: "rtpproxy", Name: name, Params: kemi.P(params), Ret: kemi.RInt, Doc: doc, Fn: fn}
	}
	r := kemi.RetInt
	return []kemi.Export{
		x("rtpproxy_manage", "s", "offer, answer or destroy as the message requires; 1, -1",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.Manage(c, a[0].S, "")) }),
		x("rtpproxy_manage0", "", "rtpproxy_manage without flags",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.Manage(c, "", "")) }),
		x("rtpproxy_manage_ip", "ss", "rtpproxy_manage with a forced media address",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.Manage(c, a[0].S, a[1].S)) }),
		x("rtpproxy_offer", "s", "create the media session and rewrite the SDP; 1, -1, -2 already proxied",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.Offer(c, a[0].S)) }),
		x("rtpproxy_offer0", "", "rtpproxy_offer without flags",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.Offer(c, "")) }),
		x("rtpproxy_offer_ip", "ss", "rtpproxy_offer with a forced media address",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.Force(c, a[0].S, a[1].S, true, true)) }),
		x("rtpproxy_answer", "s", "complete the media session and rewrite the SDP (replies, ACK); 1, -1, -2",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.Answer(c, a[0].S)) }),
		x("rtpproxy_answer0", "", "rtpproxy_answer without flags",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.Answer(c, "")) }),
		x("rtpproxy_answer_ip", "ss", "rtpproxy_answer with a forced media address",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.Force(c, a[0].S, a[1].S, false, true)) }),
		x("rtpproxy_destroy", "s", "delete the media session; 1, -1",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.Destroy(c, a[0].S)) }),
		x("rtpproxy_destroy0", "", "rtpproxy_destroy without flags",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.Destroy(c, "")) }),
		x("rtpproxy_stream2uac", "si", "play a prompt file to the caller (count -1: loop)",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.Stream(c, a[0].S, int(a[1].I), true)) }),
		x("rtpproxy_stream2uas", "si", "play a prompt file to the callee (count -1: loop)",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.Stream(c, a[0].S, int(a[1].I), false)) }),
		x("rtpproxy_stop_stream2uac", "", "stop playing to the caller",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.StopStream(c, true)) }),
		x("rtpproxy_stop_stream2uas", "", "stop playing to the callee",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.StopStream(c, false)) }),
		x("set_rtpproxy_set", "i", "use rtpproxy set id for the current message; 1, -1 unknown set",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.SetSet(c, int(a[0].I))) }),
		x("start_recording", "", "ask rtpproxy to record the call; 1, -1",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.StartRecording(c)) }),
	}
}
