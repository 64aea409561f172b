#!/usr/bin/env bash
# A private PostgreSQL cluster for the tests: Debian's postgresql, initdb and pg_ctl in a temp folder, on a free
# port on 127.0.0.1, trust authentication for the local postgres role only. initdb refuses root, so as root the
# cluster runs as the postgres user. Sourced by scripts/test.sh and scripts/benchmark.sh:
#   vigil_postgres_start   → exports VIGIL_TEST_POSTGRES=postgres://postgres@127.0.0.1:PORT
#   vigil_postgres_stop

vigil_postgres_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [[ -n "$dir" && -x "$dir/pg_ctl" ]] && echo "$dir"
}

vigil_postgres_start() {
  local bin
  bin=$(vigil_postgres_bin) || true
  if [[ -z "$bin" ]]; then
    local sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    bin=$(vigil_postgres_bin)
  fi
  VIGIL_PG_DIR=$(mktemp -d /tmp/vigil-pg.XXXXXX)
  chmod 755 "$VIGIL_PG_DIR"
  local as=()
  if [[ $(id -u) -eq 0 ]]; then
    chown postgres:postgres "$VIGIL_PG_DIR"
    as=(runuser -u postgres --)
  fi
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "${as[@]}" "$bin/initdb" -D "$VIGIL_PG_DIR/data" -U postgres --auth=trust -E UTF8 >/dev/null
  "${as[@]}" "$bin/pg_ctl" -D "$VIGIL_PG_DIR/data" -l "$VIGIL_PG_DIR/log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $VIGIL_PG_DIR -c fsync=on -c max_connections=200" start >/dev/null
  export VIGIL_PG_BIN="$bin" VIGIL_PG_DIR
  export VIGIL_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port"
  echo "== PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data in $VIGIL_PG_DIR)"
}

vigil_postgres_stop() {
  [[ -z "${VIGIL_PG_DIR:-}" ]] && return 0
  local as=()
  [[ $(id -u) -eq 0 ]] && as=(runuser -u postgres --)
  "${as[@]}" "$VIGIL_PG_BIN/pg_ctl" -D "$VIGIL_PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$VIGIL_PG_DIR"
}
