package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/kemigo/kemigo/core/config"
	"github.com/kemigo/kemigo/core/kemi"
	"github.com/kemigo/kemigo/core/proxy"
	"github.com/kemigo/kemigo/pybridge"
	"github.com/rs/zerolog"
)

// errFindings makes the exit status non-zero without another message.
var errFindings = errors.New("findings")

// cmdCheck loads a script in one worker without SIP (mod_init and
// child_init run), then reports every KSR call kemigo cannot serve.
func cmdCheck(args []string) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	cfgFile := fs.String("c", "", "TOML config file (for script style and paths)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: kemigo check [-c kemigo.toml] SCRIPT")
	}
	script := fs.Arg(0)
	cfg := config.Default()
	if *cfgFile != "" {
		var err error
		if cfg, err = config.Load(*cfgFile); err != nil {
			return err
		}
	}
	table := proxy.ExportTable()
	if err := pybridge.Init(table); err != nil {
		return err
	}
	eng, err := pybridge.New(pybridge.Options{Script: script, Workers: 1, Single: true,
		Style: cfg.AppPython3.ScriptStyle, ModInit: cfg.AppPython3.ModInitFunction,
		ChildInit: cfg.AppPython3.ChildInitMethod, ExtraPaths: cfg.AppPython3.ExtraPaths}, zerolog.Nop())
	if err != nil {
		var se *pybridge.ScriptError
		if errors.As(err, &se) {
			fmt.Fprintf(os.Stderr, "%s:%d: the script does not load:\n%s", se.File, se.Line, se.Text)
			return errFindings
		}
		return err
	}
	defer eng.Close()
	out, err := runCheck(eng, script, table)
	if err != nil {
		return err
	}
	var findings []struct {
		File string `json:"file"`
		Line int    `json:"line"`
		Msg  string `json:"msg"`
	}
	if err := json.Unmarshal([]byte(out), &findings); err != nil {
		return err
	}
	for _, f := range findings {
		fmt.Printf("%s:%d: %s\n", f.File, f.Line, f.Msg)
	}
	if len(findings) > 0 {
		fmt.Fprintf(os.Stderr, "%d finding(s)\n", len(findings))
		return errFindings
	}
	fmt.Fprintf(os.Stderr, "%s: ok, every KSR call is implemented by kemigo\n", script)
	return nil
}

func runCheck(eng *pybridge.Engine, script string, table *kemi.Table) (string, error) {
	idx := map[string]map[string]int{"": {}}
	for _, e := range table.All() {
		if idx[e.Module] == nil {
			idx[e.Module] = map[string]int{}
		}
		idx[e.Module][e.Name] = len(e.Params)
	}
	tj, _ := json.Marshal(idx)
	var out string
	var err error
	eng.Run(0, func(w *pybridge.Worker) { out, err = w.Helper("check", script, string(tj), 0) })
	return out, err
}
