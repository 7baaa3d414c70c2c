#!/usr/bin/env bash
# Install the Debian packages of recorded real speech (edgesep.data.voices), and unpack festvox-ru
# (620 read sentences of one male voice) under /usr/local/share/edgesep/festvox-ru: it depends on
# festival, which the corpus does not need. Needs root (or sudo). Never run by `make demo`.
set -euo pipefail
PKGS="asterisk-core-sounds-en-wav asterisk-core-sounds-fr-wav asterisk-core-sounds-it-wav \
asterisk-core-sounds-ru-wav asterisk-prompt-it-menardi-wav asterisk-prompt-fr-armelle \
asterisk-prompt-es-co klettres-data ktuberling-data tuxpaint-stamps-default \
fillets-ng-data-cs fillets-ng-data-nl"
FESTVOX=/usr/local/share/edgesep/festvox-ru
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! dpkg -s $PKGS >/dev/null 2>&1; then
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $PKGS
fi
if [ ! -d "$FESTVOX/usr/share/festival/voices/russian" ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download festvox-ru)
  $SUDO mkdir -p "$FESTVOX.partial"
  $SUDO dpkg-deb -x "$tmp"/festvox-ru_*.deb "$FESTVOX.partial"
  $SUDO rm -rf "$FESTVOX" && $SUDO mv "$FESTVOX.partial" "$FESTVOX"
  rm -rf "$tmp"
fi
