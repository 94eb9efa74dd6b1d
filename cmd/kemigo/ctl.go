package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/kemigo/kemigo/core/rpc"
)

const ctlUsage = `Usage: kemigo ctl [-s SOCKET | -u URL] [--token T] [-c kemigo.toml] [-t 60s] METHOD [ARGS...]

Calls one method of a running kemigo's control interface (JSON-RPC, as
Kamailio's kamcmd / kamctl rpc) and prints its result as JSON.

  -s SOCKET     unix socket (default /run/kemigo/kemigo.sock)
  -u URL        HTTP endpoint instead, e.g. http://127.0.0.1:5071
  --token T     bearer token for HTTP (default: $KEMIGO_TOKEN, or the config's)
  -c FILE       take socket, http and token from FILE's [jsonrpcs] section
  -t DURATION   give up after this long (default 60s)

Arguments that are integers are sent as numbers, others as strings;
prefix one with "s:" to send it as a string (s:10).

Shorthands: reload (app_python.reload), ps (core.psx), version, uptime,
ls (system.listMethods), help METHOD (system.methodHelp), stats [WHAT]
(stats.get_statistics, default all).

Examples:
  kemigo ctl reload
  kemigo ctl htable.dump ipban
  kemigo ctl htable.sets ipban 1.2.3.4 s:1
  kemigo ctl -u http://127.0.0.1:5071 --token "$TOKEN" core.uptime
`

// ctlAliases maps kamcmd-style shorthands to methods.
var ctlAliases = map[string]string{
	"reload":  "app_python.reload",
	"ps":      "core.psx",
	"version": "core.version",
	"uptime":  "core.uptime",
	"ls":      "system.listMethods",
	"help":    "system.methodHelp",
	"stats":   "stats.get_statistics",
}

func cmdCtl(args []string) error { return runCtl(args, os.Stdout) }

// ctlError is a JSON-RPC error answered by the server.
type ctlError struct{ e rpc.Error }

func (c *ctlError) Error() string {
	msg := fmt.Sprintf("error: %d - %s", c.e.Code, c.e.Message)
	switch d := c.e.Data.(type) {
	case string:
		msg += " (" + d + ")"
	case map[string]any:
		if tb, ok := d["traceback"].(string); ok && tb != "" {
			msg += "\n" + strings.TrimRight(tb, "\n")
		}
	}
	return msg
}

// runCtl is cmdCtl writing the result to stdout (tests).
func runCtl(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("ctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	sock := fs.String("s", "", "")
	endpoint := fs.String("u", "", "")
	token := fs.String("token", "", "")
	cfgFile := fs.String("c", "", "")
	timeout := fs.Duration("t", 60*time.Second, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, ctlUsage)
			return nil
		}
		return fmt.Errorf("ctl: %w\n%s", err, ctlUsage)
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return errors.New("ctl: no method\n" + ctlUsage)
	}
	if *sock != "" && *endpoint != "" {
		return errors.New("ctl: -s and -u exclude each other")
	}
	cfg := rpc.DefaultConfig()
	if *cfgFile != "" {
		var f struct {
			JSONRPCS *rpc.Config `toml:"jsonrpcs"`
		}
		f.JSONRPCS = &cfg
		if _, err := toml.DecodeFile(*cfgFile, &f); err != nil {
			return fmt.Errorf("ctl: %w", err)
		}
		if *sock == "" && *endpoint == "" {
			if cfg.Socket != "" {
				*sock = cfg.Socket
			} else if cfg.HTTP != "" {
				*endpoint = "http://" + cfg.HTTP
			}
		}
	}
	if *sock == "" && *endpoint == "" {
		*sock = rpc.DefaultSocket
	}
	tok := *token
	if tok == "" {
		tok = os.Getenv("KEMIGO_TOKEN")
	}
	if tok == "" {
		tok = cfg.Token
	}

	method, params := ctlRequest(rest)
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": method, "params": params, "id": 1})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	var raw []byte
	if *endpoint != "" {
		raw, err = ctlHTTP(ctx, *endpoint, tok, body)
	} else {
		raw, err = ctlUnix(ctx, *sock, body)
	}
	if err != nil {
		return err
	}
	var res struct {
		Result json.RawMessage `json:"result"`
		Error  *rpc.Error      `json:"error"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return fmt.Errorf("ctl: bad reply: %v: %.200q", err, raw)
	}
	if res.Error != nil {
		return &ctlError{*res.Error}
	}
	var out bytes.Buffer
	if len(res.Result) == 0 {
		res.Result = json.RawMessage("null")
	}
	if err := json.Indent(&out, res.Result, "", "  "); err != nil {
		return fmt.Errorf("ctl: bad result: %w", err)
	}
	out.WriteByte('\n')
	_, err = stdout.Write(out.Bytes())
	return err
}

// ctlRequest resolves a shorthand and types the arguments as kamcmd does:
// integers are numbers, "s:..." and anything else strings.
func ctlRequest(args []string) (string, []any) {
	method := args[0]
	if m, ok := ctlAliases[method]; ok {
		method = m
	}
	params := make([]any, 0, len(args)-1)
	for _, a := range args[1:] {
		if s, ok := strings.CutPrefix(a, "s:"); ok {
			params = append(params, s)
		} else if n, err := strconv.ParseInt(a, 10, 64); err == nil {
			params = append(params, n)
		} else {
			params = append(params, a)
		}
	}
	if method == "stats.get_statistics" && len(params) == 0 {
		params = append(params, "all")
	}
	return method, params
}

func ctlUnix(ctx context.Context, path string, body []byte) ([]byte, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("ctl: %w (is kemigo running, with [jsonrpcs] socket = %q?)", err, path)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := c.Write(append(body, '\n')); err != nil {
		return nil, fmt.Errorf("ctl: %w", err)
	}
	var raw json.RawMessage
	if err := json.NewDecoder(c).Decode(&raw); err != nil {
		return nil, fmt.Errorf("ctl: reading the reply: %w", err)
	}
	return raw, nil
}

func ctlHTTP(ctx context.Context, endpoint, token string, body []byte) ([]byte, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("ctl: -u %q: want http://host:port[/path]", endpoint)
	}
	if u.Path == "" {
		u.Path = "/"
	}
	req, err := http.NewRequestWithContext(ctx, "POST", u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ctl: %w", err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("ctl: reading the reply: %w", err)
	}
	switch {
	case res.StatusCode == http.StatusUnauthorized:
		return nil, errors.New("ctl: unauthorized: the server wants a token (--token or $KEMIGO_TOKEN)")
	case strings.HasPrefix(res.Header.Get("Content-Type"), "application/json"):
		return raw, nil // JSON-RPC errors come with their code as HTTP status
	default:
		return nil, fmt.Errorf("ctl: HTTP %s: %s", res.Status, strings.TrimSpace(string(raw)))
	}
}
