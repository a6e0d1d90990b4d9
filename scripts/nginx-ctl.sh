#!/bin/sh
# Renders nginx/ (plus the LAB_SCENARIO overlay) and drives nginx. One script for both modes:
# native mode calls it from scripts/lab, compose mode from the nginx container's entrypoint.
#
#   nginx-ctl.sh render DIR   render the config into DIR
#   nginx-ctl.sh start        render, test, then run nginx (foreground with LAB_NGINX_FOREGROUND=1)
#   nginx-ctl.sh reload       render into a staging dir, nginx -t it, and only then swap + reload:
#                             a broken edit is refused with nginx's message, the old config serves on
#   nginx-ctl.sh dump         nginx -T of the running config
#
# Compose mode only (unset natively):
#   LAB_NGINX_LOGS=stdio             logs/access.log and logs/error.log -> the stdout and stderr of
#                                    the container's PID 1 (nginx, exec'd by start): both reach
#                                    `docker compose logs` (`docker logs` keeps them apart), also
#                                    from the nginx -t / -s reload that `docker exec` runs later
#   LAB_NGINX_SHUTDOWN_TIMEOUT=5s    worker_shutdown_timeout: bounds a graceful stop (SIGQUIT) or a
#                                    reload while websockets are open (they would hold it for hours)
#   LAB_NGINX_TEMP=DIR               the prefix's tmp/ (request bodies nginx buffers, up to the
#                                    upload limit) is DIR: compose's prefix is a tmpfs, which is
#                                    memory, so that goes to a volume on disk
#
# Either mode, optional:
#   LAB_NGINX_MAIN=FILE              the main file of the rendered tree (default nginx.conf): the
#                                    balancer in front runs balancer.conf (labctl.balancer)
set -eu

# Inputs: every value comes from the caller, nothing is defaulted to one mode's topology here.
# Native mode: scripts/labctl/nginx.py (native_env); compose mode: compose.yaml's nginx service.
: "${LAB_NGINX_SRC:?directory holding nginx.conf and scenarios/}"
: "${LAB_NGINX_PREFIX:?nginx prefix: logs/, run/, tmp/ and conf/ live here}"
: "${LAB_UPSTREAM:?the app server(s): host:port}"
: "${LAB_RESOLVER:?the DNS server that resolves LAB_PROXY_TARGET}"
: "${LAB_HTTPS_PORT:?the public HTTPS port}"
: "${LAB_HTTP_PORT:?the public HTTP port}"
: "${LAB_MAX_UPLOAD_MB:?the upload limit (client_max_body_size), in MiB}"
: "${LAB_MAX_HEADER_KIB:?the largest request header line and response head (large_client_header_buffers, proxy_buffer_size), in KiB}"
: "${LAB_BEHIND_BALANCER_PORT:?the plain-HTTP port on 127.0.0.1 only the balancer connects to}"
: "${LAB_BALANCER_PORT:?the balancer's public HTTPS port (nginx/balancer.conf)}"
: "${LAB_BALANCER_HTTP_PORT:?the balancer's public HTTP port}"
: "${LAB_UPLOAD_DIR:?where the app stores uploads (served by X-Accel-Redirect)}"
: "${LAB_CERT_DIR:?the directory holding server.pem and server-key.pem}"
: "${LAB_HSTS_MAX_AGE:?Strict-Transport-Security max-age in seconds; 0 sends no HSTS header}"
: "${LAB_LIMIT_CONN_UPLOAD:?uploads in flight at once from one client address}"
: "${LAB_LIMIT_CONN_WS:?open websockets at once from one client address}"
: "${LAB_LIMIT_WS_HANDSHAKES:?websocket handshakes a second from one client address}"
: "${LAB_KEEPALIVE_REQUESTS:?requests over one client connection before nginx closes it}"
: "${LAB_SOCKETIO_SLOT_RE:?regex of the app workers' own /socket.io/ host:port (labapp/sioslots.py)}"
# The app's processes as upstream servers (socketio-no-sticky's round robin): natively each
# worker's own port; in Docker the service name, which nginx resolves to every replica.
: "${LAB_SOCKETIO_SLOTS:=server $LAB_UPSTREAM;}"
# Where a new Socket.IO session goes (snippets/socketio-map.conf): natively an upstream{} naming
# the app thrice (a refused handshake is retried); in Docker the service name, every replica.
: "${LAB_SOCKETIO_NEW_TARGET:=$LAB_UPSTREAM}"
# The workers' user when the master runs as root; empty: no user directive.
: "${LAB_NGINX_USER?set it, empty when the master does not run as root}"
# Derived unless given: listen where the public ports are, proxy to the upstream itself.
: "${LAB_PROXY_TARGET:=$LAB_UPSTREAM}"
: "${LAB_LISTEN_HTTPS:=$LAB_HTTPS_PORT}"
: "${LAB_LISTEN_HTTP:=$LAB_HTTP_PORT}"
: "${LAB_PUBLIC_HTTPS_PORT:=$LAB_HTTPS_PORT}"
# The names the lab's certificate is valid for (scripts/certs.sh).
: "${LAB_SERVER_NAMES:=localhost 127.0.0.1 [::1]}"
: "${LAB_SCENARIO:=}"
# Applied after the scenario, like one: the benchmarks' bench-only server (scripts/labctl/bench/nginx).
: "${LAB_NGINX_OVERLAY:=}"
NGINX=${LAB_NGINX_BIN:-nginx}
CONF="$LAB_NGINX_PREFIX/conf"
MAIN="${LAB_NGINX_MAIN:-nginx.conf}"

