package kemi

import (
	"github.com/kemigo/kemigo/core/sipmsg"
	"github.com/kemigo/kemigo/core/val"
	"github.com/rs/zerolog"
)

// RouteType says which kind of route a callback runs in (SPEC §3.2).
type RouteType uint8

const (
	RouteNone          RouteType = iota // outside any route (mod_init, child_init, top level)
	RouteRequest                        // request_route
	RouteReply                          // core reply route
	RouteOnSend                         // onsend route
	RouteBranch                         // branch route
	RouteFailure                        // failure route
	RouteBranchFailure                  // branch failure route
	RouteTMReply                        // tm onreply route
	RouteEvent                          // event route
)

var routeNames = [...]string{"none", "request", "reply", "onsend", "branch", "failure", "branch_failure", "onreply", "event"}

func (r RouteType) String() string { return routeNames[r] }

// WorkerState is what each worker keeps across messages, as a Kamailio child
// process does: $var values, the PV name cache.
type WorkerState struct {
	ID   int
	Rank int // child_init rank (worker index + 1)
	Vars map[string]val.Value
}

// NewWorkerState returns the state of worker id.
func NewWorkerState(id int) *WorkerState {
	return &WorkerState{ID: id, Rank: id + 1, Vars: map[string]val.Value{}}
}

// Ctx is the context one callback runs in: the current message, the route
// type, the worker, and a logger that carries the worker and Call-ID.
type Ctx struct {
	Msg       *sipmsg.Msg
	Route     RouteType
	Worker    *WorkerState
	Log       zerolog.Logger
	Drop      bool // set_drop() was called
	BranchIdx int  // $T_branch_idx; -1 outside branch contexts
	Tx        any  // the transaction, when the route runs in one (core/tm)
	Reply     *sipmsg.Msg
	// Call runs another named callback of the script on this worker, nested
	// (branch and onsend routes from t_relay). It returns false when the
	// script has no such callable. Nil outside a worker.
	Call CallFunc
}

// CallFunc runs the named route callback with context c (param is passed to
// event routes when not empty). It reports whether the callback existed.
type CallFunc func(c *Ctx, route, param string) bool

// Sub returns a context for a nested or later callback of the same worker.
func (c *Ctx) Sub(m *sipmsg.Msg, route RouteType) *Ctx {
	return &Ctx{Msg: m, Route: route, Worker: c.Worker, Log: c.Log, BranchIdx: c.BranchIdx, Tx: c.Tx, Call: c.Call}
}

// MsgLogger returns l with the worker and Call-ID of a message added to
// every event it writes. They are added by a hook when an event is
// written: a message whose callbacks log nothing costs two small
// allocations, where l.With() copied a 500-byte context per message.
func MsgLogger(l zerolog.Logger, worker int, callID string) zerolog.Logger {
	return l.Hook(&msgFields{worker: worker, callID: callID})
}

type msgFields struct {
	worker int
	callID string
}

func (f *msgFields) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	e.Int("worker", f.worker).Str("callid", f.callID)
}
