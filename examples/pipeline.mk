# The whole chain as Make rules: `make -f examples/pipeline.mk MANIFEST=... WORK=...`.
# Each target is an artifact's mmcli.json, which mmcli writes last and only when the
# artifact's content changes, so a second `make` does nothing and a change reruns only
# the stages downstream of it. mmcli also checks content hashes itself: a stage whose
# inputs are unchanged says "up-to-date" and leaves its output untouched.
MMCLI ?= mmcli
MANIFEST ?= sample_data/manifest.csv
WORK ?= work
FLAGS ?=

all: $(WORK)/eval/mmcli.json

$(WORK)/prep/mmcli.json: $(MANIFEST)
	$(MMCLI) preprocess $(MANIFEST) --out $(WORK)/prep $(FLAGS)

$(WORK)/feats/mmcli.json: $(WORK)/prep/mmcli.json
	$(MMCLI) extract-features $(WORK)/prep --out $(WORK)/feats $(FLAGS)

$(WORK)/fused/mmcli.json: $(WORK)/feats/mmcli.json
	$(MMCLI) fuse $(WORK)/feats --out $(WORK)/fused --method concat $(FLAGS)

$(WORK)/model/mmcli.json: $(WORK)/fused/mmcli.json
	$(MMCLI) train $(WORK)/fused --out $(WORK)/model $(FLAGS)

$(WORK)/eval/mmcli.json: $(WORK)/model/mmcli.json $(WORK)/fused/mmcli.json
	$(MMCLI) evaluate $(WORK)/model $(WORK)/fused --out $(WORK)/eval $(FLAGS)
	@cat $(WORK)/eval/report.md

.PHONY: all
