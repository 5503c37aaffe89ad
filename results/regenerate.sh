#!/usr/bin/env bash
# Rebuilds this project's result store (results/cards and the leaderboard rendered from them) from scratch:
# every bundled checkpoint on the embedded test split (2,000 images, the adversarial suite too), all suites it has
# cards for, one eval each (each suite's card carries its own protocol hash, so the clean card of a clean+c+pd+e
# eval is the clean card); ACL and its SimCLR control also under SLF stretched 10-fold
# (adv.epoch_scale=10: the published 25 epochs are 250 steps on 5,000 images and leave the head underfit).
# About an hour on 2 CPU cores. Usage: bash results/regenerate.sh [RUNS_DIR]
# Smaller stores for a quick check: N_SHIFT=500 evaluates 500 images per C/PD/E condition, N_ADV=200 attacks 200
# images, SHIFT_ADV=0 leaves the adversarial suite out of the SimCLR/random shift runs, SLF10=0 the two SLF x10 runs.
# The shipped store of 2026-12-07: N_SHIFT=500 N_ADV=500 SHIFT_ADV=1 SLF10=0 (2 CPU cores).
# Every card is then verified (fresh random sample of every condition, head re-fitted: --refit) and the records
# signed with the operator key named in results/store.toml: OPERATOR_KEY=path/to/private/key (required; the
# project's key is held by its maintainers and never committed — see docs/leaderboard.md, "Trust model").
set -euo pipefail
: "${OPERATOR_KEY:?set OPERATOR_KEY to the private key of an operator in results/store.toml}"
cd "$(dirname "$0")/.."
RUNS=${1:-runs/results}
N_ADV=${N_ADV:-2000}
SLF10=${SLF10:-1}
SHIFT_ADV=${SHIFT_ADV:-1}
SHIFT=()
[ -n "${N_SHIFT:-}" ] && SHIFT=(--n-shift "$N_SHIFT")
BIN=.venv/bin
rm -rf "$RUNS" results/cards results/evidence results/heads results/verifications results/plots \
  results/LEADERBOARD.md results/leaderboard.html results/LEADERBOARD.tex
mkdir -p results/cards
eval_and_submit() {  # run name, model, suites, extra options
  local run=$1 model=$2 suites=$3; shift 3
  "$BIN/robustbench" eval --model "$model" --suite "$suites" --device cpu --out "$RUNS/$run" "$@"
  "$BIN/robustbench" submit "$RUNS/$run" --to results
}
for model in embedded-simclr-tinyresnet embedded-random-tinyresnet; do
  if [ "$SHIFT_ADV" = 1 ]; then
    eval_and_submit "$model" "$model" clean,c,pd,e,adversarial --n-adv "$N_ADV" "${SHIFT[@]}"
  else
    eval_and_submit "$model" "$model" clean,c,pd,e "${SHIFT[@]}"
  fi
done
for model in embedded-simclr-mpd-tinyresnet embedded-simclr-lcm-tinyresnet; do
  eval_and_submit "$model" "$model" clean,c,pd,e "${SHIFT[@]}"
done
# the adversarial checkpoints and their matched standard-SSL control (32-px recipe), on the whole test split
for model in embedded-simclr32-tinyresnet embedded-acl-tinyresnet embedded-astra-tinyresnet; do
  eval_and_submit "$model" "$model" clean,adversarial --n-adv "$N_ADV"
done
for model in embedded-simclr32-tinyresnet embedded-acl-tinyresnet; do  # ASTrA too when time allows (~25 min)
  [ "$SLF10" = 1 ] || break
  eval_and_submit "$model-slf10" "$model" adversarial --n-adv "$N_ADV" --set adv.epoch_scale=10
done
# every card re-run on a fresh random sample of every condition from its named weights, its probe re-fitted from the
# training split; the outcomes signed into verifications/
"$BIN/robustbench" verify results/cards/*.json --store results --sign "$OPERATOR_KEY" --refit
"$BIN/robustbench" leaderboard build --store results --format latex
