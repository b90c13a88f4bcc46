# Installing everything but the binaries: man pages, bash completion, the
# systemd unit with its sysusers.d, tmpfiles.d and udev companions, and the
# example configuration. Included by the main Makefile, whose `install` and
# `uninstall` run these after the binaries. PREFIX, DESTDIR, SBINDIR, MANDIR,
# SYSCONFDIR and UNITDIR come from there; the packaging case is
#   make install PREFIX=/usr DESTDIR=/tmp/pkg
# The unit names $(SBINDIR)/acud and $(SYSCONFDIR)/acud/acud.conf of this
# install (systemd/acud.service itself names the PREFIX=/usr paths).

BASHCOMPDIR  ?= $(PREFIX)/share/bash-completion/completions
SYSUSERSDIR  ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR  ?= $(PREFIX)/lib/tmpfiles.d
UDEVRULESDIR ?= $(PREFIX)/lib/udev/rules.d
ACU_SHAREDIR ?= $(PREFIX)/share/acud
ACU_CONFDIR  := $(SYSCONFDIR)/acud

ACU_MAN1     := man/acuctl.1
ACU_MAN5     := man/acud.conf.5
ACU_MAN8     := man/acud.8
ACU_PROFILES := $(wildcard etc/profiles.d/*.conf)

.PHONY: install-extra uninstall-extra

install-extra:
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
	  $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) \
	  $(DESTDIR)$(TMPFILESDIR) $(DESTDIR)$(UDEVRULESDIR) $(DESTDIR)$(ACU_CONFDIR)/profiles.d
	install -m 0644 $(ACU_MAN1) $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 $(ACU_MAN5) $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 $(ACU_MAN8) $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 cli/acuctl.bash-completion $(DESTDIR)$(BASHCOMPDIR)/acuctl
	sed -e 's|/usr/sbin/acud|$(SBINDIR)/acud|g' \
	    -e 's|/etc/acud/acud\.conf|$(ACU_CONFDIR)/acud.conf|g' \
	    systemd/acud.service > $(DESTDIR)$(UNITDIR)/acud.service.tmp
	chmod 0644 $(DESTDIR)$(UNITDIR)/acud.service.tmp
	mv -f $(DESTDIR)$(UNITDIR)/acud.service.tmp $(DESTDIR)$(UNITDIR)/acud.service
	install -m 0644 systemd/acud-web.socket $(DESTDIR)$(UNITDIR)/acud-web.socket
	install -m 0644 systemd/acud.sysusers $(DESTDIR)$(SYSUSERSDIR)/acud.conf
	install -m 0644 systemd/acud.tmpfiles $(DESTDIR)$(TMPFILESDIR)/acud.conf
	install -m 0644 systemd/60-acud-gpio.rules $(DESTDIR)$(UDEVRULESDIR)/60-acud-gpio.rules
	@# The unit's network for [mqtt]: a drop-in the admin puts in place (acud.conf(5)).
	install -D -m 0644 systemd/acud-mqtt.conf $(DESTDIR)$(ACU_SHAREDIR)/acud-mqtt.conf
	@# The example configuration, never over one that is there already.
	[ -e $(DESTDIR)$(ACU_CONFDIR)/acud.conf ] || \
	  install -m 0644 etc/acud.conf $(DESTDIR)$(ACU_CONFDIR)/acud.conf
	for f in $(ACU_PROFILES); do \
	  [ -e $(DESTDIR)$(ACU_CONFDIR)/profiles.d/$${f##*/} ] || \
	  install -m 0644 $$f $(DESTDIR)$(ACU_CONFDIR)/profiles.d/ || exit 1; done

# The configuration stays unless it is still the example as shipped.
uninstall-extra:
	rm -f $(DESTDIR)$(MANDIR)/man1/acuctl.1 $(DESTDIR)$(MANDIR)/man5/acud.conf.5 \
	  $(DESTDIR)$(MANDIR)/man8/acud.8 $(DESTDIR)$(BASHCOMPDIR)/acuctl \
	  $(DESTDIR)$(UNITDIR)/acud.service $(DESTDIR)$(UNITDIR)/acud-web.socket \
	  $(DESTDIR)$(SYSUSERSDIR)/acud.conf \
	  $(DESTDIR)$(TMPFILESDIR)/acud.conf $(DESTDIR)$(UDEVRULESDIR)/60-acud-gpio.rules \
	  $(DESTDIR)$(ACU_SHAREDIR)/acud-mqtt.conf
	rmdir $(DESTDIR)$(ACU_SHAREDIR) 2>/dev/null || true
	! cmp -s etc/acud.conf $(DESTDIR)$(ACU_CONFDIR)/acud.conf || \
	  rm -f $(DESTDIR)$(ACU_CONFDIR)/acud.conf
	for f in $(ACU_PROFILES); do \
	  ! cmp -s $$f $(DESTDIR)$(ACU_CONFDIR)/profiles.d/$${f##*/} || \
	  rm -f $(DESTDIR)$(ACU_CONFDIR)/profiles.d/$${f##*/}; done
	rmdir $(DESTDIR)$(ACU_CONFDIR)/profiles.d $(DESTDIR)$(ACU_CONFDIR) 2>/dev/null || true
