#!/bin/sh
# Installs what is missing, builds tocsind, and runs it in the foreground on the
# embedded default configuration (it monitors this machine). Extra arguments go to
# tocsind, e.g. `scripts/start.sh --listen 127.0.0.1:9600 --data-dir /tmp/tocsin`.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/install-deps.sh" run
"$top/scripts/build.sh" "$top/build/release"
exec "$top/build/release/tocsind" "$@"
