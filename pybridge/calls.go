package pybridge

/*
#include "bridge.h"
*/
import "C"

import (
	"fmt"
	"strconv"
	"unsafe"

	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/val"
)

type valueBuf = val.Value

// Exception kinds understood by kg_raise.
const (
	excRuntime   = 0
	excType      = 1
	excValue     = 2
	excAttribute = 3
)

func raise(kind int, msg string) {
	cs := C.CString(msg)
	C.kg_raise(C.int(kind), cs)
	C.free(unsafe.Pointer(cs))
}

func setRet(r *C.kg_ret, v val.Value, rt kemi.RetType) {
	switch rt {
	case kemi.RBool:
		r.kind = 3
		if v.Kind != val.Null && v.I != 0 || v.Kind == val.Str && v.S != "" {
			r.i = 1
		}
	case kemi.RNone:
		r.kind, r.i = 1, 0
	case kemi.RInt:
		r.kind, r.i = 1, C.longlong(v.AsInt())
	default: // xval, str
		switch v.Kind {
		case val.Null:
			if rt == kemi.RStr {
				setStr(r, "")
			} else {
				r.kind = 0
			}
		case val.Int, val.Bool:
			r.kind, r.i = 1, C.longlong(v.I)
		case val.Str:
			setStr(r, v.S)
		}
	}
}

func setStr(r *C.kg_ret, s string) {
	var p *C.char
	if len(s) > 0 {
		p = (*C.char)(unsafe.Pointer(unsafe.StringData(s)))
	}
	obj := C.kg_new_str(p, C.Py_ssize_t(len(s)))
	if obj == nil {
		r.kind = 4 // UnicodeDecodeError is set
		return
	}
	r.kind, r.obj = 2, obj
}

func workerByID(id C.int) *Worker {
	if id < 0 || int(id) >= maxWorkers {
		return nil
	}
	return registry[id].Load()
}

//export kgGoCall
func kgGoCall(wid C.int, id C.int, args *C.kg_arg, nargs C.int, ret *C.kg_ret) {
	w := workerByID(wid)
	if w == nil {
		name := "KSR function"
		if e := theTable.ByID(int(id)); e != nil {
			name = e.FullName()
		}
		raise(excRuntime, name+"() called outside a message context: KSR functions run only on the kemigo "+
			"worker thread that runs the route, not on a thread the script started")
		ret.kind = 4
		return
	}
	e := w.eng.table.ByID(int(id))
	n := int(nargs)
	if cap(w.args) < n {
		w.args = make([]val.Value, n)
	}
	av := w.args[:n]
	cargs := unsafe.Slice(args, n)
	for i := range av {
		if cargs[i].is_str != 0 {
			av[i] = val.OfStr(C.GoStringN(cargs[i].s, C.int(cargs[i].len)))
		} else {
			av[i] = val.OfInt(int64(cargs[i].i))
		}
	}
	c := w.current()
	defer func() {
		if p := recover(); p != nil {
			c.Log.Error().Str("function", e.FullName()).Interface("panic", p).Msg("KEMI function failed")
			raise(excRuntime, fmt.Sprintf("%s failed: %v", e.FullName(), p))
			ret.kind = 4
		}
	}()
	v := e.Fn(c, av)
	setRet(ret, v, e.Ret)
}

// msg object operations; the numbering matches bridge.c.
const (
	opType = iota
	opMethod
	opStatus
	opRURI
	opSrc
	opDst
	opGetHdr
	opRewrite
	opSetDst
	opCallFn
)

// CallFunction lets msg.call_function / KSR.x.modf reach native functions by
// name; the proxy installs it. It returns the int result or an error.
var CallFunction func(c *kemi.Ctx, name string, params []string) (int, error)

//export kgGoMsgOp
func kgGoMsgOp(wid C.int, ctxid C.uint64_t, op C.int, s1 *C.char, l1 C.int, s2 *C.char, l2 C.int, s3 *C.char, l3 C.int,
	h1, h2, h3 C.int, ret *C.kg_ret) {
	w := workerByID(wid)
	if w == nil {
		raise(excRuntime, "msg used outside a message context: the msg object works only on the kemigo "+
			"worker thread that runs the route, not on a thread the script started")
		ret.kind = 4
		return
	}
	c := w.ctxByID(uint64(ctxid))
	if c == nil {
		raise(excRuntime, "self->msg is NULL")
		ret.kind = 4
		return
	}
	m := c.Msg
	switch int(op) {
	case opType:
		switch {
		case m.Req != nil:
			setStr(ret, "SIP_REQUEST")
		case m.Res != nil:
			setStr(ret, "SIP_REPLY")
		default:
			setStr(ret, "SIP_INVALID")
		}
	case opMethod:
		if m.Req == nil {
			raise(excRuntime, "Not a request message - no method available.")
			ret.kind = 4
			return
		}
		setStr(ret, string(m.Req.Method))
	case opStatus:
		if m.Res == nil {
			raise(excRuntime, "Not a non-reply message - no status available.")
			ret.kind = 4
			return
		}
		setStr(ret, strconv.Itoa(m.Res.StatusCode))
	case opRURI:
		if m.Req == nil {
			raise(excRuntime, "Not a request message - RURI is not available.")
			ret.kind = 4
			return
		}
		setStr(ret, m.Req.Recipient.String()) // the original R-URI, as app_python3
	case opSrc:
		setStr(ret, m.SrcIP+" "+strconv.Itoa(m.SrcPort))
	case opDst:
		setStr(ret, m.DstIP+" "+strconv.Itoa(m.DstPort))
	case opGetHdr:
		v, ok := m.HeaderExact(C.GoStringN(s1, l1))
		if !ok {
			ret.kind = 0
			return
		}
		setStr(ret, v)
	case opRewrite, opSetDst:
		if m.Req == nil {
			raise(excRuntime, "Not a request message - set destination is not possible.")
			ret.kind = 4
			return
		}
		uri := C.GoStringN(s1, l1)
		if int(op) == opRewrite {
			if err := m.SetRURI(uri); err != nil {
				c.Log.Error().Str("uri", uri).Err(err).Msg("msg.rewrite_ruri failed")
			}
			ret.kind = 0
			return
		}
		m.DstURI = uri
		ret.kind = 0
	case opCallFn:
		if CallFunction == nil {
			raise(excRuntime, "no such function")
			ret.kind = 4
			return
		}
		var ps []string
		if h2 != 0 {
			ps = append(ps, C.GoStringN(s2, l2))
		}
		if h3 != 0 {
			ps = append(ps, C.GoStringN(s3, l3))
		}
		rc, err := CallFunction(c, C.GoStringN(s1, l1), ps)
		if err != nil {
			raise(excRuntime, err.Error())
			ret.kind = 4
			return
		}
		ret.kind, ret.i = 1, C.longlong(rc)
	default:
		raise(excRuntime, "unknown msg operation")
		ret.kind = 4
	}
}
