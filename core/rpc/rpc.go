// Package rpc is kemigo's control interface, after Kamailio's jsonrpcs
// module: a JSON-RPC 2.0 server with a method registry, served over a unix
// stream socket and over HTTP POST on a loopback address. Method names,
// parameters and reply shapes follow Kamailio's RPC commands (core.*,
// htable.*, app_python.*, stats.*, ...) so kamcmd/kamcli habits carry over;
// `kemigo ctl` is the client.
package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sort"
	"sync"

	"github.com/rs/zerolog"
)

// Handler runs one method. params are the request's positional parameters
// (an object's values in their order): nil, bool, string, int64 (integral
// numbers), float64, []any or map[string]any. The result is marshalled with
// encoding/json. An error that is (or wraps) an *Error is sent as is; any
// other error becomes code 500 with the error text as message.
type Handler func(ctx context.Context, params []any) (any, error)

// Error is a JSON-RPC error object. Like Kamailio, kemigo mostly uses
// HTTP-like codes (400 bad parameters, 404 not found, 500 failure) besides
// the JSON-RPC 2.0 reserved ones.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

func (e *Error) Error() string { return fmt.Sprintf("%d - %s", e.Code, e.Message) }

// Errorf builds an *Error.
func Errorf(code int, format string, a ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, a...)}
}

// Error codes. The JSON-RPC 2.0 ones carry Kamailio's jsonrpcs messages.
const (
	CodeParseError     = -32700 // "Parse Error"
	CodeInvalidRequest = -32600 // "Invalid Request"
	CodeInvalidParams  = -32602 // "Invalid Parameters"
	CodeInternal       = -32603 // "Internal Error"
	CodeBadParams      = 400    // Kamailio modules: missing or bad parameters
	CodeNotFound       = 404
	CodeFailure        = 500 // Kamailio: "Method Not Found" and most faults
)

// ErrMethodNotFound is Kamailio's answer to an unknown method.
var ErrMethodNotFound = &Error{Code: 500, Message: "Method Not Found"}

type method struct {
	name, help string
	h          Handler
}

// Server holds the methods and the listeners.
type Server struct {
	cfg Config
	log zerolog.Logger

	mu      sync.RWMutex
	methods map[string]*method

	ln listeners
}

// New returns a server with the built-in system.listMethods and
// system.methodHelp. Nothing listens before Start.
func New(cfg Config, log zerolog.Logger) *Server {
	s := &Server{cfg: cfg, log: log, methods: map[string]*method{}}
	s.ln.init()
	s.registerRPC(s.ln.mux, false) // the listener's handler is guarded as a whole
	s.Register("system.listMethods", "Lists all RPC methods supported by the server.", s.listMethods)
	s.Register("system.methodHelp", "Print the help string for given method.", s.methodHelp)
	return s
}

// Config returns the configuration the server was built with.
func (s *Server) Config() Config { return s.cfg }

// Register adds a method. The name must be new and h not nil (programming
// errors panic). Methods may be registered while the server runs.
func (s *Server) Register(name string, help string, h Handler) {
	if name == "" || h == nil {
		panic("rpc: Register needs a name and a handler")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.methods[name]; dup {
		panic("rpc: method " + name + " registered twice")
	}
	s.methods[name] = &method{name: name, help: help, h: h}
}

// Methods returns the registered method names, sorted.
func (s *Server) Methods() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.methods))
	for n := range s.methods {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (s *Server) lookup(name string) *method {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.methods[name]
}

func (s *Server) listMethods(context.Context, []any) (any, error) { return s.Methods(), nil }

func (s *Server) methodHelp(_ context.Context, p []any) (any, error) {
	name, err := String(p, 0)
	if err != nil {
		return nil, Errorf(400, "Method Name Expected")
	}
	m := s.lookup(name)
	if m == nil {
		return nil, Errorf(400, "command not found")
	}
	if m.help == "" {
		return "undocumented", nil
	}
	return m.help, nil
}

// Call runs a method in-process, as a request would (tests, signals).
func (s *Server) Call(ctx context.Context, name string, params ...any) (any, error) {
	m := s.lookup(name)
	if m == nil {
		return nil, ErrMethodNotFound
	}
	return s.run(ctx, m, params)
}

func (s *Server) run(ctx context.Context, m *method, params []any) (res any, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error().Str("method", m.name).Interface("panic", r).Bytes("stack", debug.Stack()).
				Msg("rpc: method panicked")
			res, err = nil, &Error{Code: 500, Message: fmt.Sprintf("Internal Error: %v", r)}
		}
	}()
	return m.h(ctx, params)
}

