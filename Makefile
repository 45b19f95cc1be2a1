# odooops — PostgreSQL extension (PGXS) plus the pure C++ core it shares with
# the worker. `make help` lists the targets.

EXTENSION   = odooops
EXTVERSION  = 0.1.3
MODULE_big  = odooops

PG_CONFIG  ?= pg_config

CORE_SRCS   = $(sort $(wildcard extension/core/*.cpp))
PG_SRCS     = $(sort $(wildcard extension/pg/*.cpp))
API_SRCS    = $(sort $(wildcard extension/api/*.cpp))
BGW_SRCS    = $(sort $(wildcard bgworker/*.cpp))
OBJS        = $(patsubst %.cpp,%.o,extension/module.cpp $(CORE_SRCS) $(PG_SRCS) $(API_SRCS) $(BGW_SRCS))

SQL_SOURCES = $(sort $(wildcard extension/sql/*.sql))
UPGRADES    = $(sort $(wildcard extension/upgrade/$(EXTENSION)--*--*.sql))
DATA_built  = $(EXTENSION)--$(EXTVERSION).sql $(EXTENSION).control
DATA        = $(UPGRADES)

REGRESS      = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --inputdir=. --load-extension=plpgsql
ISOLATION    = $(patsubst tests/isolation/specs/%.spec,%,$(sort $(wildcard tests/isolation/specs/*.spec)))
ISOLATION_OPTS = --inputdir=tests/isolation

# C++17, every warning, PostgreSQL headers as system headers so their
# warnings are not ours. WERROR=1 (CI) turns warnings into errors.
PG_INCLUDEDIR_SERVER := $(shell $(PG_CONFIG) --includedir-server)
PG_CPPFLAGS = -isystem $(PG_INCLUDEDIR_SERVER)
PG_CXXFLAGS = -std=c++17 -Wall -Wextra -Wno-register $(if $(WERROR),-Werror)
SHLIB_LINK  = -lstdc++ -lcurl -lcrypto

EXTRA_CLEAN = results regression.diffs regression.out output_iso build

# Debian builds PostgreSQL with LLVM; PGXS would emit bitcode with clang
# in C++14 mode. odooops does not need JIT inlining of its functions.
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)


$(EXTENSION)--$(EXTVERSION).sql: $(SQL_SOURCES)
	cat $^ > $@

$(EXTENSION).control: control/$(EXTENSION).control
	cp $< $@

# The regress suite 84_github_edge_cases replays GitHub's example payloads,
# which an npm package brings (tests/harness/package.json).
installcheck: harness-npm
harness-npm:
	tests/harness/npm_deps.sh

.PHONY: help unit test run format format-check harness-npm install-worker
help:
	@echo "make                 build the extension"
	@echo "make install         install the extension into $(shell $(PG_CONFIG) --pkglibdir), and the worker, its steps,"
	@echo "                     the odooops command and the systemd unit under WORKER_PREFIX (/usr/local)"
	@echo "make unit            build and run the GoogleTest suite (pure C++)"
	@echo "make test            everything: unit, pg_regress, isolation, multi-process (tests/run_all.sh)"
	@echo "make format          clang-format every C++ file (make format-check: only check)"

unit:
	cmake -S . -B build >/dev/null
	cmake --build build -j2
	cd build && ctest --output-on-failure

# `make install` installs the worker, its steps, the command-line tools and
# the systemd unit too (CMakeLists.txt), under WORKER_PREFIX; DESTDIR is
# honoured as for the extension.
# INSTALL_WORKER=no installs the extension alone (the Debian packages
# install the extension per PostgreSQL major and the worker apart).
WORKER_PREFIX ?= /usr/local
INSTALL_WORKER ?= yes
ifeq ($(INSTALL_WORKER),yes)
install: install-worker
endif
install-worker:
	cmake -S . -B build >/dev/null
	cmake --build build --target odooops-worker -j2
	DESTDIR="$(DESTDIR)" cmake --install build --prefix "$(WORKER_PREFIX)" >/dev/null

test:
	tests/run_all.sh

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h')

format-check:
	clang-format --dry-run -Werror $$(git ls-files '*.cpp' '*.h')
