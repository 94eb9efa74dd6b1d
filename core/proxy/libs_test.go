package proxy_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kemigo/kemigo/core/config"
	"github.com/kemigo/kemigo/internal/siptest"
)

// TestExtraPaths: a route imports a library from a configured path and a
// pure-Python Debian package (python3-yaml) placed on the configured path.
func TestExtraPaths(t *testing.T) {
	const debian = "/usr/lib/python3/dist-packages"
	if _, err := os.Stat(filepath.Join(debian, "yaml", "__init__.py")); err != nil {
		t.Skip("python3-yaml is not installed (apt-get install python3-yaml)")
	}
	lib := t.TempDir()
	if err := os.WriteFile(filepath.Join(lib, "mylib.py"), []byte("def greet():\n    return 'hello'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.AppPython3.Load = "testdata/uses_libs.py"
	cfg.AppPython3.ExtraPaths = []string{lib, debian}
	_, udp, _ := siptest.StartProxy(t, cfg)
	c := siptest.Dial(t, "udp", udp)
	_, res := c.Exchange(siptest.Options)
	siptest.AssertStatus(t, res, 200, "hello 42")
}