# HTTP/3: QUIC on the HTTPS port(s) over UDP, advertised with Alt-Svc, only where this nginx was
# built with the module: a `listen ... quic` line fails nginx -t everywhere else (Debian 12's 1.22).
# Sets LAB_LISTEN_QUIC (the HTTPS addresses, or empty: each quic listen line is left out) and
# LAB_ALT_SVC (empty: no header), and says in one line when HTTP/3 is left out.
http3_inputs() {
    built=$("$NGINX" -V 2>&1) || built=""
    case "$built" in
        *--with-http_v3_module*)
            LAB_LISTEN_QUIC=$LAB_LISTEN_HTTPS
            LAB_ALT_SVC="h3=\":$LAB_PUBLIC_HTTPS_PORT\"; ma=86400"
            ;;
        *)
            LAB_LISTEN_QUIC=""
            LAB_ALT_SVC=""
            version=$(printf '%s\n' "$built" | sed -n 's/^nginx version: //p')
            if [ -n "$version" ]; then
                why="$version is built without --with-http_v3_module (nginx -V)"
            else
                why="\`$NGINX -V\` does not run here"
            fi
            echo "nginx-ctl: HTTP/3 left out: $why; HTTPS is HTTP/1.1 and HTTP/2 only" >&2
            ;;
    esac
}

# worker_processes: one per core nginx may keep busy. `auto` counts every core of the host, also
# in a container whose CPU quota allows fewer (compose: LAB_NGINX_CPUS), where the extra workers
# only add memory and processes that its limits must then hold. No quota (native mode): auto.
worker_processes() {
    quota=max
    if [ -r /sys/fs/cgroup/cpu.max ]; then
        read -r quota period </sys/fs/cgroup/cpu.max
    elif [ -r /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then
        quota=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us)
        period=$(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)
    fi
    case "$quota" in
        max | -1) echo auto ;;
        *) echo $(((quota + period - 1) / period)) ;;
    esac
}

# LAB_LISTEN_HTTPS / LAB_LISTEN_HTTP may list several addresses ("127.0.0.1:8443 [::1]:8443"):
# a listen line is repeated once per address, so IPv6 is listed only where the host has it. An
# empty list leaves the line out (LAB_LISTEN_QUIC where nginx has no HTTP/3).
expand_listen() {
    awk -v https="$LAB_LISTEN_HTTPS" -v http="$LAB_LISTEN_HTTP" -v quic="$LAB_LISTEN_QUIC" '
        function expand(token, addresses,    n, i, a, at) {
            at = index($0, token)
            n = split(addresses, a, " ")
            for (i = 1; i <= n; i++)
                print substr($0, 1, at - 1) a[i] substr($0, at + length(token))
        }
        index($0, "{{LAB_LISTEN_HTTPS}}") { expand("{{LAB_LISTEN_HTTPS}}", https); next }
        index($0, "{{LAB_LISTEN_HTTP}}") { expand("{{LAB_LISTEN_HTTP}}", http); next }
        index($0, "{{LAB_LISTEN_QUIC}}") { expand("{{LAB_LISTEN_QUIC}}", quic); next }
        { print }
    ' "$1" >"$1.tmp" && mv "$1.tmp" "$1"
}

