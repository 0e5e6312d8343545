#!/usr/bin/env bash
# Builds the heavy test tools from the Go module proxy into a cache outside
# the checkout, once per machine, and prints the path of the one asked for:
#
#   scripts/test-tools.sh prometheus   # Prometheus 3 (prometheus, promtool)
#   scripts/test-tools.sh weed         # SeaweedFS, a real S3 implementation
#   scripts/test-tools.sh --no-build prometheus   # the path, or an error when not built
#
# A tool already in the cache is not built again. The first build of each
# takes several minutes (see README: "What make test installs"). Tests ask
# with --no-build: a build would outlast their timeout.
set -euo pipefail

NO_BUILD=
if [ "${1:-}" = --no-build ]; then
	NO_BUILD=1
	shift
fi

GO=${GO:-go}
CACHE=${CF_APP_DISCOVERY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cf-app-discovery}

PROMETHEUS_MODULE=github.com/prometheus/prometheus
PROMETHEUS_MODULE_VERSION=v0.316.0
PROMETHEUS_VERSION=3.16.0

SEAWEEDFS_MODULE=github.com/seaweedfs/seaweedfs
SEAWEEDFS_VERSION=v0.0.0-20261109003541-7506e5f91cd6

say() { echo "test-tools: $*" >&2; }

# missing reports a tool that is not built yet: an error with --no-build.
missing() {
	if [ -n "$NO_BUILD" ]; then
		say "$1 is not built yet: run \`make deps\` or \`scripts/test-tools.sh $2\` (once per machine)"
		exit 1
	fi
}

prometheus() {
	local dir=$CACHE/prometheus-$PROMETHEUS_VERSION
	if [ ! -x "$dir/prometheus" ] || [ ! -x "$dir/promtool" ]; then
		missing "Prometheus $PROMETHEUS_VERSION" prometheus
		say "building Prometheus $PROMETHEUS_VERSION into $dir (first time only, about 20 minutes on 2 cores)"
		mkdir -p "$dir.tmp"
		# Unstamped, Prometheus scrapes with "User-Agent: Prometheus/" and reports no version.
		GOBIN=$dir.tmp GOFLAGS= $GO install \
			-ldflags "-X github.com/prometheus/common/version.Version=$PROMETHEUS_VERSION" \
			"$PROMETHEUS_MODULE/cmd/prometheus@$PROMETHEUS_MODULE_VERSION" \
			"$PROMETHEUS_MODULE/cmd/promtool@$PROMETHEUS_MODULE_VERSION"
		rm -rf "$dir" && mv "$dir.tmp" "$dir"
	fi
	echo "$dir/prometheus"
}

weed() {
	local dir=$CACHE/seaweedfs-$SEAWEEDFS_VERSION
	if [ ! -x "$dir/weed" ]; then
		missing SeaweedFS weed
		say "building SeaweedFS into $dir (first time only, about 7-15 minutes)"
		# go install refuses a module with a replace directive: download the
		# module, then build inside its own directory with its own go.mod.
		local src
		src=$(GOFLAGS= $GO mod download -json "$SEAWEEDFS_MODULE@$SEAWEEDFS_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
		[ -n "$src" ] || { say "could not download $SEAWEEDFS_MODULE@$SEAWEEDFS_VERSION"; exit 1; }
		mkdir -p "$dir.tmp"
		GOFLAGS=-mod=mod $GO build -C "$src" -o "$dir.tmp/weed" ./weed
		rm -rf "$dir" && mv "$dir.tmp" "$dir"
	fi
	echo "$dir/weed"
}

case "${1:-}" in
prometheus) prometheus ;;
promtool) path=$(prometheus) && echo "${path%/prometheus}/promtool" ;;
weed) weed ;;
*) echo "usage: $0 [--no-build] prometheus|promtool|weed" >&2; exit 2 ;;
esac
