package registrar

import (
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/val"
)

// Exports declares KSR.registrar.* (catalog.tsv, module registrar).
func (m *Module) Exports() []kemi.Export {
	x := func(name, params, doc string, fn kemi.Func) kemi.Export {
		return kemi.Export{Module: "registrar", Name: name, Params: kemi.P(params), Ret: kemi.RInt, Doc: doc, Fn: fn}
	}
	r := kemi.RetInt
	return []kemi.Export{
		x("save", "si", "save the REGISTER bindings and reply; 1 insert, 2 update, 3 delete, 4 query, -1 error, -2 too many contacts",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.Save(c, a[0].S, int(a[1].I), "")) }),
		x("save_uri", "sis", "save for the AoR of uri instead of the To URI",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.Save(c, a[0].S, int(a[1].I), a[2].S)) }),
		x("lookup", "s", "R-URI to the best contact, others as branches; 1, -1 none, -2 method not allowed, -3 error",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.Lookup(c, a[0].S, "", false)) }),
		x("lookup_uri", "ss", "lookup for the AoR of uri (the R-URI when empty)",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.Lookup(c, a[0].S, a[1].S, false)) }),
		x("lookup_to_dset", "ss", "add every contact as a branch, R-URI unchanged",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.Lookup(c, a[0].S, a[1].S, true)) }),
		x("lookup_branches", "s", "lookup for the R-URI and for every bare branch",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.LookupBranches(c, a[0].S)) }),
		x("registered", "s", "1 if the R-URI AoR has a valid binding, else -1",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.Registered(c, a[0].S, "")) }),
		x("registered_uri", "ss", "registered for the AoR of uri",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.Registered(c, a[0].S, a[1].S)) }),
		x("registered_flags", "ssi", "registered; the xavp_cfg match flags are not supported",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.Registered(c, a[0].S, a[1].S)) }),
		x("registered_action", "ssii", "registered; the xavp_cfg match and action flags are not supported",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.Registered(c, a[0].S, a[1].S)) }),
		x("unregister", "ss", "remove every binding of the AoR of uri; 1, -1, -2",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.Unregister(c, a[0].S, a[1].S, "")) }),
		x("unregister_ruid", "sss", "remove the binding with ruid; 1, -1, -2, -3 not found",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.Unregister(c, a[0].S, a[1].S, a[2].S)) }),
		x("set_q_override", "s", "q for the contacts of the next save of this message",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.SetQOverride(c, a[0].S)) }),
		x("reg_send_reply", "", "send the reply of a save run with flag 0x02",
			func(c *kemi.Ctx, _ []val.Value) val.Value { return r(m.RegSendReply(c)) }),
		x("add_sock_hdr", "s", "append a header with the receiving socket (proto:ip:port)",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.AddSockHdr(c, a[0].S)) }),
		x("reg_fetch_contacts", "sss", "copy the bindings of uri into a $ulc profile",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.FetchContacts(c, a[0].S, a[1].S, a[2].S)) }),
		x("reg_free_contacts", "s", "empty a $ulc profile",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.FreeContacts(c, a[0].S)) }),
	}
}
