# The two commands of the README: `make demo` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV := .venv
RUNTIME_VENV := .venv-runtime
TOOLKIT := $(VENV)/bin/toolkit
DEMO := demo

.PHONY: demo test lint clean

# The training stack, editable, with the CPU build of torch pinned by constraints.txt.
$(VENV)/.installed: pyproject.toml deploy/pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -c constraints.txt -e ./deploy -e '.[dev]'
	touch $@

# The runtime alone, as users install it: no torch (checked), no training stack.
$(RUNTIME_VENV)/.installed: deploy/pyproject.toml $(shell find deploy/toolkit_deploy -name '*.py')
	$(PYTHON) -m venv $(RUNTIME_VENV)
	$(RUNTIME_VENV)/bin/pip install --quiet --upgrade pip
	$(RUNTIME_VENV)/bin/pip install --quiet --force-reinstall --no-deps ./deploy
	$(RUNTIME_VENV)/bin/pip install --quiet './deploy[test]'
	! $(RUNTIME_VENV)/bin/python -c 'import torch' 2>/dev/null
	touch $@

# Make data → train → export (with parity) → score → evaluate on fresh held-out data, for images,
# then text, audio, video and multi-label images.
demo: $(VENV)/.installed
	rm -rf $(DEMO)
	$(TOOLKIT) data make shapes $(DEMO)/shapes --per-class 300 --seed 0
	$(TOOLKIT) data make shapes $(DEMO)/shapes-new --per-class 60 --seed 1
	$(TOOLKIT) train image-cnn --data $(DEMO)/shapes --out $(DEMO)/run
	$(TOOLKIT) export $(DEMO)/run --out $(DEMO)/model.onnx
	$(TOOLKIT) inspect $(DEMO)/model.onnx
	$(TOOLKIT) score $(DEMO)/model.onnx $(DEMO)/shapes-new --out $(DEMO)/predictions.csv --top-k 2
	head -n 4 $(DEMO)/predictions.csv
	$(TOOLKIT) evaluate $(DEMO)/model.onnx --data $(DEMO)/shapes-new --perturb all --report $(DEMO)/report
	@echo "--- text: shop comments in English, Chinese and French ---"
	$(TOOLKIT) data make text $(DEMO)/text --per-class 300 --seed 0
	$(TOOLKIT) data make text $(DEMO)/text-new --per-class 100 --seed 1
	$(TOOLKIT) train text-bag --data $(DEMO)/text --out $(DEMO)/text-run
	$(TOOLKIT) export $(DEMO)/text-run --out $(DEMO)/text-model.onnx
	$(TOOLKIT) score $(DEMO)/text-model.onnx $(DEMO)/text-new --out $(DEMO)/text-predictions.csv
	head -n 4 $(DEMO)/text-predictions.csv
	$(TOOLKIT) evaluate $(DEMO)/text-model.onnx --data $(DEMO)/text-new
	@echo "--- audio: synthesised sound events, WAV and FLAC at mixed rates and formats ---"
	$(TOOLKIT) data make sounds $(DEMO)/sounds --per-class 200 --seed 0
	$(TOOLKIT) data make sounds $(DEMO)/sounds-new --per-class 50 --seed 1
	$(TOOLKIT) train audio-cnn --data $(DEMO)/sounds --out $(DEMO)/audio-run
	$(TOOLKIT) export $(DEMO)/audio-run --out $(DEMO)/audio-model.onnx
	$(TOOLKIT) score $(DEMO)/audio-model.onnx $(DEMO)/sounds-new --out $(DEMO)/audio-predictions.csv
	head -n 4 $(DEMO)/audio-predictions.csv
	$(TOOLKIT) evaluate $(DEMO)/audio-model.onnx --data $(DEMO)/sounds-new
	@echo "--- video: shapes that grow, move, rotate or shrink; MP4 and WebM ---"
	$(TOOLKIT) data make motion $(DEMO)/motion --per-class 150 --seed 0
	$(TOOLKIT) data make motion $(DEMO)/motion-new --per-class 40 --seed 1
	$(TOOLKIT) train video-cnn --data $(DEMO)/motion --out $(DEMO)/video-run
	$(TOOLKIT) export $(DEMO)/video-run --out $(DEMO)/video-model.onnx
	$(TOOLKIT) score $(DEMO)/video-model.onnx $(DEMO)/motion-new --out $(DEMO)/video-predictions.csv
	head -n 4 $(DEMO)/video-predictions.csv
	$(TOOLKIT) evaluate $(DEMO)/video-model.onnx --data $(DEMO)/motion-new
	@echo "--- multi-label: images with none, one, two or three of four shapes (a table of label sets) ---"
	$(TOOLKIT) data make shapes-multi $(DEMO)/multi --per-class 150 --seed 0
	$(TOOLKIT) data make shapes-multi $(DEMO)/multi-new --per-class 40 --seed 1
	$(TOOLKIT) train image-cnn --data $(DEMO)/multi/labels.csv --out $(DEMO)/multi-run --set train.task=multilabel
	$(TOOLKIT) export $(DEMO)/multi-run --out $(DEMO)/multi-model.onnx
	$(TOOLKIT) score $(DEMO)/multi-model.onnx $(DEMO)/multi-new/images --out $(DEMO)/multi-predictions.csv
	head -n 4 $(DEMO)/multi-predictions.csv
	$(TOOLKIT) evaluate $(DEMO)/multi-model.onnx --data $(DEMO)/multi-new/labels.csv

test: $(VENV)/.installed $(RUNTIME_VENV)/.installed
	$(VENV)/bin/ruff check .
	# tests/toolkit here; tests/deploy (which never imports toolkit) below, where only deploy/ is
	# installed, as users run it: running it in both environments only cost time.
	$(VENV)/bin/python -m pytest --durations=15 tests/toolkit
	@echo "--- runtime tests, with only deploy/ installed: no torch, no training stack ---"
	rm -rf $(RUNTIME_VENV)/suite && mkdir $(RUNTIME_VENV)/suite && cp -r tests README.md $(RUNTIME_VENV)/suite/
	# Run from a copy, so that neither the source tree nor its metadata is on sys.path.
	cd $(RUNTIME_VENV)/suite && ! ../bin/python -c 'import toolkit' 2>/dev/null
	cd $(RUNTIME_VENV)/suite && ../bin/python -m pytest -p no:cacheprovider -rs --durations=15 tests/deploy
	@echo "--- runtime tests on the other Pythons deploy/pyproject.toml declares (pyenv's) ---"
	.ci/runtime-pythons $(shell $(RUNTIME_VENV)/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) $(RUNTIME_VENV) .venv-ort116 .venv-py3.* $(DEMO)
