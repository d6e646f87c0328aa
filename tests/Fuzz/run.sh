#!/usr/bin/env bash
# Coverage-guided fuzzing of Broker.Protocol with SharpFuzz + AFL++ (docs/security.md, "Fuzzing the codec").
#   tests/Fuzz/run.sh [SECONDS]     default 600; findings land in tests/Fuzz/findings/ (not committed)
# Installs afl++ (Debian) and the sharpfuzz tool when missing. CPU-heavy: runs under nice -n 10.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-600}

if ! command -v afl-fuzz >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq afl++
fi
export PATH="$PATH:$HOME/.dotnet/tools"
if ! command -v sharpfuzz >/dev/null 2>&1; then
  dotnet tool install -g SharpFuzz.CommandLine --version 2.3.0
fi

# Publish to out/ and instrument only the codec there: bin/ and the test projects keep the plain build.
rm -rf out
dotnet publish Fuzz.csproj -c Release -o out --nologo -v quiet
sharpfuzz out/Broker.Protocol.dll

# The target is `dotnet`, not an AFL-compiled binary; the .NET fork server needs time to start.
export AFL_SKIP_BIN_CHECK=1 AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 AFL_NO_UI=1
# AFL_AUTORESUME: a second run continues from findings/ (its queue) instead of refusing to start.
export AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_FORKSRV_INIT_TMOUT=60000 AFL_AUTORESUME=1
mkdir -p findings
nice -n 10 afl-fuzz -i corpus -o findings -t 2000 -m none -V "$seconds" -- dotnet out/Fuzz.dll
