# luvhost: `make` builds ./luvhost; see README.md for the rest.

PREFIX  ?= /usr/local
BUILD   ?= build
BIN     ?= luvhost
CC      ?= cc
PKG_CONFIG ?= pkg-config

LUA_CFLAGS := $(shell $(PKG_CONFIG) --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)
LUA_LIBS   := $(shell $(PKG_CONFIG) --libs lua5.4 2>/dev/null || echo -llua5.4)
UV_CFLAGS  := $(shell $(PKG_CONFIG) --cflags libuv 2>/dev/null)
UV_LIBS    := $(shell $(PKG_CONFIG) --libs libuv 2>/dev/null || echo -luv)

WARN := -Wall -Wextra -Wshadow -Wundef -Wwrite-strings -Wstrict-prototypes \
        -Wmissing-prototypes -Wmissing-declarations -Wold-style-definition \
        -Wredundant-decls -Wno-unused-parameter
OPT     ?= -O2 -g
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all \
             -fno-omit-frame-pointer
ifeq ($(SANITIZE),1)
OPT := -O1 -g $(SAN_FLAGS)
SAN_LDFLAGS := $(SAN_FLAGS)
endif

ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(OPT) $(CFLAGS) \
             -Ihost -Ibindings -I$(LLHTTP_INCLUDE) $(LUA_CFLAGS) $(UV_CFLAGS) \
             -MMD -MP
# -Wl,-E exports nothing of ours that C modules need, but keeps the door
# open; the Lua API itself comes from the shared liblua5.4 they resolve.
ALL_LDFLAGS = -Wl,-E $(SAN_LDFLAGS) $(LDFLAGS)
LIBS = $(LUA_LIBS) $(UV_LIBS) -lm -ldl -lpthread

# llhttp's generated C from Debian's node-llhttp, compiled in (not vendored).
LLHTTP_DIR     ?= /usr/share/llhttp
LLHTTP_INCLUDE ?= /usr/share/include/llhttp
LLHTTP_SRC     := llhttp.c api.c http.c

HOST_SRC     := $(wildcard host/*.c)
BINDINGS_SRC := $(wildcard bindings/*.c)
LUA_SRC      := $(shell find lib/lua -name '*.lua' | LC_ALL=C sort)
OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(HOST_SRC) $(BINDINGS_SRC)) \
       $(patsubst %.c,$(BUILD)/obj/llhttp/%.o,$(LLHTTP_SRC)) \
       $(BUILD)/obj/gen/lua_modules.o

.PHONY: all deps test-deps test run bench sanitize valgrind gc-stress install uninstall \
        clean format lint check-format image image-test

all: $(BIN)

$(BIN): $(OBJ)
	$(CC) $(ALL_CFLAGS) -o $@ $(OBJ) $(ALL_LDFLAGS) $(LIBS)

$(BUILD)/obj/%.o: %.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# Third-party code: built with its own flags, not our warning set.
$(BUILD)/obj/llhttp/%.o: $(LLHTTP_DIR)/%.c Makefile
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(OPT) $(CFLAGS) -I$(LLHTTP_INCLUDE) -w -c -o $@ $<

$(BUILD)/obj/gen/lua_modules.o: $(BUILD)/gen/lua_modules.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# lib/lua as bytecode, compiled by the liblua the binary links.
$(BUILD)/embed-lua: scripts/embed-lua.c Makefile
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(WARN) -O1 $(LUA_CFLAGS) -o $@ $< $(LUA_LIBS)

$(BUILD)/gen/lua_modules.c: $(LUA_SRC) $(BUILD)/embed-lua
	@mkdir -p $(dir $@)
	$(BUILD)/embed-lua $@ lib/lua $(LUA_SRC)

-include $(OBJ:.o=.d)

deps:
	@scripts/install-deps

# The specs run `make bench --quick` as a smoke test (spec/bench_spec.lua),
# so they need the bench's packages too.
test-deps:
	@scripts/install-deps --bench

test: test-deps
	@$(MAKE) --no-print-directory all
	@scripts/run-specs ./$(BIN)

run: deps
	@$(MAKE) --no-print-directory all
	./$(BIN) examples/hello.lua

# The benchmark report: luvhost beside Node, nginx, nginx+Lua and a
# thread-per-connection server, idle connections, throughput, CPU per
# request, two cores and startup; build/bench/report.md and PNG charts.
# A benchmark, not a test (scripts/bench/run; ROUNDS, DURATION, ONLY,
# SCENARIOS...). `make bench ARGS=--quick` is a one-minute check.
bench:
	@scripts/install-deps --bench
	@$(MAKE) --no-print-directory all
	@LUVHOST=./$(BIN) scripts/bench/run $(ARGS)

# The same specs on an ASan+UBSan build (build/asan/luvhost). Slower
# builds get a blocking watchdog in proportion (LUVHOST_WARN_BLOCKING).
sanitize: test-deps
	@$(MAKE) --no-print-directory BUILD=build/asan BIN=build/asan/luvhost \
	  SANITIZE=1 build/asan/luvhost
	@ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  LUVHOST_WARN_BLOCKING=$${LUVHOST_WARN_BLOCKING:-1000} \
	  scripts/run-specs build/asan/luvhost

# The specs under valgrind's memcheck (slow).
valgrind: test-deps
	@$(MAKE) --no-print-directory BUILD=build/valgrind \
	  BIN=build/valgrind/luvhost OPT="-O0 -g" build/valgrind/luvhost
	@LUVHOST_VALGRIND=1 LUVHOST_WARN_BLOCKING=$${LUVHOST_WARN_BLOCKING:-10000} \
	  scripts/run-specs build/valgrind/luvhost

# The specs with a full garbage collection after every callback (which
# blocks the loop by design: no blocking watchdog in the outer runs).
gc-stress: all
	@LUVHOST_GC_STRESS=1 LUVHOST_WARN_BLOCKING=$${LUVHOST_WARN_BLOCKING:-0} \
	  scripts/run-specs ./$(BIN)

# The container image (Dockerfile), built with podman in a private store;
# saved as build/luvhost-image.oci.tar. image-test also runs and checks it
# (scripts/image; a few minutes the first time, for debootstrap).
image:
	@scripts/image build

image-test:
	@scripts/image test

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/luvhost

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/luvhost

clean:
	rm -rf $(BUILD) $(BIN)

FORMAT_SRC = $(HOST_SRC) $(BINDINGS_SRC) $(wildcard host/*.h bindings/*.h) \
             scripts/embed-lua.c

format:
	clang-format -i $(FORMAT_SRC)

lint: check-format
	@scripts/lint

check-format:
	clang-format --dry-run -Werror $(FORMAT_SRC)