# Copies DIR's .conf files (not its scenarios/) into the rendered tree: the baseline first, then a
# scenario or overlay, whose files replace the baseline files of the same relative path.
overlay() {
    (cd "$1" && find . -path ./scenarios -prune -o -type f -name '*.conf' -print) | while read -r f; do
        mkdir -p "$out/$(dirname "$f")"
        cp "$1/$f" "$out/$f"
    done
}

render() {
    out=$1
    rm -rf "$out"
    mkdir -p "$out"
    overlay "$LAB_NGINX_SRC"
    if [ -n "$LAB_SCENARIO" ]; then
        scenario="$LAB_NGINX_SRC/scenarios/$LAB_SCENARIO"
        if [ ! -d "$scenario" ]; then
            echo "nginx-ctl: no scenario '$LAB_SCENARIO' under $LAB_NGINX_SRC/scenarios" >&2
            exit 2
        fi
        overlay "$scenario"
    fi
    if [ -n "$LAB_NGINX_OVERLAY" ]; then
        overlay "$LAB_NGINX_OVERLAY"
    fi
    user_directive=""
    if [ -n "$LAB_NGINX_USER" ]; then user_directive="user $LAB_NGINX_USER;"; fi
    workers=$(worker_processes)
    hsts=""
    if [ "$LAB_HSTS_MAX_AGE" -gt 0 ]; then hsts="max-age=$LAB_HSTS_MAX_AGE"; fi
    http3_inputs
    # A regex in a sed replacement: its backslashes (and sed's & and delimiter) escaped.
    slot_re=$(printf '%s' "$LAB_SOCKETIO_SLOT_RE" | sed 's/[\\&#]/\\&/g')
    find "$out" -type f -name '*.conf' | while read -r f; do
        expand_listen "$f"
        sed -i \
            -e "s|{{LAB_UPSTREAM}}|$LAB_UPSTREAM|g" \
            -e "s|{{LAB_PROXY_TARGET}}|$LAB_PROXY_TARGET|g" \
            -e "s|{{LAB_SOCKETIO_NEW_TARGET}}|$LAB_SOCKETIO_NEW_TARGET|g" \
            -e "s|{{LAB_RESOLVER}}|$LAB_RESOLVER|g" \
            -e "s|{{LAB_LISTEN_HTTPS}}|$LAB_LISTEN_HTTPS|g" \
            -e "s|{{LAB_LISTEN_HTTP}}|$LAB_LISTEN_HTTP|g" \
            -e "s|{{LAB_PUBLIC_HTTPS_PORT}}|$LAB_PUBLIC_HTTPS_PORT|g" \
            -e "s|{{LAB_SERVER_NAMES}}|$LAB_SERVER_NAMES|g" \
            -e "s|{{LAB_MAX_UPLOAD_MB}}|$LAB_MAX_UPLOAD_MB|g" \
            -e "s|{{LAB_MAX_HEADER_KIB}}|$LAB_MAX_HEADER_KIB|g" \
            -e "s|{{LAB_BEHIND_BALANCER_PORT}}|$LAB_BEHIND_BALANCER_PORT|g" \
            -e "s|{{LAB_BALANCER_PORT}}|$LAB_BALANCER_PORT|g" \
            -e "s|{{LAB_BALANCER_HTTP_PORT}}|$LAB_BALANCER_HTTP_PORT|g" \
            -e "s|{{LAB_UPLOAD_DIR}}|$LAB_UPLOAD_DIR|g" \
            -e "s|{{LAB_CERT_DIR}}|$LAB_CERT_DIR|g" \
            -e "s|{{LAB_USER_DIRECTIVE}}|$user_directive|g" \
            -e "s|{{LAB_WORKER_PROCESSES}}|$workers|g" \
            -e "s|{{LAB_HSTS}}|$hsts|g" \
            -e "s|{{LAB_LIMIT_CONN_UPLOAD}}|$LAB_LIMIT_CONN_UPLOAD|g" \
            -e "s|{{LAB_LIMIT_CONN_WS}}|$LAB_LIMIT_CONN_WS|g" \
            -e "s|{{LAB_LIMIT_WS_HANDSHAKES}}|$LAB_LIMIT_WS_HANDSHAKES|g" \
            -e "s|{{LAB_LIMIT_WS_BURST}}|$((LAB_LIMIT_WS_HANDSHAKES * 10))|g" \
            -e "s|{{LAB_KEEPALIVE_REQUESTS}}|$LAB_KEEPALIVE_REQUESTS|g" \
            -e "s|{{LAB_ALT_SVC}}|$LAB_ALT_SVC|g" \
            -e "s#{{LAB_SOCKETIO_SLOT_RE}}#$slot_re#g" \
            -e "s|{{LAB_SOCKETIO_SLOTS}}|$LAB_SOCKETIO_SLOTS|g" \
            "$f"
    done
    if grep -rn '{{LAB_[A-Z_]*}}' "$out" >&2; then
        echo "nginx-ctl: placeholders above have no value" >&2
        exit 2
    fi
}

