# The README's two commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: venv demo test bench clean

$(BIN)/deepprior: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@# Prefer a torch wheel that is already on local disk (CPU build, offline machines): without
	@# this, pip would fetch the multi-GB CUDA build from PyPI. Elsewhere the second line installs
	@# torch from PyPI as usual.
	$(BIN)/python -m pip install -q --no-index --no-deps torch 2>/dev/null || true
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $@

venv: $(BIN)/deepprior

demo: venv
	$(BIN)/deepprior demo --overwrite

test: venv
	$(BIN)/python -m pytest

# Regenerates the measured tables in docs/ (hours on 2 CPU cores; each script runs alone, one after another,
# because two torch processes on 2 cores slow each other badly). Each script's docstring lists its options
# (GPU settings, subsets); bench/gpu.sh is the GPU run.
BENCH_SCRIPTS := \
	"bench/classical.py --sigmas 15 25 50 --size 128" \
	"bench/early_stopping.py denoise --sets set5 set14 --sigmas 15 25 50 --size 128" \
	"bench/speed.py" \
	"bench/time_to_quality.py" \
	"bench/memory_estimate.py 256 denoise-fast" \
	"bench/kill_resume.py" \
	"bench/mri_baselines.py --static-dip 1500" \
	"bench/mri_baselines.py --realistic --tddip 3000" \
	"bench/tddip.py" \
	"bench/gip.py" \
	"bench/mri_speed.py" \
	"bench/real_data.py" \
	"bench/real_dip.py tv" \
	"bench/real_dip.py seeds" \
	"bench/classical_tuned.py --only cartesian" \
	"bench/classical_tuned.py --only radial" \
	"bench/mri_baselines.py --static-only --static-dip 1500 --static-accels 4 8" \
	"bench/hybrid.py --seeds 0" \
	"bench/natural_vs_cbm3d.py f16" \
	"bench/gallery.py" \
	"bench/batch.py" \
	"bench/mapping.py" \
	"bench/motion.py"

bench: venv
	@set -e; for s in $(BENCH_SCRIPTS); do echo "== python $$s"; $(BIN)/python $$s; done

clean:
	rm -rf $(VENV) deepprior-demo .pytest_cache
