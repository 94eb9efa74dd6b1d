package siputils

import (
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/val"
)

// Exports is the module's KEMI export table (names and types as in
// Kamailio 5.6.3's sr_kemi_siputils_exports).
func (mod *Module) Exports() []kemi.Export {
	noArgs := func(f func(c *kemi.Ctx) int) kemi.Func {
		return func(c *kemi.Ctx, _ []val.Value) val.Value { return kemi.RetInt(f(c)) }
	}
	str1 := func(f func(c *kemi.Ctx, s string) int) kemi.Func {
		return func(c *kemi.Ctx, a []val.Value) val.Value { return kemi.RetInt(f(c, a[0].S)) }
	}
	str2 := func(f func(c *kemi.Ctx, s1, s2 string) int) kemi.Func {
		return func(c *kemi.Ctx, a []val.Value) val.Value { return kemi.RetInt(f(c, a[0].S, a[1].S)) }
	}
	e := func(name string, params []kemi.ParamType, doc string, fn kemi.Func) kemi.Export {
		return kemi.Export{Module: "siputils", Name: name, Params: params, Ret: kemi.RInt, Doc: doc, Fn: fn}
	}
	return []kemi.Export{
		e("has_totag", nil, "1 if the To header has a tag, else -1",
			noArgs(func(c *kemi.Ctx) int { return HasToTag(c.Msg) })),
		e("is_request", nil, "1 for a request, else -1",
			noArgs(func(c *kemi.Ctx) int { return IsRequest(c.Msg) })),
		e("is_reply", nil, "1 for a reply, else -1",
			noArgs(func(c *kemi.Ctx) int { return IsReply(c.Msg) })),
		e("is_first_hop", nil, "1 if the message is at its first hop (one Via; reply: top Record-Route is this proxy)",
			noArgs(func(c *kemi.Ctx) int { return mod.IsFirstHop(c.Msg, 0) })),
		e("is_first_hop_mode", kemi.I(1), "is_first_hop; mode 1 skips the IP-address and loop checks for replies",
			func(c *kemi.Ctx, a []val.Value) val.Value { return kemi.RetInt(mod.IsFirstHop(c.Msg, int(a[0].I))) }),
		e("is_uri", kemi.S(1), "1 if the value is a valid SIP/SIPS/TEL/URN URI, else -1",
			str1(func(_ *kemi.Ctx, s string) int { return IsURI(s) })),
		e("is_user", kemi.S(1), "1 if the value is the user of the authorized digest credentials",
			str1(func(c *kemi.Ctx, s string) int { return mod.IsUser(c.Msg, s) })),
		e("uri_param", kemi.S(1), "1 if the R-URI has the parameter without a value",
			str1(func(c *kemi.Ctx, s string) int { return URIParamValue(c.Msg, s, nil) })),
		e("uri_param_value", kemi.S(2), "1 if the R-URI has the parameter with that value",
			str2(func(c *kemi.Ctx, n, v string) int { return URIParamValue(c.Msg, n, &v) })),
		e("uri_param_any", kemi.S(1), "1 if the R-URI has the parameter, with or without value",
			str1(func(c *kemi.Ctx, s string) int { return URIParamAny(c.Msg, s) })),
		e("uri_param_rm", kemi.S(1), "remove a parameter from the R-URI",
			str1(func(c *kemi.Ctx, s string) int { return URIParamRm(c.Msg, s) })),
		e("is_tel_number", kemi.S(1), "1 if the value is [+]digits, else -2",
			str1(func(_ *kemi.Ctx, s string) int { return IsTelNumber(s) })),
		e("is_numeric", kemi.S(1), "1 if the value is digits only, else -2",
			str1(func(_ *kemi.Ctx, s string) int { return IsNumeric(s) })),
		e("is_alphanum", kemi.S(1), "1 if the value is ASCII letters and digits only (-2 empty, -3 other)",
			str1(func(_ *kemi.Ctx, s string) int { return IsAlphanumEx(s, "") })),
		e("is_alphanumex", kemi.S(2), "is_alphanum also accepting the characters of the second argument",
			str2(func(_ *kemi.Ctx, s, set string) int { return IsAlphanumEx(s, set) })),
		e("options_reply", nil, "answer an OPTIONS for this proxy with 200 OK and Accept/Supported headers",
			noArgs(func(c *kemi.Ctx) int { return mod.OptionsReply(c.Msg) })),
		e("hdr_date_check", kemi.I(1), "1 if the Date header is at most tdiff seconds old (-4 older, -1 missing/bad)",
			func(c *kemi.Ctx, a []val.Value) val.Value { return kemi.RetInt(mod.HdrDateCheck(c.Msg, int(a[0].I))) }),
		e("cmp_uri", kemi.S(2), "compare two URIs (1 match, -1 no match, -2 parse error)",
			str2(func(_ *kemi.Ctx, a, b string) int { return CmpURI(a, b) })),
		e("cmp_aor", kemi.S(2), "compare the AoR (user, host, port) of two URIs",
			str2(func(_ *kemi.Ctx, a, b string) int { return CmpAOR(a, b) })),
		e("cmp_hdr_name", kemi.S(2), "compare two header names (compact forms match long ones)",
			str2(func(_ *kemi.Ctx, a, b string) int { return CmpHdrName(a, b) })),
		e("is_gruu", nil, "1 if the R-URI has gr=value, 2 if it has gr without value, else -1",
			noArgs(func(c *kemi.Ctx) int { return IsGRUU(c.Msg) })),
		e("add_uri_param", kemi.S(1), "append ;param to the R-URI",
			str1(func(c *kemi.Ctx, s string) int { return AddURIParam(c.Msg, s) })),
	}
}
