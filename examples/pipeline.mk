# The whole chain as Make rules:
#   make -f examples/pipeline.mk MANIFEST=... WORK=... [CONFIG=examples/config] [-j4]
# Each target is an artifact's mmcli.json, which mmcli writes last and only when the
# artifact is rebuilt. Each stage depends on its upstream and on its own config file, so
# a changed parameter reruns that stage and those below it.
# Make cannot see the images and audio files a manifest names, so preprocess is always
# asked (FORCE): its own check costs a stat per file, and when nothing changed it says
# "up-to-date" and leaves its output (and mtime) alone, so nothing downstream reruns; a
# changed image rebuilds the chain from there.
MMCLI ?= mmcli
MANIFEST ?= sample_data/manifest.csv
WORK ?= work
CONFIG ?= $(dir $(lastword $(MAKEFILE_LIST)))config
FLAGS ?=

all: $(WORK)/eval/mmcli.json

$(WORK)/prep/mmcli.json: $(MANIFEST) $(CONFIG)/preprocess.yaml FORCE
	$(MMCLI) preprocess $(MANIFEST) --out $(WORK)/prep --config $(CONFIG)/preprocess.yaml $(FLAGS)

$(WORK)/feats/mmcli.json: $(WORK)/prep/mmcli.json $(CONFIG)/extract-features.yaml
	$(MMCLI) extract-features $(WORK)/prep --out $(WORK)/feats --config $(CONFIG)/extract-features.yaml $(FLAGS)

$(WORK)/fused/mmcli.json: $(WORK)/feats/mmcli.json $(CONFIG)/fuse.yaml
	$(MMCLI) fuse $(WORK)/feats --out $(WORK)/fused --config $(CONFIG)/fuse.yaml $(FLAGS)

$(WORK)/model/mmcli.json: $(WORK)/fused/mmcli.json $(CONFIG)/train.yaml
	$(MMCLI) train $(WORK)/fused --out $(WORK)/model --config $(CONFIG)/train.yaml $(FLAGS)

$(WORK)/eval/mmcli.json: $(WORK)/model/mmcli.json $(WORK)/fused/mmcli.json $(CONFIG)/evaluate.yaml
	$(MMCLI) evaluate $(WORK)/model $(WORK)/fused --out $(WORK)/eval --config $(CONFIG)/evaluate.yaml $(FLAGS)
	@cat $(WORK)/eval/report.md

FORCE:

.PHONY: all FORCE
