#!/usr/bin/env bash
# The page of `sound2scene serve` in a real browser: tests/browser/serve.test.mjs starts the
# server (target/debug/sound2scene serve, the bundled model), drives Debian's Chromium through
# playwright-core (upload, volume, live pictures from a fake microphone, mix, recording) and
# compares the page's pictures with `sound2scene generate`'s. Screenshots go to
# target/browser-tests/. What it needs is installed when missing: Chromium (as root on Debian)
# and the test's npm packages (`npm ci`, from tests/browser/package-lock.json). The binary comes
# from `cargo test --workspace`, which CI runs before this; it is built here when missing.
#
# Usage: scripts/browser_tests.sh [--docs-screenshot docs/serve-page.png]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
        echo "installing Debian's Chromium"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
    else
        echo "error: /usr/bin/chromium is missing; install it (Debian: apt-get install chromium)" \
            "and run again" >&2
        exit 1
    fi
fi

if ! command -v node > /dev/null; then
    echo "error: node is missing; the browser tests run on Node.js 20 or later" >&2
    exit 1
fi

if [ ! -d tests/browser/node_modules ]; then
    echo "installing the browser tests' npm packages (npm ci)"
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

if [ ! -x target/debug/sound2scene ]; then
    echo "building target/debug/sound2scene"
    cargo build --workspace --locked
fi

node tests/browser/serve.test.mjs "$@"
