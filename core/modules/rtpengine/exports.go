package rtpengine

import (
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/val"
)

// Exports declares KSR.rtpengine.* (catalog.tsv, module rtpengine).
func (m *Module) Exports() []kemi.Export {
	x := func(name, params, doc string, fn func(c *kemi.Ctx, a []val.Value) int) kemi.Export {
		return kemi.Export{Module: "rtpengine", Name: name, Params: kemi.P(params), Ret: kemi.RInt, Doc: doc,
			Fn: func(c *kemi.Ctx, a []val.Value) val.Value { return kemi.RetInt(fn(c, a)) }}
	}
	// pair declares name(flags) and name0().
	var out []kemi.Export
	pair := func(name, doc string, fn func(c *kemi.Ctx, flags string) int) {
		out = append(out,
			x(name, "s", doc, func(c *kemi.Ctx, a []val.Value) int { return fn(c, a[0].S) }),
			x(name+"0", "", doc+" (no flags)", func(c *kemi.Ctx, a []val.Value) int { return fn(c, "") }))
	}
	generic := func(op Op) func(c *kemi.Ctx, flags string) int {
		return func(c *kemi.Ctx, flags string) int { return m.Generic(c, op, flags) }
	}
	pair("rtpengine_manage", "offer, answer or delete as the message requires; 1, -1", m.Manage)
	pair("rtpengine_offer", "send the SDP as an offer and put rtpengine's SDP in the message; 1, -1", m.Offer)
	pair("rtpengine_answer", "send the SDP as an answer and put rtpengine's SDP in the message; 1, -1", m.Answer)
	pair("rtpengine_delete", "delete the call's media session; 1, -1", m.Delete)
	pair("rtpengine_query", "query the call's media session; 1, -1", m.Query)
	pair("block_dtmf", "block DTMF; 1, -1", generic(OpBlockDTMF))
	pair("unblock_dtmf", "unblock DTMF; 1, -1", generic(OpUnblockDTMF))
	pair("block_media", "block media; 1, -1", generic(OpBlockMedia))
	pair("unblock_media", "unblock media; 1, -1", generic(OpUnblockMedia))
	pair("silence_media", "silence media; 1, -1", generic(OpSilenceMedia))
	pair("unsilence_media", "unsilence media; 1, -1", generic(OpUnsilenceMedia))
	pair("stop_media", "stop playing media; 1, -1", generic(OpStopMedia))
	out = append(out,
		x("play_media", "s", "play media (file=, from-tag=, ...); 1, -1",
			func(c *kemi.Ctx, a []val.Value) int { return m.Generic(c, OpPlayMedia, a[0].S) }),
		x("start_recording", "", "start recording the call; 1, -1",
			func(c *kemi.Ctx, a []val.Value) int { return m.Generic(c, OpStartRecording, "") }),
		x("stop_recording", "", "stop recording the call; 1, -1",
			func(c *kemi.Ctx, a []val.Value) int { return m.Generic(c, OpStopRecording, "") }),
		x("rtpengine_query_v", "ss", `query and store the reply as JSON ("j", "jp") in a PV; 1, -1`,
			func(c *kemi.Ctx, a []val.Value) int { return m.QueryV(c, a[0].S, a[1].S) }),
		x("set_rtpengine_set", "i", "use set id for the current message; 1, -1 unknown, -2 no active instance",
			func(c *kemi.Ctx, a []val.Value) int { return m.SetSet(c, int(a[0].I), -1) }),
		x("set_rtpengine_set2", "ii", "use two sets (caller side, callee side) for the current message",
			func(c *kemi.Ctx, a []val.Value) int {
				if a[1].I < 0 {
					return -1
				}
				return m.SetSet(c, int(a[0].I), int(a[1].I))
			}),
	)
	return out
}
