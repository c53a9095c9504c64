#!/usr/bin/env bash
# The whole csi-scst test suite, as CI runs it (.ci/run calls exactly this).
#   - installs what the suite needs (apt packages; NuGet packages through restore)
#   - builds everything with warnings as errors
#   - runs every suite: unit tests, host integration tests (real gRPC sockets, tgtd, Ceph, loop
#     devices, helm), the SCST model's own tests, and the real-kernel VM harness
#   - ends with one line: "N passed, N failed, N skipped" (all suites together)
# Fails when any suite fails or runs no test. Set CSI_SCST_SKIP_VM=1 to leave out the VM harness
# (for a quick local run; CI never sets it).
set -uo pipefail
# Everything runs inside main(), so bash has read the whole file before it starts: editing this
# script while a run is in progress cannot change what that run does.
main() {
cd "$(dirname "$0")/.."
root=$PWD
art=$root/artifacts/test
rm -rf "$art"
mkdir -p "$art"

log() { printf '==> %s\n' "$*"; }
started=$(date +%s)

log "installing dependencies"
scripts/install-deps.sh test || { echo "dependency installation failed"; exit 1; }

# The VM image takes minutes to build from nothing; start it first, in the background, while .NET builds
# and the host suites run.
vm_enabled=0
if [ "${CSI_SCST_SKIP_VM:-0}" != 1 ] && [ -x tests/vm/build-image.sh ]; then
  vm_enabled=1
  log "building the VM image in the background (log: artifacts/test/vm-image.log)"
  tests/vm/build-image.sh >"$art/vm-image.log" 2>&1 &
  vm_image_pid=$!
fi

log "building (Release, warnings as errors)"
if ! dotnet build CsiScst.sln -c Release -nologo -clp:ErrorsOnly >"$art/build.log" 2>&1; then
  cat "$art/build.log"
  echo "0 passed, 1 failed"
  exit 1
fi

total_passed=0
total_failed=0
total_skipped=0
failed_suites=()

# Reads the counters of a .trx file into the totals; a suite that ran no test counts as a failure.
count_trx() {
  local name=$1 trx=$2
  local counters passed failed skipped total
  if [ ! -f "$trx" ]; then
    echo "suite $name produced no results"
    failed_suites+=("$name")
    total_failed=$((total_failed + 1))
    return
  fi
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)
  attr() { sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p" <<<"$counters"; }
  # xunit's skips are counted as not executed: total - executed.
  total=$(attr total); passed=$(attr passed); failed=$(attr failed); skipped=$(( $(attr total) - $(attr executed) ))
  failed=$((failed + $(attr error) + $(attr timeout) + $(attr aborted)))
  total_passed=$((total_passed + passed))
  total_failed=$((total_failed + failed))
  total_skipped=$((total_skipped + skipped))
  log "suite $name: $passed passed, $failed failed, $skipped skipped (of $total)"
  if [ "$failed" -gt 0 ] || [ "$total" -eq 0 ]; then
    failed_suites+=("$name")
    [ "$total" -eq 0 ] && total_failed=$((total_failed + 1))
  fi
}

run_dotnet_suite() {
  local name=$1 project=$2
  log "suite $name ($project)"
  dotnet test "$project" -c Release --no-build --nologo \
    --logger "trx;LogFileName=$name.trx" --logger "console;verbosity=minimal" \
    --results-directory "$art" -- RunConfiguration.TreatNoTestsAsError=false >"$art/$name.log" 2>&1
  tail -n 3 "$art/$name.log"
  count_trx "$name" "$art/$name.trx"
}

for project in tests/*/*.csproj; do
  grep -q '<IsTestProject>true</IsTestProject>' "$project" || continue
  name=$(basename "$project" .csproj)
  run_dotnet_suite "$name" "$project"
done

if [ "$vm_enabled" = 1 ]; then
  log "real-kernel VM harness"
  if ! wait "$vm_image_pid"; then
    tail -n 30 "$art/vm-image.log"
    echo "VM image build failed"
    failed_suites+=("vm")
    total_failed=$((total_failed + 1))
  else
    tests/vm/run-suite.sh "$art/vm" >"$art/vm.log" 2>&1
    vm_status=$?
    tail -n 40 "$art/vm.log"
    if [ -f "$art/vm/counts" ]; then
      # shellcheck disable=SC1091
      . "$art/vm/counts"
      total_passed=$((total_passed + ${passed:-0}))
      total_failed=$((total_failed + ${failed:-0}))
      total_skipped=$((total_skipped + ${skipped:-0}))
      if [ "$vm_status" -ne 0 ] || [ $(( ${passed:-0} + ${failed:-0} )) -eq 0 ]; then
        failed_suites+=("vm")
        [ $(( ${passed:-0} + ${failed:-0} )) -eq 0 ] && total_failed=$((total_failed + 1))
      fi
    else
      failed_suites+=("vm")
      total_failed=$((total_failed + 1))
    fi
  fi
fi

elapsed=$(( $(date +%s) - started ))
log "finished in $((elapsed / 60)) min $((elapsed % 60)) s; results in artifacts/test/"
if [ ${#failed_suites[@]} -gt 0 ]; then
  log "failing suites: ${failed_suites[*]}"
fi
if [ "$total_skipped" -gt 0 ]; then
  echo "$total_passed passed, $total_failed failed, $total_skipped skipped"
else
  echo "$total_passed passed, $total_failed failed"
fi
[ ${#failed_suites[@]} -eq 0 ]
}

main "$@"
