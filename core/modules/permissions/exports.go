package permissions

import (
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/val"
)

// Exports declares KSR.permissions.* (catalog.tsv, module permissions).
func (m *Module) Exports() []kemi.Export {
	x := func(name, params, doc string, fn kemi.Func) kemi.Export {
		return kemi.Export{Module: "permissions", Name: name, Params: kemi.P(params), Ret: kemi.RInt, Doc: doc, Fn: fn}
	}
	return []kemi.Export{
		x("allow_source_address", "i", "1 if the source IP and port match an address record of the group, else -1",
			func(c *kemi.Ctx, a []val.Value) val.Value {
				return kemi.RetInt(m.AllowSourceAddress(c, int(a[0].I)))
			}),
		x("allow_address", "isi", "1 if the address (IP or host name) and port match an address record of the group, else -1",
			func(c *kemi.Ctx, a []val.Value) val.Value {
				return kemi.RetInt(m.AllowAddress(c, int(a[0].I), a[1].S, int(a[2].I)))
			}),
		x("allow_source_address_group", "", "the group of the first address record matching the source IP and port, or -1",
			func(c *kemi.Ctx, _ []val.Value) val.Value { return kemi.RetInt(m.AllowSourceAddressGroup(c)) }),
		x("allow_address_group", "si", "the group of the first address record matching the address and port, or -1",
			func(c *kemi.Ctx, a []val.Value) val.Value {
				return kemi.RetInt(m.AllowAddressGroup(c, a[0].S, int(a[1].I)))
			}),
		x("allow_trusted", "", "1 (or the number of matches with peer_tag_mode) if a trusted record matches source IP, protocol, From and R-URI; else -1",
			func(c *kemi.Ctx, _ []val.Value) val.Value { return kemi.RetInt(m.AllowTrusted(c)) }),
	}
}
