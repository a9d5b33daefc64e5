# berth: build, test, demo and benchmark. Every target installs what it needs
# (make deps: apt-get, only for what is missing). Tests, demo and bench need root.
#
#   make build        target/release/berth (statically linked)
#   make test         berth's unit tests, the spec-tests and the bad-input corpus, against berth
#   make test-runc    the spec-tests and the bad-input corpus against runc (RUNC=...)
#   make test-faults  fault injection: creates SIGKILLed midway, forced deletes racing
#                     creates, a fork bomb, memory limits below init's usage; ends with
#                     "faults: N passed, M failed" (RUNTIME=...)
#   make test-cgroupv2  the cgroup tests on cgroup v2: one vm-run boot (../shared/vm/vm-run)
#                     unless this host is pure v2; skipped if neither (RUNTIME=/usr/sbin/runc)
#   make test-cgroups the cgroup tests on this host (v1) and on v2, both counts (RUNTIME=...)
#   make test-systemd the systemd cgroup driver (--systemd-cgroup) and Podman/containerd with
#                     their systemd settings: one vm-run --systemd boot (RUNTIME=...)
#   make test-terminal  run, a resize and exec -t in a pty: Colossal Cave Adventure (RUNTIME=...)
#   make test-engines Podman, containerd (ctr) and Docker driving the runtime end to end (RUNTIME=...)
#   make test-rootless  rootless: an ordinary user (made by the test) runs containers with the
#                     runtime, then rootless Podman does; ends "rootless: N passed, M failed"
#                     (integration/rootless; RUNTIME=...)
#   make test-cri     containerd's CRI with the runtime as a RuntimeClass handler: a pod through
#                     the kubelet's calls (integration/cri; RUNTIME=...)
#   make demo         Colossal Cave Adventure in a container, in this terminal (RUNTIME=...)
#   make bench        berth vs crun vs runc (BENCH_RUNS=30, BENCH_RUNTIMES="label=path ...")
#   make bench-cri    pod start and teardown through CRI, berth vs runc handlers (BENCH_RUNS=20)
#   make bench-systemd  create+start+delete with --systemd-cgroup, berth vs crun vs runc, in
#                     one vm-run --systemd boot: ratios only (BENCH_SD_RUNS=40)

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
BERTH := $(CURDIR)/target/release/berth
CRI_BIN := $(CURDIR)/target/release/cri-tests
RUNTIME ?= $(BERTH)
RUNC ?= /usr/sbin/runc
BENCH_RUNTIMES ?= berth=$(BERTH) crun=crun runc=runc

.PHONY: all deps build build-cri test test-unit test-spec test-bad-input test-faults test-runc test-cgroupv2 test-cgroups test-systemd test-terminal test-engines test-rootless test-cri demo bench bench-cri bench-systemd lint clean

all: build

deps:
	@bash scripts/deps.sh

# berth's binary is linked statically (static-pie; ASLR kept): no shared objects to find,
# map and relocate at each of its starts. Against musl where it can be (scripts/build.sh
# says why: glibc's start-up costs 0.36 ms of CPUID traps per exec in a VM), else against
# glibc. A plain "cargo build --release" still works and gives a dynamically linked berth.
build:
	CARGO=$(CARGO) bash scripts/build.sh

# the CRI test client (integration/cri): its own crate, so that berth's binary stays lean
build-cri:
	$(CARGO) build --release -p cri-tests

# Unit tests run one at a time: several make real cgroups on the host and read accounting
# that a neighbour test's processes would disturb. scripts/test-cgroups.sh runs the cgroup
# tests on this host's cgroups and on cgroup v2 (in a VM) and prints the count of each.
# The bad-input corpus runs last, so the output ends with cargo test's summary lines.
test: deps build build-cri
	$(CARGO) test --release -p berth -- --test-threads=1
	RUNTIME=$(BERTH) $(CARGO) test --release -p spec-tests -- --skip bad_input_corpus --skip faultinj_
	CARGO=$(CARGO) bash scripts/test-faults.sh $(BERTH)
	CARGO=$(CARGO) bash scripts/test-cgroups.sh $(BERTH)
	CARGO=$(CARGO) bash scripts/test-systemd.sh $(BERTH)
	bash integration/terminal/run.sh $(BERTH)
	bash integration/engines/run.sh $(BERTH)
	bash integration/rootless/run.sh $(BERTH)
	CRI_BIN=$(CRI_BIN) bash integration/cri/run.sh $(BERTH)
	RUNTIME=$(BERTH) $(CARGO) test --release -p spec-tests --test bad_input -- --nocapture

test-unit: build
	$(CARGO) test --release -p berth -- --test-threads=1

test-spec: deps build
	RUNTIME=$(BERTH) $(CARGO) test --release -p spec-tests -- --skip bad_input_corpus --skip faultinj_

test-bad-input: deps build
	RUNTIME=$(BERTH) $(CARGO) test --release -p spec-tests --test bad_input -- --nocapture

test-runc: deps
	RUNTIME=$(RUNC) $(CARGO) test --release -p spec-tests -- --skip bad_input_corpus
	RUNTIME=$(RUNC) $(CARGO) test --release -p spec-tests --test bad_input -- --nocapture

# berth is built only when it is the runtime used
test-cgroupv2: deps $(if $(filter $(BERTH),$(RUNTIME)),build)
	CARGO=$(CARGO) bash scripts/test-cgroupv2.sh $(RUNTIME)

test-cgroups: deps $(if $(filter $(BERTH),$(RUNTIME)),build)
	CARGO=$(CARGO) bash scripts/test-cgroups.sh $(RUNTIME)

test-systemd: deps build-cri $(if $(filter $(BERTH),$(RUNTIME)),build)
	CARGO=$(CARGO) bash scripts/test-systemd.sh $(RUNTIME)

test-faults: deps $(if $(filter $(BERTH),$(RUNTIME)),build)
	CARGO=$(CARGO) bash scripts/test-faults.sh $(RUNTIME)

test-terminal: deps $(if $(filter $(BERTH),$(RUNTIME)),build)
	bash integration/terminal/run.sh $(RUNTIME)

test-engines: deps $(if $(filter $(BERTH),$(RUNTIME)),build)
	bash integration/engines/run.sh $(RUNTIME)

test-rootless: deps $(if $(filter $(BERTH),$(RUNTIME)),build)
	bash integration/rootless/run.sh $(RUNTIME)

test-cri: deps build-cri $(if $(filter $(BERTH),$(RUNTIME)),build)
	CRI_BIN=$(CRI_BIN) bash integration/cri/run.sh $(RUNTIME)

demo: deps $(if $(filter $(BERTH),$(RUNTIME)),build)
	bash scripts/demo.sh $(RUNTIME)

bench: deps $(if $(findstring $(BERTH),$(BENCH_RUNTIMES)),build)
	bash scripts/bench.sh $(BENCH_RUNTIMES)

bench-cri: deps build build-cri
	CRI_BIN=$(CRI_BIN) bash integration/cri/run.sh $(BERTH) bench

bench-systemd: deps $(if $(findstring $(BERTH),$(BENCH_RUNTIMES)),build)
	bash scripts/bench-systemd.sh $(BENCH_RUNTIMES)

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	rm -rf --one-file-system build
	$(CARGO) clean
