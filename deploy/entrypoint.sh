#!/usr/bin/env bash
# huizhi (慧治) container entrypoint: one image, one role per container.
#
#   migrate            upgrade the database schema once (PostgreSQL advisory lock), then exit;
#                      run it before starting or rolling the replicas (docs/operations.md)
#   portal             a portal replica: `huizhi run --address $HUIZHI_ADDRESS --port $HUIZHI_PORT`
#                      with the sign-in secrets file; never migrates (HUIZHI_MIGRATE=0 unless set)
#   worker             the task queue worker: `huizhi worker`
#   doctor | backup FILE | restore FILE | check | plugins
#                      the same `huizhi` command
#   anything else      run as given (e.g. bash)
#
# Settings come from the environment (HUIZHI_DATABASE_URL, HUIZHI_CONFIG, HUIZHI_LOG_FORMAT, …,
# see docs/deployment.md). Sign-in secrets: either a Streamlit secrets file mounted at
# $HUIZHI_SECRETS, or these variables, which this script writes to that file (mode 0600):
#   HUIZHI_AUTH_REDIRECT_URI  HUIZHI_AUTH_COOKIE_SECRET  HUIZHI_AUTH_CLIENT_ID
#   HUIZHI_AUTH_CLIENT_SECRET HUIZHI_AUTH_SERVER_METADATA_URL
# Each may instead be given as NAME_FILE, a file holding the value (Docker/Kubernetes secrets).
set -euo pipefail

HUIZHI="${HUIZHI_COMMAND:-huizhi}"
SECRETS="${HUIZHI_SECRETS:-/run/huizhi/secrets.toml}"
AUTH_KEYS=(redirect_uri cookie_secret client_id client_secret server_metadata_url)

say() { printf '[huizhi-entrypoint] %s\n' "$*" >&2; }

# NAME or NAME_FILE (the file's content, without a trailing newline) -> stdout
value_of() {
    local name="$1" file_var="${1}_FILE"
    if [[ -n "${!name:-}" ]]; then
        printf '%s' "${!name}"
    elif [[ -n "${!file_var:-}" ]]; then
        [[ -r "${!file_var}" ]] || { say "ERROR: $file_var=${!file_var} is not a readable file"; return 1; }
        local content
        content="$(cat -- "${!file_var}")"
        printf '%s' "$content"
    fi
}

write_secrets_from_env() {
    local key var file_var given=0 missing=()
    for key in "${AUTH_KEYS[@]}"; do
        var="HUIZHI_AUTH_${key^^}" file_var="HUIZHI_AUTH_${key^^}_FILE"
        if [[ -n "${!var:-}" || -n "${!file_var:-}" ]]; then given=1; else missing+=("$var"); fi
    done
    if (( ! given )); then
        [[ -r "$SECRETS" ]] && return 0
        say "ERROR: no sign-in settings: mount a Streamlit secrets file with an [auth] section at $SECRETS"
        say "       (HUIZHI_SECRETS) or set ${missing[*]} (or their _FILE variants)"
        return 64
    fi
    if (( ${#missing[@]} )); then
        say "ERROR: sign-in settings incomplete, missing: ${missing[*]} (or their _FILE variants)"
        return 64
    fi
    mkdir -p -- "$(dirname -- "$SECRETS")"
    local values=() value
    for key in "${AUTH_KEYS[@]}"; do
        value="$(value_of "HUIZHI_AUTH_${key^^}")" || return 66
        values+=("$key" "$value")
    done
    # TOML strings written by Python's json (a JSON string is a valid TOML basic string): no
    # shell quoting of secrets that may contain quotes or backslashes
    (umask 077 && python3 - "$SECRETS" "${values[@]}" <<'PY'
import json, os, sys
path, pairs = sys.argv[1], sys.argv[2:]
lines = ["# written by huizhi-entrypoint from HUIZHI_AUTH_* at container start", "[auth]"]
lines += [f"{pairs[i]} = {json.dumps(pairs[i + 1])}" for i in range(0, len(pairs), 2)]
with open(path, "w", encoding="utf-8") as fh:
    fh.write("\n".join(lines) + "\n")
os.chmod(path, 0o600)
PY
    ) || { say "ERROR: cannot write $SECRETS"; return 73; }
    say "sign-in settings written to $SECRETS from HUIZHI_AUTH_*"
}

# every role reads connector secrets ([connectors.*]) from the same file (huizhi.config)
[[ -r "$SECRETS" ]] && export HUIZHI_SECRETS="$SECRETS"

role="${1:-portal}"
[[ $# -gt 0 ]] && shift
case "$role" in
    migrate)
        say "migrating the database schema (once, under the schema lock)"
        exec "$HUIZHI" migrate "$@"
        ;;
    portal)
        export HUIZHI_MIGRATE="${HUIZHI_MIGRATE:-0}"  # replicas refuse an old schema; `migrate` upgrades it
        write_secrets_from_env || exit $?
        exec "$HUIZHI" run --address "${HUIZHI_ADDRESS:-0.0.0.0}" --port "${HUIZHI_PORT:-8501}" \
            --secrets "$SECRETS" "$@"
        ;;
    worker)
        export HUIZHI_MIGRATE="${HUIZHI_MIGRATE:-0}"
        exec "$HUIZHI" worker "$@"
        ;;
    doctor)
        if [[ -r "$SECRETS" ]] || write_secrets_from_env; then exec "$HUIZHI" doctor --secrets "$SECRETS" "$@"; fi
        exec "$HUIZHI" doctor "$@"
        ;;
    backup | restore | check | plugins)
        exec "$HUIZHI" "$role" "$@"
        ;;
    *)
        exec "$role" "$@"
        ;;
esac
