# bearwatch — two commands on a fresh machine:
#   make demo   install the runtime into .venv and run the daemon on the bundled demo
#   make test   install everything (training extra, test tools, system packages) and run the checks
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
DEB_PACKAGES := ffmpeg gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gi \
	gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-tools systemd \
	mosquitto chromium postgresql


.PHONY: demo test lint system-deps runtime dev clean samples

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

runtime: $(PY)
	$(PIP) install --quiet -e .

dev: $(PY)
	$(PIP) install --quiet -e '.[train,test]'

demo: runtime
	$(VENV)/bin/bearwatch run -c deploy/demo.yaml

# Debian packages the tests use (a real RTSP server, systemd-analyze). Installed only when missing.
system-deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages: $$missing — run: sudo apt-get install $$missing" >&2; exit 1; fi; \
	  echo "installing Debian packages: $$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

lint: dev
	$(VENV)/bin/ruff check monitor training tests
	$(VENV)/bin/ruff format --check monitor training tests
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: system-deps dev lint
	$(PY) -m pytest -q

samples: runtime
	$(PY) sample_videos/make_samples.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
