// Package config reads kemigo's TOML configuration. Sections are named after
// Kamailio modules and keys after their modparams, so a kamailio.cfg maps
// line by line: modparam("htable", "htable", "ipban=>size=8;autoexpire=300;")
// becomes [htable] htable = ["ipban=>size=8;autoexpire=300;"]. Unknown keys
// are an error naming the key.
package config

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/kemigo/kemigo/core/modules/acc"
	"github.com/kemigo/kemigo/core/modules/auth"
	"github.com/kemigo/kemigo/core/modules/auth_db"
	"github.com/kemigo/kemigo/core/modules/corex"
	"github.com/kemigo/kemigo/core/modules/htable"
	"github.com/kemigo/kemigo/core/modules/kx"
	"github.com/kemigo/kemigo/core/modules/maxfwd"
	"github.com/kemigo/kemigo/core/modules/nathelper"
	"github.com/kemigo/kemigo/core/modules/permissions"
	"github.com/kemigo/kemigo/core/modules/pike"
	"github.com/kemigo/kemigo/core/modules/registrar"
	"github.com/kemigo/kemigo/core/modules/rr"
	"github.com/kemigo/kemigo/core/modules/rtpengine"
	"github.com/kemigo/kemigo/core/modules/rtpproxy"
	"github.com/kemigo/kemigo/core/modules/sanity"
	"github.com/kemigo/kemigo/core/modules/siputils"
	"github.com/kemigo/kemigo/core/modules/sl"
	"github.com/kemigo/kemigo/core/modules/tm"
	"github.com/kemigo/kemigo/core/modules/usrloc"
	"github.com/kemigo/kemigo/core/rpc"
	"github.com/kemigo/kemigo/core/transport"
)

// AppPython is the [app_python3] section.
type AppPython struct {
	Load              string   `toml:"load"` // the script (alias script_name)
	ScriptName        string   `toml:"script_name"`
	ScriptStyle       string   `toml:"script_style"` // auto, python3 (app_python3), python3s (app_python3s)
	ModInitFunction   string   `toml:"mod_init_function"`
	ChildInitMethod   string   `toml:"child_init_method"`
	SingleInterpreter bool     `toml:"single_interpreter"` // one worker in the main interpreter
	ExtraPaths        []string `toml:"extra_paths"`        // prepended to sys.path
	Virtualenv        string   `toml:"virtualenv"`         // its site-packages is added to sys.path
	// ErrorReply is the code sent when a request route raised before any
	// reply or relay; 0 turns it off (Kamailio sends nothing).
	ErrorReply int  `toml:"error_reply"`
	Watch      bool `toml:"watch"` // reload when the script file changes
	// WatchdogTimeout (ms): a worker busy with one message (or timer) for
	// longer is logged as stuck, with its Python stack; 0 turns it off.
	WatchdogTimeout int `toml:"watchdog_timeout"`
}

// KEMI is the [kemi] section: Kamailio's kemi.* core globals.
type KEMI struct {
	ReplyRouteCallback  string `toml:"reply_route_callback"`
	OnsendRouteCallback string `toml:"onsend_route_callback"`
	EventRouteCallback  string `toml:"event_route_callback"`
	PreRoutingCallback  string `toml:"pre_routing_callback"`
}

