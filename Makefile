# SPDX-License-Identifier: Apache-2.0
# Top-level entry points. The build itself is meson + ninja; this file only
# installs what is missing and calls it. See README.md.

BUILD ?= build
SAN ?= build-san
NINJA ?= ninja

.PHONY: all deps build san check demo bench fuzz lab-list clean

all: build

deps:
	@scripts/deps build

# Development builds treat warnings as errors.
$(BUILD)/build.ninja:
	meson setup $(BUILD) --werror

# ASan+UBSan build of the unit and device tests (make check runs it).
$(SAN)/build.ninja:
	meson setup $(SAN) --werror -Db_sanitize=address,undefined -Db_lundef=false

build: deps $(BUILD)/build.ninja
	$(NINJA) -C $(BUILD)

san: deps $(SAN)/build.ninja
	$(NINJA) -C $(SAN)

check:
	@scripts/deps check
	@$(MAKE) --no-print-directory build san
	@scripts/check

demo:
	@scripts/deps build lab
	@$(MAKE) --no-print-directory build
	@tests/lab/run --demo

bench:
	@scripts/deps bench
	@$(MAKE) --no-print-directory build
	@bench/run

# libFuzzer targets (clang, ASan+UBSan, build-fuzz/), 5 minutes each;
# make check runs them for 25 s each.
fuzz:
	@scripts/deps build fuzz
	@scripts/fuzz $${FUZZ_SECONDS:-300}

lab-list:
	@tests/lab/run --list

clean:
	rm -rf $(BUILD) $(SAN) build-fuzz
