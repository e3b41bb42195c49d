# Sourced by the set-up scripts: each step says what it does, and a failure says which step failed and how.
# `step "words"` starts a step; any command that fails afterwards (set -e) is reported with that step's words.
set -euo pipefail
CURRENT_STEP="starting"
SCRIPT_NAME="$(basename "$0")"

step() {
    CURRENT_STEP="$*"
    printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2
}

_report_failure() {
    local status=$? command=$BASH_COMMAND
    printf '%s: FAILED while %s: `%s` exited with status %d (its own output, if any, is above)\n' \
        "$SCRIPT_NAME" "$CURRENT_STEP" "$command" "$status" >&2
}
trap _report_failure ERR

# sudo when not root, for the Debian packages some steps install
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
