# kemigo - see README.md. `make help` lists the targets.
#
# Python: by default cgo builds against the python3-embed of pkg-config
# (Debian 12: Python 3.11 from python3-dev). Select another one with
#   make build PYTHON=3.13          newest pyenv 3.13.x with a shared libpython
#   make build PYTHON=/opt/py313    an install prefix (PREFIX/lib/pkgconfig)
#   PKG_CONFIG_PATH=/opt/py313/lib/pkgconfig make build
# Either way the binary gets an rpath to that libpython.

SHELL       := /bin/bash
.SHELLFLAGS := -o pipefail -ec
.DEFAULT_GOAL := build

GO       ?= go
BIN      ?= kemigo
BINX      = $(if $(findstring /,$(BIN)),$(BIN),./$(BIN))
# `make run`
CONFIG   ?= examples/kemigo.toml
REF_SCRIPT := /usr/share/doc/kamailio/examples/kemi/kamailio-basic-kemi-python.py
SCRIPT   ?=
RUN_ARGS ?=
# `make test` / `make bench`
TESTFLAGS  ?=
BENCH      ?= .
BENCHTIME  ?= 1s
BENCHCOUNT ?= 1
BENCH_PKGS := ./pybridge/ ./core/proxy/ ./core/sipmsg/ ./core/pv/
BENCH_OUT  := bench/out

# apt packages: to build and run, and to run the tests (Go itself is given).
# kamailio brings the reference KEMI scripts under /usr/share/doc/kamailio.
DEPS_APT      := gcc libc6-dev pkg-config python3-dev kamailio
TEST_DEPS_APT := $(DEPS_APT) sip-tester kamailio-python3-modules python3-pytest python3-yaml

SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
APT  := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get -q -y \
	-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold

PYENV_ROOT ?= $(shell pyenv root 2>/dev/null || echo "$$HOME/.pyenv")

# "VERSION DIR" of every pyenv CPython that can be embedded (a shared
# libpython and python3-embed.pc), oldest first; free-threaded and other
# suffixed builds are left out.
PYENV_LIST = for d in "$(PYENV_ROOT)"/versions/*/; do d=$${d%/}; v=$${d\#\#*/}; \
	case "$$v" in *[!0-9.]*|"") continue;; esac; mm=$$(echo "$$v" | cut -d. -f1,2); \
	if [ -f "$$d/lib/pkgconfig/python3-embed.pc" ] && ls "$$d"/lib/libpython$$mm*.so* >/dev/null 2>&1; then echo "$$v $$d"; fi; \
	done | sort -V

# Prefix of the Python asked for with PYTHON=.
ifneq ($(PYTHON),)
  ifneq ($(wildcard $(PYTHON)/lib/pkgconfig/python3-embed.pc),)
    PY_PREFIX := $(abspath $(PYTHON))
  else
    PY_PREFIX := $(shell $(PYENV_LIST) | awk -v w='$(PYTHON)' '$$1 == w || index($$1, w ".") == 1 { d = $$2 } END { print d }')
    ifeq ($(PY_PREFIX),)
      $(error PYTHON=$(PYTHON): no such Python with a shared library in $(PYENV_ROOT)/versions (pyenv: PYTHON_CONFIGURE_OPTS=--enable-shared pyenv install $(PYTHON)), nor an install prefix with lib/pkgconfig/python3-embed.pc)
    endif
  endif
  PY_PCP := $(PY_PREFIX)/lib/pkgconfig$(if $(PKG_CONFIG_PATH),:$(PKG_CONFIG_PATH))
else
  PY_PCP := $(PKG_CONFIG_PATH)
endif

# Environment of every go command: with another Python, its pkg-config
# directory and an rpath to its libpython.
ifneq ($(PY_PCP),)
  PY_LIBDIR := $(shell PKG_CONFIG_PATH='$(PY_PCP)' pkg-config --variable=libdir python3-embed)
  GOENV := PKG_CONFIG_PATH='$(PY_PCP)' CGO_LDFLAGS='$(strip $(or $(CGO_LDFLAGS),-O2 -g) -Wl,-rpath,$(PY_LIBDIR))'
else
  GOENV :=
endif
PY_VERSION = $(shell $(if $(PY_PCP),PKG_CONFIG_PATH='$(PY_PCP)') pkg-config --modversion python3-embed 2>/dev/null || echo '?')

.PHONY: help build deps test-deps test gotest vet fmt bench bench-sip soak run stubs clean fuzz

