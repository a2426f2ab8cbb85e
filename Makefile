# orch: make | make check | make install | make bench | make fuzz | make clean
VERSION = 0.1.0
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
O ?= build

CFLAGS ?= -O2 -g
override CFLAGS += -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror -Ilib -DORCH_VERSION='"$(VERSION)"'
LDLIBS = -Wl,--as-needed -lyaml -ljq -lonig -lsodium -lm  # libcurl: orch-call dlopens it
SAN = -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

TOOLS = $(patsubst tools/%.c,$(O)/bin/%,$(wildcard tools/*.c))
LIBOBJ = $(patsubst lib/%.c,$(O)/lib/%.o,$(wildcard lib/*.c))

all: $(TOOLS) $(O)/bin/orch

$(O)/lib/%.o: lib/%.c lib/orch.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<
$(O)/liborch.a: $(LIBOBJ)
	$(AR) rcs $@ $^
# A tool grown past one file keeps its parts in tools/<name>/ (a header and
# .c files): one line per such tool, as mblaze's GNUmakefile lists them.
parts = $(patsubst %.c,$(O)/%.o,$(wildcard tools/$(1)/*.c))
$(O)/bin/orch-cache: $(call parts,cache)
$(O)/bin/orch-call: $(call parts,call)
$(O)/bin/orch-sched: $(call parts,sched)
$(O)/bin/orch-write: $(call parts,write)
$(O)/bin/orch-plan: $(call parts,plan)
$(O)/bin/orch-events: $(call parts,events)
$(O)/bin/orch-events: LDLIBS += -lsqlite3  # export --sqlite; the other tools do without
$(O)/tools/%.o: tools/%.c lib/orch.h $(wildcard tools/*/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<
$(O)/bin/%: tools/%.c $(O)/liborch.a lib/orch.h $(wildcard tools/*/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(filter %.o,$^) $(O)/liborch.a $(LDLIBS)
$(O)/bin/orch: scripts/orch
	@mkdir -p $(@D)
	sed 's/@VERSION@/$(VERSION)/' scripts/orch > $@ && chmod 755 $@

san:
	$(MAKE) O=$(O)/san CFLAGS='$(SAN)' LDFLAGS='$(SAN)' all
check: all san
	tests/run $(O)/bin $(O)/san/bin
bench: all
	bench/run $(O)/bin
fuzz:
	scripts/deps fuzz && tests/fuzz/run $(O)/fuzz

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man7
	install -m 755 $(TOOLS) $(O)/bin/orch $(DESTDIR)$(BINDIR)
	install -d $(DESTDIR)$(PREFIX)/share/orch && install -m 644 share/orch/prices.tsv $(DESTDIR)$(PREFIX)/share/orch
	for s in 1 5 7; do for m in man/*.$$s; do [ -e "$$m" ] && install -m 644 "$$m" $(DESTDIR)$(MANDIR)/man$$s; done; done; true
	install -Dm 644 completions/orch.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/orch
	install -Dm 644 completions/_orch $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_orch
clean:
	rm -rf $(O)

.PHONY: all san check bench fuzz install clean
.SECONDARY:
