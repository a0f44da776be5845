#!/usr/bin/env bash
# Install the Debian tools the browser and broker tests drive (chromium, chromedriver, mosquitto clients) when they
# are missing and we may (root with apt-get). Never downloads a browser of its own.
set -u
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v mosquitto_pub >/dev/null 2>&1 || need+=(mosquitto-clients)
command -v mosquitto >/dev/null 2>&1 || need+=(mosquitto)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${need[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null || echo "warning: apt-get could not install ${need[*]}"
else
  echo "warning: missing ${need[*]} (install them with your package manager); the tests that need them will say so"
fi
