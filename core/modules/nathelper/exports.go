package nathelper

import (
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/val"
)

// Exports declares KSR.nathelper.* (catalog.tsv, module nathelper;
// fix_nated_sdp and fix_nated_sdp_ip are not implemented).
func (m *Module) Exports() []kemi.Export {
	x := func(name, params, doc string, fn kemi.Func) kemi.Export {
		return kemi.Export{Module: "nathelper", Name: name, Params: kemi.P(params), Ret: kemi.RInt, Doc: doc, Fn: fn}
	}
	r := kemi.RetInt
	return []kemi.Export{
		x("nat_uac_test", "i", "1 if any selected NAT test matches (1 Contact, 2 received, 4 Via, 8 SDP, 16 rport, 32 source, 64 ws, 128 Contact port, 256 SDP c=, 512 destination), else -1",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.NatUACTest(c, int(a[0].I))) }),
		x("is_rfc1918", "s", "1 if the IPv4 address is private (RFC 1918/6598), else -1",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.IsRFC1918(a[0].S)) }),
		x("fix_nated_contact", "", "first Contact host:port becomes the source address",
			func(c *kemi.Ctx, _ []val.Value) val.Value { return r(m.FixNatedContact(c)) }),
		x("fix_nated_register", "", "store the source address as SIP URI in received_avp",
			func(c *kemi.Ctx, _ []val.Value) val.Value { return r(m.FixNatedRegister(c)) }),
		x("set_contact_alias", "", "append ;alias=ip~port~proto (source address) to the first Contact URI",
			func(c *kemi.Ctx, _ []val.Value) val.Value { return r(m.SetContactAlias(c, false)) }),
		x("set_contact_alias_trim", "", "set_contact_alias, replacing an existing alias",
			func(c *kemi.Ctx, _ []val.Value) val.Value { return r(m.SetContactAlias(c, true)) }),
		x("add_contact_alias", "", "insert ;alias=ip~port~proto when the Contact is not the source address; 1, 2, -1",
			func(c *kemi.Ctx, _ []val.Value) val.Value { return r(m.AddContactAlias(c)) }),
		x("add_contact_alias_addr", "sss", "insert ;alias=ip~port~proto with the given address; 1, 2, -1",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.AddContactAliasAddr(c, a[0].S, a[1].S, a[2].S)) }),
		x("add_rcv_param", "i", "add received=<source URI> to every contact (0 header param, 1 URI param)",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.AddRcvParam(c, int(a[0].I))) }),
		x("handle_ruri_alias", "", "R-URI alias param to $du and removed; 1, 2 no alias, -1",
			func(c *kemi.Ctx, _ []val.Value) val.Value { return r(m.HandleRURIAlias(c, 0)) }),
		x("handle_ruri_alias_mode", "i", "handle_ruri_alias using the first (0) or last (1) alias",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.HandleRURIAlias(c, int(a[0].I))) }),
		x("set_alias_to_pv", "s", "write the Contact alias as sip:ip:port;transport=proto to a PV",
			func(c *kemi.Ctx, a []val.Value) val.Value { return r(m.SetAliasToPV(c, a[0].S)) }),
	}
}
