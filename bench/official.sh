# Sourced by the bench scripts: sets $official to the official helper 1.8.0, from
# RA_BENCH_OFFICIAL (relative to the directory the script was started from) or, by default,
# ../shared/peers/official-1.8.0/aws_signing_helper beside the repository; empty when it is
# not there, after saying so. Expects $start_dir and the repository root as the current folder.
official=${RA_BENCH_OFFICIAL:-../shared/peers/official-1.8.0/aws_signing_helper}
case $official in
  /*) ;;
  *) if [ -n "${RA_BENCH_OFFICIAL:-}" ]; then official=$start_dir/$official; else official=$(pwd)/$official; fi ;;
esac
if [ ! -x "$official" ]; then
  echo "bench: official helper not found at $official (set RA_BENCH_OFFICIAL); measuring without it"
  official=
fi
