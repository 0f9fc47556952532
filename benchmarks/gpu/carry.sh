#!/usr/bin/env bash
# What the GPU check carries (make gpu-carry): benchmarks/gpu/wheels.txt as CPython 3.12 manylinux
# wheels in $CARRY/wheels/, and the FER2013 development archive in $CARRY/ (CARRY: .carry, which
# git ignores). Prints their size: the device tool sends at most 64 MiB with the checkout.
#
#   bash benchmarks/gpu/carry.sh [ARCHIVE]     # default ../shared/data/fer2013-dev.tar.gz
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
python=${PYTHON:-python3}
carry=${CARRY:-.carry}
archive=${1:-../shared/data/fer2013-dev.tar.gz}
[[ -f $archive ]] || { echo "gpu-carry: $archive not found: give the FER2013 archive's path" >&2; exit 1; }
list=benchmarks/gpu/wheels.txt
specs=$(grep -v '^\s*\(#\|$\)' "$list")
built=$(grep 'no wheel on PyPI' <<<"$specs" | cut -d' ' -f1)
wheels=$(grep -v 'no wheel on PyPI' <<<"$specs" | cut -d' ' -f1)
new=$carry/wheels.new
rm -rf "$new" && mkdir -p "$new"
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 \
         manylinux2014_x86_64 manylinux1_x86_64; do
    platforms+=(--platform "$p")
done
# shellcheck disable=SC2086  # one word per requirement
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" -d "$new" $wheels
for spec in $built; do  # pure-Python source distributions
    "$python" -m pip wheel -q --no-deps -w "$new" "$spec"
done
expected=$(grep -cv '^\s*\(#\|$\)' "$list")
got=$(find "$new" -name '*.whl' | wc -l)
(( got == expected )) || { echo "gpu-carry: $got wheels for the $expected lines of $list" >&2; exit 1; }
rm -rf "$carry/wheels" && mv "$new" "$carry/wheels"
rm -f "$carry/fer2013-dev.tar.gz" && cp "$archive" "$carry/fer2013-dev.tar.gz" && chmod u+w "$carry/fer2013-dev.tar.gz"
wheel_bytes=$(du -sb "$carry/wheels" | cut -f1)
archive_bytes=$(stat -c %s "$carry/fer2013-dev.tar.gz")
tree_bytes=$(git ls-files -z | xargs -0 cat | wc -c)
total=$(( wheel_bytes + archive_bytes + tree_bytes ))
echo "gpu-carry: $got wheels, $((wheel_bytes / 1024)) KiB; archive $((archive_bytes / 1024)) KiB;" \
     "with the checkout $((total / 1024)) KiB travel (limit 65536)"
(( total <= 64 * 1048576 )) || { echo "gpu-carry: $((total / 1024)) KiB is over the device tool's 64 MiB" >&2; exit 1; }
