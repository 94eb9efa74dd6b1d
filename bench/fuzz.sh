#!/bin/sh
# Runs every fuzz target of kemigo for FUZZTIME each (default 30s), one
# after the other, from the repository root (7 targets: 3.5 min at 30 s).
# See docs/RELIABILITY.md, "Fuzzing". A failing input is written by
# `go test` to <package>/testdata/fuzz/<Target>/ and the script stops
# there: fix the bug, keep that file (it becomes a regression case run by
# every `go test`), and run again.
#
#   sh bench/fuzz.sh                  # 30 s per target
#   FUZZTIME=60s sh bench/fuzz.sh     # longer
#   sh bench/fuzz.sh FuzzDigest       # only the targets named
#
# Makefile equivalent:
#   FUZZTIME ?= 30s
#   fuzz:
#   	FUZZTIME=$(FUZZTIME) sh bench/fuzz.sh
set -eu
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-30s}

# package:target
TARGETS="
./core/sipmsg:FuzzParse
./core/sipmsg:FuzzEdits
./core/pv:FuzzPV
./core/modules/auth:FuzzDigest
./core/config:FuzzParse
./core/modules/siputils:FuzzParseURI
./pybridge:FuzzBridge
"

for t in $TARGETS; do
	pkg=${t%%:*}
	name=${t##*:}
	if [ $# -gt 0 ]; then
		case " $* " in *" $name "*) ;; *) continue ;; esac
	fi
	echo "== $pkg $name ($FUZZTIME)"
	go test "$pkg" -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME"
done
