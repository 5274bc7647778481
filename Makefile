# Two commands do all set-up on a fresh Debian machine (Python 3.11, root):
#   make demo   install, build a small corpus of both presets and summarise it, then run the quick
#               preset of each paper's experiment (self-refine ~15 min, score-supervised ~20 min,
#               weak-mic ~15 min, majl 14-19 min on 2 cores; DEMO_EXPERIMENTS=score-supervised runs one)
#   make test   install, then run the test suite
PYTHON   ?= python3
VENV     ?= .venv
PY       := $(VENV)/bin/python
PIP      := $(PY) -m pip install -q --disable-pip-version-check
SF2      ?= /usr/share/sounds/sf2/FluidR3_GM.sf2
DEMO_OUT ?= demo-out
DEMO_EXPERIMENTS ?= self-refine score-supervised weak-mic majl
# Use the local CPU wheel of torch when the machine has one (no CUDA download).
WHEELS   := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
APT_PKGS := fluidsynth fluid-soundfont-gm

.PHONY: demo test install sysdeps clean

sysdeps:
	@if ! $(PYTHON) -c "import ensurepip, venv" >/dev/null 2>&1; then \
	  if [ "$$(id -u)" != "0" ]; then \
	    echo "weakmir: Python's venv module is missing; run: sudo apt-get install -y --no-install-recommends python3-venv" >&2; exit 1; \
	  fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null; \
	fi
	@if ! ldconfig -p 2>/dev/null | grep -q libfluidsynth || [ ! -f "$(SF2)" ]; then \
	  if [ "$$(id -u)" != "0" ]; then \
	    echo "weakmir: FluidSynth or the GM SoundFont is missing; run: sudo apt-get update && sudo apt-get install -y --no-install-recommends $(APT_PKGS)" >&2; exit 1; \
	  fi; \
	  echo "installing Debian packages: $(APT_PKGS)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PKGS) >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml constraints.txt Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) $(WHEELS) torch==2.13.0
	$(PIP) $(WHEELS) -c constraints.txt -e ".[test]"
	$(PIP) --no-deps torchcrepe==0.0.24 museval==0.4.1
	touch $@

install: sysdeps $(VENV)/.installed

demo: install
	$(VENV)/bin/weakmir synth $(DEMO_OUT)/chorale --preset chorale --tracks 8 --seconds 20 --noise 0.3 --missing 0.5
	$(VENV)/bin/weakmir synth $(DEMO_OUT)/pop --preset pop --tracks 8 --seconds 20 --noise 0.3 --missing 0.5
	$(VENV)/bin/weakmir info $(DEMO_OUT)/chorale $(DEMO_OUT)/pop
	for e in $(DEMO_EXPERIMENTS); do $(VENV)/bin/weakmir experiment $$e --preset quick --out $(DEMO_OUT)/$$e || exit 1; done

test: install
	$(PY) -m pytest -q -p no:cacheprovider

clean:
	rm -rf $(VENV) $(DEMO_OUT) build src/*.egg-info
