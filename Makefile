# anonproxy - see README.md. `make run` and `make check` do all set-up.

PREFIX ?= /usr/local
DESTDIR ?=
PYTHON ?= /usr/bin/python3

PKGS := libevent libevent_pthreads libevent_openssl openssl libmaxminddb jansson libcurl
# Debian packages the build, the tests and `make run` need.
DEB_BUILD := gcc make pkg-config libevent-dev libssl-dev libmaxminddb-dev libjansson-dev libcurl4-openssl-dev
DEB_TEST := libcmocka-dev python3-pytest curl openssl mmdb-bin tinyproxy-bin microsocks squid privoxy haproxy chromium
# Installed only when the command is missing: a machine may have Node.js (and
# npm) from elsewhere, which Debian's npm package would conflict with.
DEB_IF_NO_COMMAND := npm
DEB_ALL := $(DEB_BUILD) $(DEB_TEST)

CC ?= cc
CFLAGS_BASE := -std=c11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -Isrc
ifeq ($(SAN),1)
CFLAGS_BASE += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS += $(CFLAGS_BASE) $(PKG_CFLAGS)
LIBS = $(PKG_LIBS) -lpthread

BUILD := build
OBJDIR := $(BUILD)/obj$(if $(filter 1,$(SAN)),-san,)
# One folder per layer (README.md, "Layout"); headers sit beside their sources.
SRCS := $(wildcard src/*.c src/*/*.c)
OBJS := $(patsubst src/%.c,$(OBJDIR)/%.o,$(SRCS))
LIB_OBJS := $(filter-out $(OBJDIR)/main.o,$(OBJS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(OBJDIR)/unit/%,$(UNIT_SRCS))

.PHONY: all deps run check unit structure blackbox bench install clean FORCE

all: $(BUILD)/anonproxy

# The binary is rebuilt when SAN changes, so one path serves both builds.
$(BUILD)/anonproxy: $(OBJS) $(OBJDIR)/.flavour
	$(CC) $(LDFLAGS) -o $@ $(OBJS) $(LIBS)

$(OBJDIR)/.flavour: FORCE
	@mkdir -p $(OBJDIR)
	@if [ "$$(cat $(BUILD)/.flavour 2>/dev/null)" != "$(OBJDIR)" ]; then \
		echo "$(OBJDIR)" > $(BUILD)/.flavour; touch $@; fi

# Each object depends on the headers it includes, as -MMD records them.
$(OBJDIR)/%.o: src/%.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -c -o $@ $<

$(OBJDIR)/unit/%: tests/unit/%.c $(LIB_OBJS)
	@mkdir -p $(OBJDIR)/unit
	$(CC) $(CFLAGS) $(shell pkg-config --cflags cmocka) -o $@ $< $(LIB_OBJS) \
		$(LDFLAGS) $(LIBS) $(shell pkg-config --libs cmocka)

# Installs what is missing when root; otherwise prints the exact command.
deps:
	@missing=""; for p in $(DEB_ALL); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	for c in $(DEB_IF_NO_COMMAND); do command -v $$c >/dev/null || missing="$$missing $$c"; done; \
	if [ -z "$$missing" ]; then echo "deps: all Debian packages present"; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "deps: installing$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "deps: missing packages; run as root:"; echo "  apt-get install -y$$missing"; exit 1; fi

run: deps
	$(MAKE) all geo
	./$(BUILD)/anonproxy -c anonproxy.json

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

# The layering of src/ (README.md, "Layout"), from the #include lines.
structure:
	$(PYTHON) -m pytest -q tests/structure

blackbox: $(BUILD)/anonproxy
	$(PYTHON) -m pytest -q tests/blackbox

check: deps
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) structure
	$(MAKE) blackbox

# Speed and memory against squid, tinyproxy, privoxy and haproxy (tests/bench/README.md).
bench: deps
	$(MAKE) all
	$(PYTHON) tests/bench/bench.py $(BENCH_ARGS)

install: $(BUILD)/anonproxy
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/anonproxy/policies $(DESTDIR)$(PREFIX)/etc
	install -m 0755 $(BUILD)/anonproxy $(DESTDIR)$(PREFIX)/bin/anonproxy
	install -m 0644 anonproxy.json $(DESTDIR)$(PREFIX)/etc/anonproxy.json
	install -m 0644 policies/*.json $(DESTDIR)$(PREFIX)/share/anonproxy/policies/

clean:
	rm -rf $(BUILD)

include mk/geo.mk

-include $(OBJS:.o=.d)
