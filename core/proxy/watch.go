package proxy

import (
	"os"
	"time"
)

// watchScript reloads the script when its file changes ([app_python3]
// watch = true). Polling once a second is cheap and needs no inotify.
func (p *Proxy) watchScript(stop <-chan struct{}) {
	path := p.Cfg.Script()
	last := modTime(path)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		mt := modTime(path)
		if mt.IsZero() || mt.Equal(last) {
			continue
		}
		last = mt
		if err := p.Reload(); err != nil {
			p.Log.Error().Err(err).Str("script", path).Msg("reload on change failed; the old script keeps running")
		} else {
			p.Log.Info().Str("script", path).Msg("script changed: reloaded")
		}
	}
}

func modTime(path string) time.Time {
	st, err := os.Stat(path)
	if err != nil {
		return time.Time{}
	}
	return st.ModTime()
}
