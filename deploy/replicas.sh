#!/usr/bin/env bash
# Start N replicas of the app, each on its own port with its own temp folder, behind nginx (or
# HAProxy); stop them by their PID files. See README, "Serving a class".
#
#   deploy/replicas.sh start [N]   N replicas (default 2) on ports BASE_PORT+1..+N, then the balancer
#   deploy/replicas.sh stop        SIGTERM every replica (it drains: runs in flight finish), then the balancer
#   deploy/replicas.sh status      PID, port, readiness and memory of each
#
# Settings (environment): RUN_DIR (deploy/run; PID files, logs, temp folders), BASE_PORT (7860), LISTEN (127.0.0.1:8080),
# BALANCER (nginx | haproxy | none), ROOT_PATH (e.g. /playground; default: none), PYTHON
# (.venv/bin/python), PLAYGROUND_DRAIN_TIMEOUT_S (60). Other PLAYGROUND_* variables reach the replicas.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR="$(mkdir -p "${RUN_DIR:-deploy/run}" && cd "${RUN_DIR:-deploy/run}" && pwd)"
BASE_PORT="${BASE_PORT:-7860}"
LISTEN="${LISTEN:-127.0.0.1:8080}"
BALANCER="${BALANCER:-nginx}"
ROOT_PATH="${ROOT_PATH:-}"
PYTHON="${PYTHON:-.venv/bin/python}"
DRAIN="${PLAYGROUND_DRAIN_TIMEOUT_S:-60}"
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}" GRADIO_ANALYTICS_ENABLED=False PYTHONUNBUFFERED=1

die() { echo "error: $*" >&2; exit 2; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
# A PID file's process, only if it is still ours (a PID can be reused after a crash).
ours() { alive "$1" && grep -qaE "$2" "/proc/$(cat "$1")/cmdline" 2>/dev/null; }

stop_pid_file() {  # pid_file pattern wait_s signal
  local pid_file="$1" pattern="$2" wait_s="$3" sig="$4"
  if ours "$pid_file" "$pattern"; then
    local pid; pid="$(cat "$pid_file")"
    kill -"$sig" "$pid"
    for _ in $(seq 1 $((wait_s * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then echo "pid $pid did not stop in ${wait_s} s: SIGKILL" >&2; kill -KILL "$pid"; fi
  fi
  rm -f "$pid_file"
}

start() {
  local n="${1:-2}" ports=() port i
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "N must be a positive number of replicas, got '$n'"
  mkdir -p "$RUN_DIR"
  for i in $(seq 1 "$n"); do
    port=$((BASE_PORT + i)); ports+=("$port")
    local dir="$RUN_DIR/replica-$i"
    if ours "$dir/pid" playground; then echo "replica $i already running (pid $(cat "$dir/pid"))"; continue; fi
    mkdir -p "$dir/tmp"
    PLAYGROUND_TEMP_DIR="$dir/tmp" nohup "$PYTHON" -m playground --port "$port" \
      ${ROOT_PATH:+--root-path "$ROOT_PATH"} >"$dir/log" 2>&1 &
    echo $! >"$dir/pid"
    echo "replica $i: pid $!, port $port, temp folder $dir/tmp, log $dir/log"
  done
  for i in $(seq 1 "$n"); do  # ready once its tabs' models are loaded
    port=$((BASE_PORT + i))
    for _ in $(seq 1 300); do
      [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")" = 200 ] && break
      ours "$RUN_DIR/replica-$i/pid" playground || die "replica $i exited; see $RUN_DIR/replica-$i/log"
      sleep 1
    done
    echo "replica $i ready: $(curl -s "http://127.0.0.1:$port/readyz")"
  done
  local list; list="$(IFS=,; echo "${ports[*]}")"
  case "$BALANCER" in
    nginx)
      "$PYTHON" deploy/render.py nginx --ports "$list" --listen "$LISTEN" --run-dir "$RUN_DIR" \
        ${ROOT_PATH:+--root-path "$ROOT_PATH"} --out "$RUN_DIR/nginx.conf"
      ours "$RUN_DIR/nginx.pid" nginx && stop_pid_file "$RUN_DIR/nginx.pid" nginx 10 QUIT
      nginx -c "$RUN_DIR/nginx.conf" -e "$RUN_DIR/nginx-error.log"
      echo "nginx on http://$LISTEN${ROOT_PATH}/ (pid $(cat "$RUN_DIR/nginx.pid"))" ;;
    haproxy)
      "$PYTHON" deploy/render.py haproxy --ports "$list" --listen "$LISTEN" --run-dir "$RUN_DIR" \
        ${ROOT_PATH:+--root-path "$ROOT_PATH"} --out "$RUN_DIR/haproxy.cfg"
      ours "$RUN_DIR/haproxy.pid" haproxy && stop_pid_file "$RUN_DIR/haproxy.pid" haproxy 10 USR1
      haproxy -D -f "$RUN_DIR/haproxy.cfg" -p "$RUN_DIR/haproxy.pid"
      echo "haproxy on http://$LISTEN${ROOT_PATH}/ (pid $(cat "$RUN_DIR/haproxy.pid"))" ;;
    none) echo "no balancer (BALANCER=none)" ;;
    *) die "BALANCER must be nginx, haproxy or none, got '$BALANCER'" ;;
  esac
}

stop() {
  local pid_file
  for pid_file in "$RUN_DIR"/replica-*/pid; do
    [ -e "$pid_file" ] || continue
    ours "$pid_file" playground && kill -TERM "$(cat "$pid_file")"  # all drain at once
  done
  for pid_file in "$RUN_DIR"/replica-*/pid; do
    [ -e "$pid_file" ] || continue
    stop_pid_file "$pid_file" playground $((${DRAIN%.*} + 10)) TERM
    echo "stopped $(dirname "$pid_file")"
  done
  [ -e "$RUN_DIR/nginx.pid" ] && stop_pid_file "$RUN_DIR/nginx.pid" nginx 10 QUIT && echo "stopped nginx"
  [ -e "$RUN_DIR/haproxy.pid" ] && stop_pid_file "$RUN_DIR/haproxy.pid" haproxy 10 USR1 && echo "stopped haproxy"
  return 0
}

status() {
  local pid_file dir port
  for pid_file in "$RUN_DIR"/replica-*/pid; do
    [ -e "$pid_file" ] || { echo "no replicas in $RUN_DIR"; break; }
    dir="$(dirname "$pid_file")"; port=$((BASE_PORT + ${dir##*-}))
    if ours "$pid_file" playground; then
      echo "$(basename "$dir"): pid $(cat "$pid_file"), port $port, $(grep VmRSS "/proc/$(cat "$pid_file")/status" | tr -s ' '), temp $(du -sh "$dir/tmp" | cut -f1), ready: $(curl -s "http://127.0.0.1:$port/readyz")"
    else
      echo "$(basename "$dir"): not running"
    fi
  done
  for b in nginx haproxy; do ours "$RUN_DIR/$b.pid" "$b" && echo "$b: pid $(cat "$RUN_DIR/$b.pid")"; done
  return 0
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: deploy/replicas.sh start [N] | stop | status" >&2; exit 2 ;;
esac
