#!/bin/bash
# Checks the harness itself in one boot: a passing, a failing, a leaking and a timed-out scenario,
# then one that verifies the leak was cleaned. Asserts what summary.json says about each.
#   tests/vm/selftest.sh [--verbose]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${CSI_SCST_SELFTEST_OUT:-/var/tmp/csi-scst-vm/selftest-$(date -u +%Y%m%dT%H%M%SZ)}
args=(--no-default-scenarios --out "$out" --timeout 900)
for f in "$here"/selftest/*.sh; do args+=(--scenario "$f"); done
rc=0
"$here/run.sh" "${args[@]}" "$@" || rc=$?
s=$out/summary.json
fail=0
check() { # DESCRIPTION JQ-EXPRESSION
    if jq -e "$2" "$s" >/dev/null; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi
}
sc() { printf '.scenarios[] | select(.name == "%s")' "$1"; }
[ "$rc" -ne 0 ] && echo "ok   run.sh exited non-zero ($rc)" || { echo "FAIL run.sh exited 0"; fail=1; }
check "overall failed" '.passed == false'
check "all 5 reported" '[.scenarios[].name] | contains(["01-pass", "02-fail", "03-leak", "04-timeout", "05-clean-after-leak"])'
check "01-pass passed with 2 steps" "$(sc 01-pass) | .passed and (.steps | length == 2) and .failure == null"
check "02-fail failed with exit 1 after 2 steps" "$(sc 02-fail) | (.passed | not) and .exit_code == 1 and (.steps | length == 2)"
check "02-fail excerpt is the failing step" "$(sc 02-fail) | (.failure | contains(\"boom-output\") and contains(\"FAIL fails on purpose\") and (contains(\"not-reached\") | not))"
check "03-leak failed as left behind" "$(sc 03-leak) | .exit_code == 99 and (.failure | contains(\"left behind\") and contains(\"leakvg\"))"
check "04-timeout failed with 124" "$(sc 04-timeout) | .exit_code == 124"
check "05-clean-after-leak passed" "$(sc 05-clean-after-leak) | .passed"
check "boot time measured" '.boot_to_script_seconds > 0'
[ "$fail" -eq 0 ] && echo "selftest: all checks passed" || echo "selftest: FAILED"
exit "$fail"
