#!/usr/bin/env bash
# Install the bearwatch runtime (no torch) as a systemd service on an edge box.
#   sudo deploy/install.sh [--model PATH] [--config PATH] [--openvino]
# --openvino installs onnxruntime-openvino *instead of* onnxruntime (both provide the
# `onnxruntime` module; one venv must never hold both) for `providers: openvino|auto`.
# Re-running upgrades the code and keeps /etc/bearwatch and /var/lib/bearwatch.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
model="$here/deploy/models/demo/model.onnx"
config="$here/deploy/example.yaml"
openvino=0
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    --openvino) openvino=1; shift ;;
    *) echo "usage: $0 [--model PATH] [--config PATH] [--openvino]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "run as root (sudo $0)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 (3.11+) is required" >&2; exit 1; }

install -d -m 0755 /opt/bearwatch /etc/bearwatch
python3 -m venv /opt/bearwatch/venv
/opt/bearwatch/venv/bin/pip install --quiet --upgrade pip
if [ "$openvino" = 1 ]; then
  /opt/bearwatch/venv/bin/pip uninstall --quiet --yes onnxruntime 2>/dev/null || true
  /opt/bearwatch/venv/bin/pip install --quiet -r "$here/deploy/requirements-openvino.txt"
  /opt/bearwatch/venv/bin/pip install --quiet --no-deps "$here"
else
  /opt/bearwatch/venv/bin/pip uninstall --quiet --yes onnxruntime-openvino 2>/dev/null || true
  /opt/bearwatch/venv/bin/pip install --quiet "$here"
fi
install -m 0644 "$here/README.md" /opt/bearwatch/README.md
install -m 0644 "$model" /etc/bearwatch/model.onnx
if [ ! -f /etc/bearwatch/config.yaml ]; then
  sed "s#path: models/demo/model.onnx#path: /etc/bearwatch/model.onnx#; s#path: bearwatch.db#path: /var/lib/bearwatch/bearwatch.db#" \
    "$config" > /etc/bearwatch/config.yaml
  echo "wrote /etc/bearwatch/config.yaml — edit the cameras, then restart the service"
fi
[ -f /etc/bearwatch/env ] || install -m 0600 /dev/null /etc/bearwatch/env
/opt/bearwatch/venv/bin/bearwatch check-config /etc/bearwatch/config.yaml
install -m 0644 "$here/deploy/bearwatch.service" /etc/systemd/system/bearwatch.service
systemctl daemon-reload
echo "installed. start with: systemctl enable --now bearwatch; logs: journalctl -u bearwatch -f"