// Config is the whole configuration.
type Config struct {
	Listen    []string `toml:"listen"`     // "udp:127.0.0.1:5060"
	Alias     []string `toml:"alias"`      // host[:port] names that are myself
	Workers   int      `toml:"workers"`    // 0: 1 on Python 3.11, NumCPU on 3.12+
	LogLevel  string   `toml:"log_level"`  // debug, info, warn, error
	LogFormat string   `toml:"log_format"` // json, console
	QueueLen  int      `toml:"queue_len"`  // jobs per worker before overload
	// Dispatch says where a UDP message's route runs: "inline" (default)
	// on the goroutine that read it when its worker is free, handed to the
	// worker's own thread otherwise; "queued" always on the worker's own
	// thread (one more thread wake-up per message; for comparison).
	Dispatch string `toml:"dispatch"`
	// MaxBuffer is the receive buffer asked for each UDP socket, in bytes
	// (Kamailio's maxbuffer; the kernel caps it at net.core.rmem_max). A
	// larger one absorbs a burst, e.g. after the host stalled the VM;
	// 0 keeps the kernel's default.
	MaxBuffer int `toml:"maxbuffer"`
	// GCPercent is Go's GOGC: how far the heap grows over the live data
	// before the next collection. 200 (default) halves the collections of
	// Go's 100 for about 50 MiB more heap under a few hundred calls/s
	// (bench/RESULTS.md, "GC"); 0 keeps Go's default; GOGC in the
	// environment wins over both.
	GCPercent int `toml:"gc_percent"`
	// SendOnlyTo, when not empty, lists the networks (CIDR, or single
	// addresses) kemigo may send to; any other destination, and any host
	// name, is refused and logged. Tests and sandboxes set it to
	// ["127.0.0.0/8", "::1/128"] so that nothing leaves the machine.
	SendOnlyTo []string `toml:"send_only_to"`
	// MaxHeaders bounds the header fields of a received message; a request
	// with more is answered 400 "Too Many Headers" (other messages are
	// dropped), before any routing. 0: no bound.
	MaxHeaders int `toml:"max_headers"`

	TLS        transport.TLSConfig `toml:"tls"`
	AppPython3 AppPython           `toml:"app_python3"`
	KEMI       KEMI                `toml:"kemi"`
	Corex      corex.Config        `toml:"corex"`
	HTable     htable.Config       `toml:"htable"`
	KX         kx.Config           `toml:"kx"`
	MaxFwd     maxfwd.Config       `toml:"maxfwd"`
	Sanity     sanity.Config       `toml:"sanity"`
	SipUtils   siputils.Config     `toml:"siputils"`
	SL         sl.Config           `toml:"sl"`
	TM         tm.Config           `toml:"tm"`
	RR         rr.Config           `toml:"rr"`
	Auth       auth.Config         `toml:"auth"`
	AuthDB     auth_db.Config      `toml:"auth_db"`
	Perms      permissions.Config  `toml:"permissions"`
	Usrloc     usrloc.Config       `toml:"usrloc"`
	Registrar  registrar.Config    `toml:"registrar"`
	NATHelper  nathelper.Config    `toml:"nathelper"`
	Pike       pike.Config         `toml:"pike"`
	Acc        acc.Config          `toml:"acc"`
	RTPProxy   rtpproxy.Config     `toml:"rtpproxy"`
	RTPEngine  rtpengine.Config    `toml:"rtpengine"`
	JSONRPCS   rpc.Config          `toml:"jsonrpcs"`
}

// Default returns the configuration used with no file.
func Default() Config {
	return Config{
		Listen:    []string{"udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"},
		LogLevel:  "info",
		LogFormat: "json",
		QueueLen:  1024,
		// Kamailio probes up to 256 KiB; kemigo asks for 1 MiB (one
		// reader per worker drains the socket where Kamailio has one
		// receiver process per child).
		MaxBuffer: 1 << 20,
		GCPercent: 200,
		// Kamailio has no such limit (its parser is lazy); 256 is far above
		// what real traffic carries (Via and Record-Route grow with the
		// hops, bounded by Max-Forwards 70).
		MaxHeaders: 256,
		AppPython3: AppPython{
			ScriptStyle:     "auto",
			ModInitFunction: "mod_init",
			ChildInitMethod: "child_init",
			ErrorReply:      500,
			WatchdogTimeout: 10000,
		},
		KEMI: KEMI{
			ReplyRouteCallback:  "ksr_reply_route",
			OnsendRouteCallback: "ksr_onsend_route",
		},
		Corex:     corex.DefaultConfig(),
		HTable:    htable.DefaultConfig(),
		KX:        kx.DefaultConfig(),
		MaxFwd:    maxfwd.DefaultConfig(),
		Sanity:    sanity.DefaultConfig(),
		SipUtils:  siputils.DefaultConfig(),
		SL:        sl.DefaultConfig(),
		TM:        tm.DefaultConfig(),
		RR:        rr.DefaultConfig(),
		Auth:      auth.DefaultConfig(),
		AuthDB:    auth_db.DefaultConfig(),
		Perms:     permissions.DefaultConfig(),
		Usrloc:    usrloc.DefaultConfig(),
		Registrar: registrar.DefaultConfig(),
		NATHelper: nathelper.DefaultConfig(),
		Pike:      pike.DefaultConfig(),
		Acc:       acc.DefaultConfig(),
		RTPProxy:  rtpproxy.DefaultConfig(),
		RTPEngine: rtpengine.DefaultConfig(),
		JSONRPCS:  rpc.DefaultConfig(),
	}
}

// Load reads a TOML file over the defaults.
func Load(path string) (Config, error) {
	c := Default()
	md, err := toml.DecodeFile(path, &c)
	if err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	if err := unknown(md); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, c.Validate()
}