// request is one decoded JSON-RPC request.
type request struct {
	JSONRPC *string         `json:"jsonrpc"`
	Method  *string         `json:"method"`
	Params  json.RawMessage `json:"params"`
	ID      json.RawMessage `json:"id"`
}

// response is one JSON-RPC response: "jsonrpc", exactly one of "result"
// (null for a nil result) and "error", and "id" (null when the request
// had none or could not be read).
type response struct {
	Result any
	Error  *Error
	ID     json.RawMessage
}

// MarshalJSON writes the wire form.
func (r response) MarshalJSON() ([]byte, error) {
	id := r.ID
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	if r.Error != nil {
		return json.Marshal(struct {
			JSONRPC string          `json:"jsonrpc"`
			Error   *Error          `json:"error"`
			ID      json.RawMessage `json:"id"`
		}{"2.0", r.Error, id})
	}
	return json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		Result  any             `json:"result"`
		ID      json.RawMessage `json:"id"`
	}{"2.0", r.Result, id})
}

// HandleBytes processes one request body (a request or a batch array) and
// returns the response body. Unlike strict JSON-RPC 2.0 but like Kamailio,
// requests without an id are answered too (with "id": null).
func (s *Server) HandleBytes(ctx context.Context, body []byte) []byte {
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '[' {
		var batch []json.RawMessage
		if err := json.Unmarshal(body, &batch); err != nil {
			return s.encode(errResponse(nil, CodeParseError, "Parse Error"))
		}
		if len(batch) == 0 {
			return s.encode(errResponse(nil, CodeInvalidRequest, "Invalid Request"))
		}
		out := make([]response, len(batch))
		for i, one := range batch {
			out[i] = s.handleOne(ctx, one)
		}
		return s.encode(out)
	}
	return s.encode(s.handleOne(ctx, body))
}

func (s *Server) encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		s.log.Error().Err(err).Msg("rpc: result not encodable")
		b, _ = json.Marshal(errResponse(nil, CodeInternal, "Internal Error: result not encodable: "+err.Error()))
	}
	return b
}

func errResponse(id json.RawMessage, code int, msg string) response {
	return response{Error: &Error{Code: code, Message: msg}, ID: id}
}

func (s *Server) handleOne(ctx context.Context, raw []byte) response {
	var req request
	if err := json.Unmarshal(raw, &req); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) || errors.Is(err, io.ErrUnexpectedEOF) || len(bytes.TrimSpace(raw)) == 0 {
			return errResponse(nil, CodeParseError, "Parse Error")
		}
		return errResponse(nil, CodeInvalidRequest, "Invalid Request")
	}
	id := req.ID
	if len(id) > 0 && !validID(id) {
		return errResponse(nil, CodeInvalidRequest, "Invalid Request")
	}
	if req.JSONRPC == nil || *req.JSONRPC != "2.0" || req.Method == nil || *req.Method == "" {
		return errResponse(id, CodeInvalidRequest, "Invalid Request")
	}
	params, err := decodeParams(req.Params)
	if err != nil {
		return errResponse(id, CodeInvalidParams, "Invalid Parameters")
	}
	m := s.lookup(*req.Method)
	if m == nil {
		return response{Error: ErrMethodNotFound, ID: id}
	}
	res, err := s.run(ctx, m, params)
	if err != nil {
		return response{Error: toError(err), ID: id}
	}
	return response{Result: res, ID: id}
}

// validID: a string, a number or null.
func validID(id json.RawMessage) bool {
	switch id[0] {
	case '"', 'n', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return true
	}
	return false
}

func toError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return &Error{Code: 500, Message: "Execution Error: " + err.Error()}
	}
	return &Error{Code: 500, Message: err.Error()}
}

// decodeParams turns "params" into positional values: an array's items,
// or an object's values in document order (Kamailio reads an object's
// children in order too). Integral numbers become int64, others float64.
func decodeParams(raw json.RawMessage) ([]any, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	d, ok := tok.(json.Delim)
	if !ok || (d != '[' && d != '{') {
		return nil, errors.New("params is not an array or an object")
	}
	var out []any
	for dec.More() {
		if d == '{' {
			if _, err := dec.Token(); err != nil { // the key
				return nil, err
			}
		}
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, normalize(v))
	}
	return out, nil
}

func normalize(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case []any:
		for i := range x {
			x[i] = normalize(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = normalize(x[k])
		}
	}
	return v
}
