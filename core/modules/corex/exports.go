package corex

import (
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/val"
)

// Exports is the module's KEMI export table: the corex functions of the
// Kamailio 5.6.3 catalog that kemigo implements (see README.md for the
// others).
func (mod *Module) Exports() []kemi.Export {
	return []kemi.Export{
		{
			Module: "corex", Name: "append_branch", Ret: kemi.RInt,
			Doc: "add the current R-URI and $du as a new branch (parallel forking)",
			Fn:  func(c *kemi.Ctx, _ []val.Value) val.Value { return kemi.RetInt(AppendBranch(c.Msg, "", "")) },
		},
		{
			Module: "corex", Name: "append_branch_uri", Params: kemi.S(1), Ret: kemi.RInt,
			Doc: "add a branch with this URI",
			Fn:  func(c *kemi.Ctx, a []val.Value) val.Value { return kemi.RetInt(AppendBranch(c.Msg, a[0].S, "")) },
		},
		{
			Module: "corex", Name: "append_branch_uri_q", Params: kemi.S(2), Ret: kemi.RInt,
			Doc: "add a branch with this URI and q value",
			Fn:  func(c *kemi.Ctx, a []val.Value) val.Value { return kemi.RetInt(AppendBranch(c.Msg, a[0].S, a[1].S)) },
		},
		{
			Module: "corex", Name: "has_ruri_user", Ret: kemi.RInt,
			Doc: "1 if the R-URI has a user part, else -1",
			Fn:  func(c *kemi.Ctx, _ []val.Value) val.Value { return kemi.RetInt(HasRURIUser(c.Msg)) },
		},
		{
			Module: "corex", Name: "has_user_agent", Ret: kemi.RInt,
			Doc: "1 if there is a non-empty User-Agent header, else -1",
			Fn:  func(c *kemi.Ctx, _ []val.Value) val.Value { return kemi.RetInt(HasUserAgent(c.Msg)) },
		},
		{
			Module: "corex", Name: "is_faked_msg", Ret: kemi.RInt,
			Doc: "1 when running on the faked message (outside any route), else -1",
			Fn:  func(c *kemi.Ctx, _ []val.Value) val.Value { return kemi.RetInt(IsFakedMsg(c.Msg)) },
		},
		{
			Module: "corex", Name: "file_read", Params: kemi.S(1), Ret: kemi.RXval,
			Doc: "content of the file, or None when it cannot be read",
			Fn:  func(_ *kemi.Ctx, a []val.Value) val.Value { return FileRead(a[0].S) },
		},
		{
			Module: "corex", Name: "file_write", Params: kemi.S(2), Ret: kemi.RInt,
			Doc: "replace the content of the file: 1, or -1 when it cannot be opened",
			Fn:  func(_ *kemi.Ctx, a []val.Value) val.Value { return kemi.RetInt(FileWrite(a[0].S, a[1].S)) },
		},
	}
}
