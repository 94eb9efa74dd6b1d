package tm

import "github.com/kemigo/kemigo/core/kemi"

// TReply lets sl.send_reply answer statefully when a transaction exists
// (it implements sl.StatefulReplier).
func (m *Module) TReply(c *kemi.Ctx, code int, reason string) (bool, int) {
	tx := m.txOf(c)
	if tx == nil {
		return false, 0
	}
	return true, tx.Reply(code, reason)
}
