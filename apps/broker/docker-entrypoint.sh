#!/bin/sh
# The broker image's entrypoint. Compose and testcontainers mount PIN and TLS
# secrets owned by whoever made them; as root, copy them to a directory only
# the broker user can read, then run the broker as that user (never as root).
set -eu
if [ "$(id -u)" = 0 ]; then
  if [ -d /run/secrets ]; then
    mkdir -p /run/hsm-broker/secrets
    cp -RL /run/secrets/. /run/hsm-broker/secrets/
    chown -R broker:broker /run/hsm-broker
    chmod -R go-rwx /run/hsm-broker
  fi
  chown broker:broker /var/lib/hsm-broker
  exec setpriv --reuid=broker --regid=broker --init-groups -- "$0" "$@"
fi
exec /usr/local/bin/node /opt/hsm-broker/apps/broker/dist/main.js "$@"
