// Command kemigo is a SIP proxy whose routing logic is a Kamailio KEMI
// Python script.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/kemigo/kemigo/core/config"
	"github.com/kemigo/kemigo/pybridge"
	"github.com/rs/zerolog"
)

// Version is the kemigo version.
const Version = "0.1.0"

const usage = `kemigo %s - a SIP proxy routed by Kamailio KEMI Python scripts

Usage:
  kemigo run --script FILE [--listen udp:127.0.0.1:5060 ...] [--workers N] [-c kemigo.toml]
             [--native basic] [--pprof 127.0.0.1:6060]
  kemigo ctl [-s SOCKET | -u URL] [--token T] METHOD [ARGS...]   control a running proxy (JSON-RPC)
  kemigo check [-c kemigo.toml] SCRIPT   load a script and report KSR calls kemigo cannot serve
  kemigo test [-c kemigo.toml] [--script FILE] [PATHS...]  run Python route tests of a script on kemigo's core
  kemigo db init [--db URL | -c kemigo.toml]              create Kamailio's tables (subscriber, location, address, acc, ...)
  kemigo user add USER@DOMAIN PASSWORD | rm USER@DOMAIN | passwd USER@DOMAIN PASSWORD | list
  kemigo stubs [--out FILE]       write the KSR type stubs (python/KSR.pyi)
  kemigo apidoc [--out FILE]      write the reference of implemented KEMI functions
  kemigo version
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintf(os.Stderr, usage, Version)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		execWithRuntimeSettings()
		err = cmdRun(os.Args[2:])
	case "ctl":
		err = cmdCtl(os.Args[2:])
	case "check":
		err = cmdCheck(os.Args[2:])
	case "test":
		err = cmdTest(os.Args[2:])
	case "db":
		err = cmdDB(os.Args[2:])
	case "user":
		err = cmdUser(os.Args[2:])
	case "stubs":
		err = cmdGen(os.Args[2:], "python/KSR.pyi", writeStubs)
	case "apidoc":
		err = cmdGen(os.Args[2:], "docs/KEMI.md", writeAPIDoc)
	case "version", "--version", "-v":
		fmt.Printf("kemigo %s (Python %s)\n", Version, pybridge.PyVersion())
	case "help", "-h", "--help":
		fmt.Printf(usage, Version)
	default:
		fmt.Fprintf(os.Stderr, "kemigo: unknown command %q\n"+usage, os.Args[1], Version)
		os.Exit(2)
	}
	if err != nil {
		if err != errFindings {
			fmt.Fprintln(os.Stderr, "kemigo:", err)
		}
		os.Exit(1)
	}
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func newLogger(format, level string, out io.Writer) (zerolog.Logger, error) {
	lv, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		return zerolog.Logger{}, fmt.Errorf("log level %q: use debug, info, warn or error", level)
	}
	zerolog.TimeFieldFormat = time.RFC3339Nano
	if format == "console" {
		out = zerolog.ConsoleWriter{Out: out, TimeFormat: "15:04:05.000"}
	}
	return zerolog.New(out).Level(lv).With().Timestamp().Logger(), nil
}

func cmdRun(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var listens listFlag
	script := fs.String("script", "", "route script (app_python3 or app_python3s style)")
	cfgFile := fs.String("c", "", "TOML config file")
	workers := fs.Int("workers", -1, "Python workers (default: 1 on Python 3.11, CPU count on 3.12+)")
	logFormat := fs.String("log-format", "", "json or console")
	logLevel := fs.String("log-level", "", "debug, info, warn, error")
	nativeName := fs.String("native", "", "route with a native Go route set instead of the Python script (basic: Kamailio's reference script in Go)")
	pprofAddr := fs.String("pprof", "", "serve Go profiles (/debug/pprof/) on this loopback ip:port")
	fs.Var(&listens, "listen", "listen socket proto:ip:port (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := config.Default()
	if *cfgFile != "" {
		var err error
		if cfg, err = config.Load(*cfgFile); err != nil {
			return err
		}
	}
	if *script != "" {
		cfg.AppPython3.Load = *script
	}
	if len(listens) > 0 {
		cfg.Listen = listens
	}
	if *workers >= 0 {
		cfg.Workers = *workers
	}
	if *logFormat != "" {
		cfg.LogFormat = *logFormat
	}
	if *logLevel != "" {
		cfg.LogLevel = *logLevel
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	log, err := newLogger(cfg.LogFormat, cfg.LogLevel, os.Stderr)
	if err != nil {
		return err
	}
	log.Debug().Int("gc_percent", setGCPercent(cfg.GCPercent)).Str("GODEBUG", os.Getenv("GODEBUG")).Msg("Go runtime")
	stopPprof, err := startPprof(*pprofAddr, log)
	if err != nil {
		return err
	}
	defer stopPprof()
	p, err := newProxy(cfg, log, *nativeName)
	if err != nil {
		return err
	}
	p.Start()
	if err := p.StartControl(Version); err != nil {
		p.Close()
		return fmt.Errorf("control interface: %w", err)
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	for s := range sigs {
		if s == syscall.SIGHUP {
			if _, _, err := p.App.Reload(); err != nil {
				log.Error().Err(err).Msg("reload failed; the old script keeps running")
			} else {
				log.Info().Msg("script reloaded")
			}
			continue
		}
		log.Info().Str("signal", s.String()).Msg("stopping")
		p.Close()
		return nil
	}
	return nil
}

func cmdGen(args []string, def string, gen func(io.Writer) error) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	out := fs.String("out", "", "output file (default: stdout); conventional path "+def)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return gen(os.Stdout)
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	if err := gen(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
