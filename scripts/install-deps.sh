#!/bin/sh
# Installs the Debian 12 packages tocsin needs, and only those that are missing.
#   install-deps.sh run           build and run tocsind
#   install-deps.sh test          also what the test suite needs (rrdcached, Prometheus...)
#   install-deps.sh packages P... the named packages (benchmarks use this for their peers)
# Packages that ship a service (rrdcached, prometheus) are installed without letting
# their service start: the tests start their own copies on loopback.
set -eu

mode=${1:-run}
run_pkgs="build-essential autoconf automake pkg-config ca-certificates
libevent-dev libcurl4-openssl-dev libssl-dev librrd-dev libpq-dev libesmtp-dev libc-ares-dev
libjansson-dev libyaml-dev libsqlite3-dev libcmocka-dev libvirt-dev rrdtool
libprotobuf-c-dev protobuf-c-compiler libsnappy-dev"
test_pkgs="rrdcached prometheus prometheus-alertmanager python3 python3-pytest python3-requests python3-yaml python3-aiosmtpd clang-format clang procps nginx-light dnsmasq-base openssl iproute2 util-linux groff-base monitoring-plugins-basic postgresql postgresql-contrib chromium chromium-driver victoria-metrics"

case $mode in
run) pkgs=$run_pkgs ;;
test) pkgs="$run_pkgs $test_pkgs" ;;
packages)
	shift
	pkgs="$*"
	;;
*)
	echo "usage: $0 run|test|packages PACKAGE..." >&2
	exit 2
	;;
esac

missing=""
for p in $pkgs; do
	if ! dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "missing Debian packages:$missing" >&2
	echo "run this script as root, or install them with: apt-get install$missing" >&2
	exit 1
fi

echo "installing:$missing"
policy_added=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	policy_added=1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # word splitting of the package list is intended
apt-get install -y -qq --no-install-recommends $missing
if [ "$policy_added" = 1 ]; then
	rm -f /usr/sbin/policy-rc.d
fi
