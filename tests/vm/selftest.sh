#!/bin/bash
# Checks the harness itself in one boot: a passing, a failing, a leaking and a timed-out scenario,
# one that verifies the leak was cleaned, and one that runs a program staged via CSI_SCST_BIN.
# Asserts what summary.json says about each.
#   tests/vm/selftest.sh [--verbose]
set -euo pipefail
{ # parsed whole before it runs
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${CSI_SCST_SELFTEST_OUT:-/var/tmp/csi-scst-vm/selftest-$(date -u +%Y%m%dT%H%M%SZ)}
args=(--no-default-scenarios --out "$out" --timeout 900)
for f in "$here"/selftest/*.sh; do args+=(--scenario "$f"); done
bin=$(mktemp -d "${TMPDIR:-/var/tmp}/csi-scst-selftest-bin.XXXXXX")
trap 'rm -rf "$bin"' EXIT
printf '#!/bin/sh\necho "hello from CSI_SCST_BIN"\n' > "$bin/csi-scst-selftest"
chmod 755 "$bin/csi-scst-selftest"
rc=0
CSI_SCST_BIN=$bin "$here/run.sh" "${args[@]}" "$@" || rc=$?
s=$out/summary.json
fail=0
check() { # DESCRIPTION JQ-EXPRESSION
    if jq -e "$2" "$s" >/dev/null; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi
}
sc() { printf '.scenarios[] | select(.name == "%s")' "$1"; }
[ "$rc" -ne 0 ] && echo "ok   run.sh exited non-zero ($rc)" || { echo "FAIL run.sh exited 0"; fail=1; }
check "overall failed" '.passed == false'
check "all 6 reported" '[.scenarios[].name] | contains(["01-pass", "02-fail", "03-leak", "04-timeout", "05-clean-after-leak", "06-bin"])'
check "01-pass passed with 2 steps" "$(sc 01-pass) | .passed and (.steps | length == 2) and .failure == null"
check "02-fail failed with exit 1 after 2 steps" "$(sc 02-fail) | (.passed | not) and .exit_code == 1 and (.steps | length == 2)"
check "02-fail excerpt is the failing step" "$(sc 02-fail) | (.failure | contains(\"boom-output\") and contains(\"FAIL fails on purpose\") and (contains(\"not-reached\") | not))"
check "03-leak failed as left behind" "$(sc 03-leak) | .exit_code == 99 and (.failure | contains(\"left behind\") and contains(\"leakvg\"))"
check "04-timeout failed with 124" "$(sc 04-timeout) | .exit_code == 124"
check "05-clean-after-leak passed" "$(sc 05-clean-after-leak) | .passed"
check "06-bin passed (CSI_SCST_BIN staged)" "$(sc 06-bin) | .passed"
check "boot time measured" '.boot_to_script_seconds > 0'
[ "$fail" -eq 0 ] && echo "selftest: all checks passed" || echo "selftest: FAILED"
exit "$fail"
}
