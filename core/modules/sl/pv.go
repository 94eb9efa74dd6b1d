package sl

import (
	"fmt"
	"sync"

	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/pv"
	"github.com/kemigo/kemigo/core/val"
)

var pvOnce sync.Once

// registerPVs adds $ltt(x|s|t): the local To-tag of replies to the
// current request (x: the one in use, s: stateless, t: transaction; t is
// null when the route runs outside a transaction). kemigo uses one
// deterministic tag per request for sl and tm alike.
func registerPVs() {
	pvOnce.Do(func() {
		pv.Register("ltt", &pv.Class{NeedsInner: true, Get: pvGetLTT})
	})
}

func pvGetLTT(c *kemi.Ctx, _ *pv.Spec, inner string) (val.Value, error) {
	switch inner {
	case "x", "s", "t":
	default:
		return val.NullValue, fmt.Errorf("%w: $ltt(%s)", pv.ErrSyntax, inner)
	}
	if c == nil || c.Msg == nil || !c.Msg.IsRequest() {
		return val.NullValue, nil
	}
	if inner == "t" && c.Tx == nil {
		return val.NullValue, nil
	}
	return val.OfStr(c.Msg.LocalToTag()), nil
}
