#!/bin/sh
# Makes the secrets compose.yaml needs, random, in deploy/.env (or the file given), readable by its
# owner only. Compose reads deploy/.env for `docker compose -f deploy/compose.yaml ...`; the stack
# refuses to start without it. Run it once: Postgres takes its password when its volume is first
# made, so new secrets for an existing volume need `docker compose down -v` (which deletes the data).
#   sh deploy/compose-secrets.sh            # writes deploy/.env
#   sh deploy/compose-secrets.sh --force    # replaces it
set -eu

force=no
out=""
for arg in "$@"; do
  case "$arg" in
    --force) force=yes ;;
    -h | --help) sed -n '2,8p' "$0"; exit 0 ;;
    *) out="$arg" ;;
  esac
done
[ -n "$out" ] || out="$(dirname "$0")/.env"

if [ -e "$out" ] && [ "$force" != yes ]; then
  echo "$out exists: keeping its secrets (pass --force to replace them)" >&2
  exit 0
fi

# N random letters and digits (base62, what API key secrets are made of).
random() {
  LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c "$1"
}

umask 077
tmp="$out.tmp.$$"
{
  echo "# Made by deploy/compose-secrets.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ). Keep it out of version control."
  echo "# Services call each other's internal RPCs with this key."
  echo "CORRAL_SERVICE_KEY=$(random 48)"
  echo "# The bootstrap team's API key (CORRAL_API_KEY for the CLI); the compose runner uses it too."
  echo "CORRAL_API_KEY=corral_$(random 12)_$(random 40)"
  echo "POSTGRES_PASSWORD=$(random 32)"
} >"$tmp"
chmod 600 "$tmp"
mv "$tmp" "$out"
echo "wrote $out (CORRAL_API_KEY there is the key for the CLI)" >&2
