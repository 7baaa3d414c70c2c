#!/usr/bin/env bash
# Install the Debian packages of recorded real speech used by the real-speech pool.
# Needs root (or sudo). Never run by `make demo`.
set -euo pipefail
PKGS="asterisk-core-sounds-en-wav asterisk-core-sounds-fr-wav asterisk-core-sounds-it-wav \
asterisk-core-sounds-ru-wav asterisk-prompt-it-menardi-wav klettres-data"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! dpkg -s $PKGS >/dev/null 2>&1; then
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $PKGS
fi
