#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests: its own data directory (under
# a fresh temporary directory), its own port on 127.0.0.1, trust auth, and
# durability switched off for speed. Run as root; the server runs as the
# postgres user, since it refuses to run as root.
#
#   .ci/postgres.sh start   creates and starts a cluster; prints the two
#                           export lines below, so eval "$(... start)" sets
#                           LLMBATCH_PG_DIR and LLMBATCH_TEST_POSTGRES
#   .ci/postgres.sh dsn     prints the DSN of the cluster in $LLMBATCH_PG_DIR
#   .ci/postgres.sh stop    stops it and removes its directory (no-op when
#                           there is none, so it can sit in a trap)
#
# start with $LLMBATCH_PG_DIR set to a running cluster's directory prints that
# cluster again rather than starting a second one.
set -euo pipefail

marker=llmbatch-postgres # a file in every directory this script made
# The script's own stderr, for messages from a trap that may fire while a
# command's output goes to a log.
exec 9>&2

die() {
  echo "postgres.sh: $*" >&9
  exit 1
}

# bindir is the newest installed server's bin directory (Debian layout).
bindir() {
  local dirs
  dirs=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V) || true
  [ -n "$dirs" ] && [ -x "${dirs##*$'\n'}/initdb" ] ||
    die "no PostgreSQL server in /usr/lib/postgresql (apt-get install postgresql)"
  echo "${dirs##*$'\n'}"
}

# as_postgres runs a command as the postgres user in directory $dir. Where
# /dev/null is closed to other users than root, initdb and the server fail on
# it; they then run in a private mount namespace whose /dev/null is a fresh
# node, so the machine itself is left alone. A server started there keeps
# that namespace for its life.
as_postgres() {
  if runuser -u postgres -- test -w /dev/null; then
    (cd "$dir" && runuser -u postgres -- "$@")
    return
  fi
  # The node lives on a tmpfs of the namespace's own: a bind mount keeps the
  # nodev flag of the file system it comes from.
  unshare --mount --propagation private -- /bin/sh -euc '
    dir=$1; shift
    mkdir -p "$dir/dev"
    mount -t tmpfs -o size=64k,mode=755 llmbatch-dev "$dir/dev"
    mknod -m 666 "$dir/dev/null" c 1 3
    mount --bind "$dir/dev/null" /dev/null
    cd "$dir"
    exec runuser -u postgres -- "$@"
  ' sh "$dir" "$@"
}

# free_port prints the first port from $1 up that nothing on 127.0.0.1
# answers on.
free_port() {
  local port=$1
  while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    port=$((port + 1))
  done
  echo "$port"
}

print_env() {
  printf 'export LLMBATCH_PG_DIR=%q\n' "$dir"
  printf 'export LLMBATCH_TEST_POSTGRES=%q\n' "$(cat "$dir/dsn")"
}

# running reports whether the cluster in $dir answers; any user may ask.
running() {
  [ -f "$dir/$marker" ] && [ -f "$dir/dsn" ] &&
    "$(bindir)/pg_isready" -q -d "$(cat "$dir/dsn")"
}

ensure_user() {
  id -u postgres >/dev/null 2>&1 && return
  useradd --system --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin postgres
}

cmd_start() {
  [ "$(id -u)" = 0 ] || die "run as root: the server then runs as the postgres user"
  dir=${LLMBATCH_PG_DIR:-}
  if [ -n "$dir" ] && running; then
    print_env
    return
  fi
  local bin
  bin=$(bindir)
  ensure_user
  dir=$(mktemp -d "${TMPDIR:-/tmp}/llmbatch-pg.XXXXXX")
  trap start_failed EXIT
  touch "$dir/$marker"
  chown postgres: "$dir"
  chmod 755 "$dir"
  as_postgres "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 \
    --locale=C --no-sync --no-instructions >"$dir/initdb.log" 2>&1
  cat >>"$dir/data/postgresql.conf" <<EOF
# llmbatch test cluster: nothing here needs to survive a crash.
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
  start_server "$bin"
  trap - EXIT
  print_env
}

# start_server starts the cluster on a free port; when another process takes
# that port between the check and the bind, it tries the next one.
start_server() {
  local bin=$1 port=55432 _
  for _ in 1 2 3 4 5; do
    port=$(free_port "$port")
    sed -i '/^port = /d' "$dir/data/postgresql.conf"
    echo "port = $port" >>"$dir/data/postgresql.conf"
    : >"$dir/server.log" && chown postgres: "$dir/server.log"
    if as_postgres "$bin/pg_ctl" start -D "$dir/data" -l "$dir/server.log" -w -t 60 >>"$dir/pg_ctl.log" 2>&1; then
      echo "postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable" >"$dir/dsn"
      return
    fi
    grep -q 'could not bind\|already in use' "$dir/server.log" || break
    port=$((port + 1))
  done
  return 1
}

start_failed() {
  echo "postgres.sh: start failed; the end of its logs:" >&9
  tail -n 20 "$dir"/*.log >&9 2>/dev/null || true
  cmd_stop
}

cmd_stop() {
  dir=${dir:-${LLMBATCH_PG_DIR:-}}
  [ -n "$dir" ] && [ -d "$dir" ] || return 0
  [ "$(id -u)" = 0 ] || die "run as root: the server runs as the postgres user"
  # Remove only what this script made.
  [ -f "$dir/$marker" ] || die "$dir was not made by postgres.sh; not removing it"
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_postgres "$(bindir)/pg_ctl" stop -D "$dir/data" -m immediate -w -t 60 >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}

cmd_dsn() {
  dir=${LLMBATCH_PG_DIR:-}
  [ -n "$dir" ] || die "LLMBATCH_PG_DIR is not set: eval \"\$(.ci/postgres.sh start)\" first"
  running || die "no cluster running in $dir"
  cat "$dir/dsn"
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
dsn) cmd_dsn ;;
*) die "usage: postgres.sh start|stop|dsn" ;;
esac