help:
	@echo 'make deps run        install what building and running need (apt), run the proxy on the Debian reference script'
	@echo 'make test-deps test  install what the tests need (apt, Go modules), run go vet and go test'
	@echo
	@echo 'build      $(BINX) (PYTHON=3.13 or PKG_CONFIG_PATH=... for another Python)'
	@echo 'run        build, then $(BINX) run -c $(CONFIG) (SCRIPT=file.py for another script)'
	@echo 'test       go vet + go test ./... with the default Python, then with the newest pyenv Python >= 3.12'
	@echo 'bench      Go benchmarks (ns/op, allocs/op); BENCH=regexp BENCHTIME=1s PYTHON=3.13'
	@echo 'fuzz       every go test -fuzz target for FUZZTIME (30s) each'
	@echo 'bench-sip  SIPp: kemigo (Python, native Go) vs Kamailio (app_python3, native cfg); QUICK=1'
	@echo 'soak       30 minutes of calls at half the sustainable rate'
	@echo 'stubs      regenerate python/KSR.pyi and docs/KEMI.md'
	@echo 'vet fmt    go vet ./..., go fmt ./...'

build:
	$(GOENV) $(GO) build -o $(BIN) ./cmd/kemigo
	@$(BINX) version

deps:
	$(APT) update
	$(APT) install --no-install-recommends $(DEPS_APT)

test-deps:
	$(APT) update
	$(APT) install --no-install-recommends $(TEST_DEPS_APT)
	$(GO) mod download

# One pass of the checks with the selected Python.
gotest:
	@echo "== Python $(PY_VERSION)$(if $(PY_PCP), ($(PY_PCP))): go vet ./... && go test ./..."
	$(GOENV) $(GO) vet ./...
	$(GOENV) $(GO) test $(TESTFLAGS) ./...

# The newest pyenv Python >= 3.12 that can be embedded, or nothing.
PY_NEWEST = $(PYENV_LIST) | awk '{ split($$1, v, "."); if (v[1] > 3 || (v[1] == 3 && v[2] >= 12)) d = $$2 } END { print d }'

test:
	@$(MAKE) --no-print-directory gotest
	@newest=$$($(PY_NEWEST)); \
	if [ -z "$$newest" ]; then \
		echo "== Python >= 3.12: skipped: no Python >= 3.12 with a shared library (looked in $(PYENV_ROOT)/versions)"; \
	else \
		$(MAKE) --no-print-directory gotest PYTHON="$$newest" PKG_CONFIG_PATH=; \
	fi

vet:
	$(GOENV) $(GO) vet ./...

fmt:
	$(GO) fmt ./...

# SIPp against kemigo (Python and native Go routes) and Kamailio 5.6
# (app_python3 and native cfg), interleaved; installs Kamailio and SIPp when
# missing. QUICK=1 for a ~3 minute sanity run. Writes bench/RESULTS.md.
bench-sip: build
	@command -v sipp >/dev/null && command -v kamailio >/dev/null || $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y sip-tester kamailio kamailio-python3-modules kamailio-sqlite-modules python3-matplotlib
	python3 bench/sip/run.py $(if $(filter-out 0,$(QUICK)),--quick)

# 30 minutes of authenticated calls at half the sustainable rate (not CI).
soak: build
	$(GO) run ./bench/soak -kemigo ./kemigo -find -duration 30m

# Fuzz every go test -fuzz target for FUZZTIME each (crashes land in the
# package's testdata/fuzz as regression cases).
FUZZTIME ?= 30s
fuzz:
	FUZZTIME=$(FUZZTIME) sh bench/fuzz.sh

bench:
	@mkdir -p $(BENCH_OUT)
	@out=$(BENCH_OUT)/go-bench-py$(PY_VERSION).txt; \
	{ echo "# $$(date -u +%Y-%m-%dT%H:%MZ) $$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //') ($$(nproc) CPUs), Python $(PY_VERSION), $$($(GO) version | cut -d' ' -f3)"; \
	  $(GOENV) $(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -benchtime $(BENCHTIME) -count $(BENCHCOUNT) $(BENCH_PKGS); } | tee $$out; \
	echo "(saved in $$out)"

run: build
	@test -f "$(or $(SCRIPT),$(REF_SCRIPT))" || { echo "$(or $(SCRIPT),$(REF_SCRIPT)) not found: make deps (Debian package kamailio) or SCRIPT=your-script.py"; exit 1; }
	$(BINX) run -c $(CONFIG) $(if $(SCRIPT),--script $(SCRIPT)) $(RUN_ARGS)

stubs: build
	$(BINX) stubs --out python/KSR.pyi
	$(BINX) apidoc --out docs/KEMI.md

clean:
	rm -f $(BIN)
	rm -rf $(BENCH_OUT)
