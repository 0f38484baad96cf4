# Two commands for a fresh machine: `make demo` and `make test`.
# Each creates .venv if missing and installs what it needs. Where no NVIDIA GPU is
# present, the CPU build of torch is installed first so that no multi-GB CUDA build
# is pulled in; override with `make TORCH_SPEC="torch==2.13.0" ...` on a GPU machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.neurostat-installed
PYTEST_ARGS ?=
QUICK ?=

.PHONY: demo test bench paper mutation venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[test,bench,dask]"
	touch $(STAMP)

demo: $(STAMP)
	MPLBACKEND=Agg $(PY) -m neurostat.demo --out demo_output

test: $(STAMP)
	MPLBACKEND=Agg $(PY) -m pytest -n 2 -q -p no:cacheprovider $(PYTEST_ARGS)

# The paper: runs the vignettes (QUICK=1: with --quick) into paper/build/, reads the committed
# benchmarks/results/*.json (not rerun: `make bench` and benchmarks/ take hours) and compiles
# paper/neurostat.pdf with Typst.
paper: $(STAMP)
	MPLBACKEND=Agg $(PY) paper/build.py $(if $(QUICK),--quick,)

# Mutation testing of the statistical core (not part of `make test`; tests/MUTATION.md):
# pyproject's [tool.mutmut] names the mutated modules and the tests that may kill them.
# MUTANTS narrows the run to mutant-name globs, e.g. MUTANTS="neurostat.engine.penalties*"
# (minutes); the whole core is over 5000 mutants (hours). Survivors: mutants/results.txt.
MUTANTS ?=
MUTATION_CHILDREN ?= 1
mutation: $(STAMP)
	$(VENV)/bin/mutmut run --max-children $(MUTATION_CHILDREN) $(foreach m,$(MUTANTS),"$(m)")
	$(VENV)/bin/mutmut results > mutants/results.txt; cat mutants/results.txt

bench: $(STAMP)
	$(PY) benchmarks/bench_fit.py

clean:
	rm -rf $(VENV) demo_output .pytest_cache paper/build paper/neurostat.pdf