// Parse reads TOML text over the defaults (tests, fuzzing).
func Parse(text string) (Config, error) {
	c := Default()
	md, err := toml.Decode(text, &c)
	if err != nil {
		return c, err
	}
	if err := unknown(md); err != nil {
		return c, err
	}
	return c, c.Validate()
}

func unknown(md toml.MetaData) error {
	und := md.Undecoded()
	if len(und) == 0 {
		return nil
	}
	var keys []string
	for _, k := range und {
		ks := k.String()
		parent := false // a whole unknown section is named by its keys
		for _, o := range und {
			if strings.HasPrefix(o.String(), ks+".") {
				parent = true
			}
		}
		if !parent {
			keys = append(keys, ks)
		}
	}
	sort.Strings(keys)
	return fmt.Errorf("unknown config key %s", strings.Join(keys, ", "))
}

// Script returns the configured script path.
func (c *Config) Script() string {
	if c.AppPython3.Load != "" {
		return c.AppPython3.Load
	}
	return c.AppPython3.ScriptName
}

// Validate checks values that TOML types cannot.
func (c *Config) Validate() error {
	for _, l := range c.Listen {
		proto, _, _, err := ParseListen(l)
		if err != nil {
			return err
		}
		if proto == "tls" && (c.TLS.Certificate == "" || c.TLS.PrivateKey == "") {
			return fmt.Errorf("listen %q: a TLS socket needs [tls] certificate and private_key", l)
		}
	}
	switch c.AppPython3.ScriptStyle {
	case "", "auto", "python3", "python3s":
	default:
		return fmt.Errorf("app_python3.script_style: %q is not auto, python3 or python3s", c.AppPython3.ScriptStyle)
	}
	switch c.LogFormat {
	case "", "json", "console":
	default:
		return fmt.Errorf("log_format: %q is not json or console", c.LogFormat)
	}
	if c.GCPercent < 0 {
		return fmt.Errorf("gc_percent: %d is negative", c.GCPercent)
	}
	if c.MaxBuffer < 0 {
		return fmt.Errorf("maxbuffer: %d is negative", c.MaxBuffer)
	}
	switch c.Dispatch {
	case "", "inline", "queued":
	default:
		return fmt.Errorf("dispatch: %q is not inline or queued", c.Dispatch)
	}
	if err := c.JSONRPCS.Validate(); err != nil {
		return fmt.Errorf("jsonrpcs: %w", err)
	}
	if c.Workers < 0 {
		return fmt.Errorf("workers: %d is negative", c.Workers)
	}
	if _, err := c.SendOnlyNets(); err != nil {
		return err
	}
	if c.MaxHeaders < 0 {
		return fmt.Errorf("max_headers: %d is negative", c.MaxHeaders)
	}
	if err := c.TLS.Validate(); err != nil {
		return err
	}
	return nil
}

// SendOnlyNets parses send_only_to.
func (c *Config) SendOnlyNets() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range c.SendOnlyTo {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(strings.Trim(s, "[]"))
		if err != nil {
			return nil, fmt.Errorf("send_only_to: %q is not an address or a CIDR network", s)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// ParseListen splits "proto:host:port" (port defaults to 5060, proto to udp).
func ParseListen(s string) (proto, host string, port int, err error) {
	proto = "udp"
	rest := s
	if i := strings.Index(s, ":"); i > 0 {
		switch p := strings.ToLower(s[:i]); p {
		case "udp", "tcp", "tls":
			proto, rest = p, s[i+1:]
		}
	}
	host, port = rest, 5060
	if strings.HasPrefix(rest, "[") {
		j := strings.Index(rest, "]")
		if j < 0 {
			return "", "", 0, fmt.Errorf("listen %q: bad IPv6 address", s)
		}
		host = rest[1:j]
		rest = rest[j+1:]
		if strings.HasPrefix(rest, ":") {
			if _, err := fmt.Sscanf(rest[1:], "%d", &port); err != nil {
				return "", "", 0, fmt.Errorf("listen %q: bad port", s)
			}
		}
	} else if i := strings.LastIndex(rest, ":"); i >= 0 {
		host = rest[:i]
		if _, err := fmt.Sscanf(rest[i+1:], "%d", &port); err != nil || port <= 0 || port > 65535 {
			return "", "", 0, fmt.Errorf("listen %q: bad port", s)
		}
	}
	if host == "" {
		return "", "", 0, fmt.Errorf("listen %q: no address", s)
	}
	return proto, host, port, nil
}
