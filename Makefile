# syncwall build, test and lab entry points. `make help` lists them.
.DELETE_ON_ERROR:
.DEFAULT_GOAL := all
SHELL := /bin/bash

Q := $(if $(V),,@)
BUILD := build
CLANG ?= clang
# uapi headers; asm/ lives in the multiarch directory clang -target bpf does not search
BPF_CFLAGS := -O2 -g -Wall -Werror -target bpf -mcpu=v3 -Ibpf/include \
	-I/usr/include/$(shell uname -m)-linux-gnu
NODE_TEST := node --import tsx --test --test-concurrency=1

BPF_HEADERS := $(wildcard bpf/include/*.h) $(wildcard bpf/lib/*.h)
BPF_OBJ := $(BUILD)/syncwall.bpf.o
# bench/xdp-cost.ts compares the data plane with a bare XDP_PASS program and
# a reference (parse + one hash lookup); bench/forwarding.ts drops with xdp_drop
BENCH_BPF_OBJ := $(BUILD)/xdp_pass.bpf.o $(BUILD)/xdp_ref.bpf.o $(BUILD)/xdp_drop.bpf.o
# bench/conn-rate.ts: the short-connection client and server (host programs)
BENCH_AGENTS := $(BUILD)/bench/tcp-conns
LAYOUT_TS := control/src/gen/layout.ts

APT_PACKAGES := clang llvm libbpf-dev bpftool iproute2 iputils-ping ethtool tcpdump \
	iperf3 socat curl netcat-openbsd nftables conntrack make bsdextrautils \
	netsniff-ng openssl vsftpd conntrackd keepalived

.PHONY: all help setup build bpf agents gen ts test test-unit test-bpf test-lab bench bench-quick demo clean

all: build ## build BPF objects, generated code and TypeScript

help: ## list targets
	$(Q)grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

setup: ## install what a fresh Debian 12 machine lacks (apt packages, npm ci)
	$(Q)missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "apt: installing $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	$(Q)if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then npm ci --include=optional --no-audit --no-fund; fi

build: bpf agents gen ts

bpf: $(BPF_OBJ) $(BENCH_BPF_OBJ)

$(BUILD)/%.bpf.o: bpf/%.bpf.c $(BPF_HEADERS)
	@echo "  CLANG $@"
	$(Q)mkdir -p $(BUILD)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/%.bpf.o: bench/%.bpf.c
	@echo "  CLANG $@"
	$(Q)mkdir -p $(BUILD)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# the reference program uses syncwall's key and entry structs
$(BUILD)/xdp_ref.bpf.o: bpf/include/flow_types.h

agents: $(BENCH_AGENTS)

$(BENCH_AGENTS): $(BUILD)/bench/%: bench/agents/%.c
	@echo "  CC    $@"
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CLANG) -O2 -g -Wall -Wextra -Werror -o $@ $<

gen: $(LAYOUT_TS)

$(LAYOUT_TS): $(BPF_OBJ) tools/gen-layout.ts
	@echo "  GEN   $@"
	$(Q)mkdir -p $(dir $@)
	$(Q)node --import tsx tools/gen-layout.ts $(BPF_OBJ) > $@

ts: $(LAYOUT_TS) ## type-check and compile TypeScript to dist/
	@echo "  TSC"
	$(Q)npx tsc -p tsconfig.json

test: setup build test-unit test-bpf test-lab bench-quick ## run every test (bench-quick as a smoke test)

test-unit: build ## unit tests (no root needed)
	$(Q)$(NODE_TEST) test/unit/*.test.ts

test-bpf: build ## packet-level tests of the XDP object (BPF_PROG_TEST_RUN, root)
	$(Q)$(NODE_TEST) test/bpf/*.test.ts

test-lab: build ## network-namespace lab tests with the real daemon (root)
	$(Q)$(NODE_TEST) test/lab/*.test.ts

bench: setup build ## every benchmark, syncwall vs its peers: one table, JSON in build/bench/ (< 30 min)
	$(Q)node --import tsx bench/run.ts

bench-quick: setup build ## every benchmark, short: checks the harness produces numbers (< 3 min)
	$(Q)node --import tsx bench/run.ts --quick --check

demo: setup build ## run the network-namespace lab demo
	$(Q)node --import tsx test/lab/demo.ts

clean: ## remove build output
	$(Q)rm -rf $(BUILD) dist control/src/gen