nginx_cmd() {
    "$NGINX" -p "$LAB_NGINX_PREFIX/" -e logs/error.log "$@"
}

prepare_prefix() {
    mkdir -p "$LAB_NGINX_PREFIX/logs" "$LAB_NGINX_PREFIX/run"
    if [ -n "${LAB_NGINX_TEMP:-}" ]; then
        # A real directory there (a run without LAB_NGINX_TEMP) would get the link inside it.
        if [ ! -L "$LAB_NGINX_PREFIX/tmp" ]; then rm -rf "$LAB_NGINX_PREFIX/tmp"; fi
        ln -sfn "$LAB_NGINX_TEMP" "$LAB_NGINX_PREFIX/tmp"
    else
        mkdir -p "$LAB_NGINX_PREFIX/tmp"
    fi
    if [ "${LAB_NGINX_LOGS:-}" = stdio ]; then
        # Not /dev/stdout: that would be the terminal of whoever runs `nginx -t` through exec.
        ln -sf /proc/1/fd/1 "$LAB_NGINX_PREFIX/logs/access.log"
        ln -sf /proc/1/fd/2 "$LAB_NGINX_PREFIX/logs/error.log"
    fi
}

# Main-context directives given with -g at start; the master keeps them across reloads.
start_globals() {
    if [ -n "${LAB_NGINX_SHUTDOWN_TIMEOUT:-}" ]; then
        printf 'worker_shutdown_timeout %s; ' "$LAB_NGINX_SHUTDOWN_TIMEOUT"
    fi
}

case "${1:-}" in
    render)
        render "${2:?render needs an output directory}"
        ;;
    start)
        # Each proxied websocket holds two descriptors in its worker (client and upstream): the
        # soft open-files limit goes up to the hard one the engine or the shell allows (the
        # workers inherit it; worker_rlimit_nofile cannot go past the hard limit either).
        ulimit -S -n "$(ulimit -H -n)" || echo "nginx-ctl: open files stay at $(ulimit -S -n)" >&2
        prepare_prefix
        render "$CONF"
        globals=$(start_globals)
        nginx_cmd -t -q -c "$CONF/$MAIN" ${globals:+-g "$globals"}
        if [ "${LAB_NGINX_FOREGROUND:-0}" = 1 ]; then
            exec "$NGINX" -p "$LAB_NGINX_PREFIX/" -e logs/error.log -c "$CONF/$MAIN" -g "${globals}daemon off;"
        fi
        nginx_cmd -c "$CONF/$MAIN" ${globals:+-g "$globals"}
        ;;
    reload)
        render "$CONF.next"
        if ! nginx_cmd -t -q -c "$CONF.next/$MAIN"; then
            rm -rf "$CONF.next"
            echo "nginx-ctl: the edited config is refused (nginx's message above); the running config is unchanged" >&2
            exit 1
        fi
        rm -rf "$CONF.prev"
        mv "$CONF" "$CONF.prev"
        mv "$CONF.next" "$CONF"
        nginx_cmd -c "$CONF/$MAIN" -s reload
        echo "nginx-ctl: config reloaded"
        ;;
    dump)
        nginx_cmd -T -q -c "$CONF/$MAIN"
        ;;
    *)
        echo "usage: nginx-ctl.sh render DIR | start | reload | dump" >&2
        exit 2
        ;;
esac
