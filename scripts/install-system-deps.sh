#!/bin/sh
# Install the Debian packages the tests and the demo talk to, if they are missing.
#   mosquitto, mosquitto-clients  MQTT broker and mosquitto_pub/sub (private instances per test)
#   influxdb                      InfluxDB 1.x server, v1 HTTP API (private instance per test)
#   mbpoll                        an independent Modbus client to check the simulators
#   socat                         pseudo-terminal pairs for Modbus RTU tests
#   chromium                      headless browser for the web page tests
#   fonts-wqy-microhei            a Chinese font, so that the pages' screenshots show 中文 (4 MB)
#   python3-venv                  only when `python3 -m venv` is missing (argument: venv)
#   mosquitto                     alone with the argument demo (`make demo`)
#   gcc, pkg-config, libmodbus-dev the C baseline of `make bench` (argument: bench)
set -eu

need=""
if [ "${1:-}" = "venv" ]; then
    need="python3-venv"
elif [ "${1:-}" = "demo" ]; then
    # the demo's MQTT-only meters need a broker (started by `cpaudit demo` when none runs)
    command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need="$need mosquitto"
elif [ "${1:-}" = "bench" ]; then
    # the C baseline of `make bench` (libmodbus client), besides the test servers
    command -v gcc >/dev/null 2>&1 || need="$need gcc"
    command -v pkg-config >/dev/null 2>&1 || need="$need pkg-config"
    pkg-config --exists libmodbus 2>/dev/null || need="$need libmodbus-dev"
    command -v mosquitto_sub >/dev/null 2>&1 || need="$need mosquitto-clients"
    command -v influxd >/dev/null 2>&1 || need="$need influxdb"
    command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need="$need mosquitto"
else
    command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need="$need mosquitto"
    command -v mosquitto_sub >/dev/null 2>&1 || need="$need mosquitto-clients"
    command -v influxd >/dev/null 2>&1 || need="$need influxdb"
    command -v mbpoll >/dev/null 2>&1 || need="$need mbpoll"
    command -v socat >/dev/null 2>&1 || need="$need socat"
    command -v chromium >/dev/null 2>&1 || need="$need chromium"
    [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need="$need fonts-wqy-microhei"
fi
[ -z "$need" ] && exit 0

echo "cpaudit: installing Debian packages:$need"
if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "cpaudit: need root (or sudo) to apt-get install:$need" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# The packages' own services are not used: each test starts private instances on free ports.
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $need >/dev/null
