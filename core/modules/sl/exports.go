package sl

import (
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/val"
)

// Exports declares KSR.sl.* (catalog.tsv, module sl).
func (m *Module) Exports() []kemi.Export {
	x := func(name, params string, doc string, fn kemi.Func) kemi.Export {
		return kemi.Export{Module: "sl", Name: name, Params: kemi.P(params), Ret: kemi.RInt, Doc: doc, Fn: fn}
	}
	return []kemi.Export{
		x("sl_send_reply", "is", "stateless reply; 1, -1 (error or ACK), -2 (no-reply)",
			func(c *kemi.Ctx, a []val.Value) val.Value {
				return kemi.RetInt(m.SendReply(c, int(a[0].I), a[1].S))
			}),
		x("send_reply", "is", "reply through tm when a transaction exists, else stateless",
			func(c *kemi.Ctx, a []val.Value) val.Value {
				return kemi.RetInt(m.SendReplyStateful(c, int(a[0].I), a[1].S))
			}),
		x("send_reply_mode", "isi", "send_reply with connection flags (1 no-connect, 2 close; not applied yet)",
			func(c *kemi.Ctx, a []val.Value) val.Value {
				return kemi.RetInt(m.SendReplyStateful(c, int(a[0].I), a[1].S))
			}),
		x("sl_reply_error", "", "stateless reply describing the last internal error",
			func(c *kemi.Ctx, _ []val.Value) val.Value { return kemi.RetInt(m.ReplyError(c)) }),
		x("sl_forward_reply", "ss", "forward the current reply statelessly with a new code / reason",
			func(c *kemi.Ctx, a []val.Value) val.Value {
				return kemi.RetInt(m.ForwardReply(c, a[0].S, a[1].S))
			}),
	}
}
