package tm

import "github.com/kemigo/kemigo/core/kemi"
import "github.com/kemigo/kemigo/core/sipmsg"

// FailureHook sees a transaction's best negative reply before its failure
// route runs and returns the message flags to keep (acc re-arms missed-call
// flags this way).
type FailureHook func(c *kemi.Ctx, req *sipmsg.Msg, flags uint32, code int, reason, toTag string) uint32

// AddFailureHook registers a hook run before each failure route.
func (m *Module) AddFailureHook(h FailureHook) { m.onFailureHooks = append(m.onFailureHooks, h) }

// runFailureHooks runs the hooks for the best branch b.
func (tx *Tx) runFailureHooks(c *kemi.Ctx, b *branch) {
	if b == nil {
		return
	}
	reason, tag := "", ""
	if b.reply != nil {
		reason = b.reply.Reason
		if to := b.reply.To(); to != nil {
			tag, _ = to.Params.Get("tag")
		}
	}
	for _, h := range tx.mod.onFailureHooks {
		tx.Req.Flags = h(c, tx.Req, tx.Req.Flags, b.finalCode, reason, tag)
	}
}
