# caimg.mk -- the caimg pipeline as a Makefile.
# Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
#
#   make -f pipelines/caimg.mk DATA=recordings OUT=results [CONFIG=lab.conf] -j4
#
# Every recording in DATA -- a TIFF stack NAME.tif, or a directory NAME/ of
# TIFF files that make one recording (ScanImage's file_00001.tif ...) -- goes
# through import, mc, roi, dff and deconv into OUT/NAME/, and gets a report.
# A recording with a stimulus schedule NAME.schedule.tsv and images
# NAME.stimuli.tif beside it also gets a response model (fit) and its
# robustness to adversarial stimuli (attack).
#
# Each stage is one rule, so `make -j` processes recordings in parallel, and a
# rerun redoes only what is missing or older than its inputs or CONFIG.  A
# stage that fails leaves no output (caimg writes under a temporary name),
# so make stops with the stage's error and the earlier results stay; `make
# -k` carries on with the other recordings.  All stage parameters come from
# CONFIG (sections [import], [mc], [roi], ... of `key = value` lines; see
# caimg(1)); each output records the values it used.

CAIMG  ?= caimg
DATA   ?= data
OUT    ?= results
CONFIG ?=

conf    = $(if $(CONFIG),--config $(CONFIG))
confdep = $(CONFIG)

# Stimulus stacks (NAME.stimuli.tif) are not recordings.
names  := $(sort $(basename $(notdir $(filter-out %.stimuli.tif,$(wildcard $(DATA)/*.tif))))) \
          $(sort $(patsubst $(DATA)/%/,%,$(dir $(wildcard $(DATA)/*/*.tif))))
stimulated := $(patsubst $(DATA)/%.schedule.tsv,%,$(wildcard $(DATA)/*.schedule.tsv))

all: $(names:%=$(OUT)/%/report.html)
models: $(stimulated:%=$(OUT)/%/robustness.h5)
.PHONY: all models

.SECONDEXPANSION:
# Every stage's output is a result to keep, not an intermediate file that
# make may delete once the report is built.
.SECONDARY:

# A recording is NAME.tif or every TIFF in NAME/, in name order.
$(OUT)/%/raw.h5: $$(sort $$(wildcard $(DATA)/%.tif $(DATA)/%/*.tif)) $(confdep)
	@mkdir -p $(@D)
	$(CAIMG) import -q $(conf) $(filter %.tif,$^) -o $@

$(OUT)/%/mc.h5: $(OUT)/%/raw.h5 $(confdep)
	$(CAIMG) mc -q $(conf) $< -o $@

$(OUT)/%/roi.h5: $(OUT)/%/mc.h5 $(confdep)
	$(CAIMG) roi -q $(conf) $< -o $@

$(OUT)/%/dff.h5: $(OUT)/%/roi.h5 $(confdep)
	$(CAIMG) dff -q $(conf) $< -o $@

$(OUT)/%/spikes.h5: $(OUT)/%/dff.h5 $(confdep)
	$(CAIMG) deconv -q $(conf) $< -o $@

$(OUT)/%/model.h5: $(OUT)/%/spikes.h5 $(DATA)/%.schedule.tsv $(DATA)/%.stimuli.tif $(confdep)
	$(CAIMG) fit -q $(conf) $< --schedule $(DATA)/$*.schedule.tsv \
	    --stimuli $(DATA)/$*.stimuli.tif -o $@

$(OUT)/%/robustness.h5: $(OUT)/%/model.h5 $(confdep)
	$(CAIMG) attack -q $(conf) $< -o $@

# The report shows the model and its robustness when the recording has them.
$(OUT)/%/report.html: $(OUT)/%/spikes.h5 $$(if $$(filter $$*,$(stimulated)),$(OUT)/%/robustness.h5)
	$(CAIMG) report -q $(conf) $(filter %.h5,$^) -o $@
