# preprocess and extract-features in N shards side by side, then merged:
#   make -j4 -f examples/shards.mk MANIFEST=... WORK=... [SHARDS=4]
# The merged artifacts hold the same bytes as one unsharded run; continue with
# examples/pipeline.mk's fuse, train and evaluate (or torchrun for train).
MMCLI ?= mmcli
MANIFEST ?= sample_data/manifest.csv
WORK ?= work
SHARDS ?= 4
FLAGS ?=
K := $(shell seq 1 $(SHARDS))

all: $(WORK)/feats/mmcli.json

$(WORK)/prep-%/mmcli.json: $(MANIFEST)
	$(MMCLI) preprocess $(MANIFEST) --shard $*/$(SHARDS) --workers 1 --out $(WORK)/prep-$* $(FLAGS)

$(WORK)/prep/mmcli.json: $(foreach k,$(K),$(WORK)/prep-$(k)/mmcli.json)
	$(MMCLI) merge $(foreach k,$(K),$(WORK)/prep-$(k)) --out $(WORK)/prep $(FLAGS)

$(WORK)/feats-%/mmcli.json: $(WORK)/prep/mmcli.json
	$(MMCLI) extract-features $(WORK)/prep --shard $*/$(SHARDS) --workers 1 --out $(WORK)/feats-$* $(FLAGS)

$(WORK)/feats/mmcli.json: $(foreach k,$(K),$(WORK)/feats-$(k)/mmcli.json)
	$(MMCLI) merge $(foreach k,$(K),$(WORK)/feats-$(k)) --out $(WORK)/feats $(FLAGS)

.PHONY: all
