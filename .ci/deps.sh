#!/usr/bin/env bash
# Optional test dependencies, installed quietly when missing. Failures are
# tolerated: the tests that need a missing program skip with a message.
#   radicale: the CardDAV connector's integration tests (internal/connectors/carddav)
#   strace: the systemd unit test (e2e)
set -u

have_radicale() {
	command -v radicale >/dev/null 2>&1 || python3 -c 'import radicale' >/dev/null 2>&1
}

if ! have_radicale; then
	echo "installing radicale for the CardDAV tests"
	SUDO=""
	if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; fi
	if command -v apt-get >/dev/null 2>&1; then
		$SUDO apt-get update -qq >/dev/null 2>&1 &&
			DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq radicale >/dev/null 2>&1
	fi
	if ! have_radicale && command -v pip3 >/dev/null 2>&1; then
		pip3 install --quiet --user radicale >/dev/null 2>&1
	fi
	if have_radicale; then
		echo "radicale installed"
	else
		echo "radicale could not be installed; the CardDAV integration tests will skip"
	fi
fi
# strace: the e2e test that checks the systemd unit's system call filter
# against what the daemon really does (e2e/systemd_test.go)
if ! command -v strace >/dev/null 2>&1; then
	echo "installing strace for the systemd unit test"
	SUDO=""
	if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; fi
	if command -v apt-get >/dev/null 2>&1; then
		{ $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq strace; } >/dev/null 2>&1
	fi
	command -v strace >/dev/null 2>&1 && echo "strace installed" || echo "strace could not be installed; the systemd unit test will skip"
fi
exit 0
