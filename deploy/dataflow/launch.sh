#!/usr/bin/env bash
# Launch a firsthand job from the Flex Template built by build.sh.
#
#   deploy/dataflow/launch.sh gs://BUCKET/templates/firsthand.json IMAGE \
#       --input 'gs://BUCKET/crawl/*.warc.gz' --output gs://BUCKET/runs/cc-2026-10 [more parameters]
#
# Parameters are firsthand run's options, as --name value, --name=value, or a bare switch
# (--overwrite). --input may repeat; the patterns travel as one parameter joined by ';'.
# Environment (defaults in brackets): PROJECT [gcloud's], REGION [us-central1],
# TEMP [gs://BUCKET-of-output/tmp], MACHINE [n2-standard-4], MAX_WORKERS [100],
# JOB [firsthand-<utc time>].
set -euo pipefail

if [[ $# -lt 4 ]]; then
  echo "usage: $0 TEMPLATE_GCS_PATH IMAGE --input GLOB --output GS_FOLDER [--name value ...]" >&2
  exit 2
fi
template=$1
image=$2
shift 2

declare -A values=()
order=()
while [[ $# -gt 0 ]]; do
  arg=$1
  shift
  if [[ $arg != --* ]]; then
    echo "error: expected an option (--name), got '$arg'" >&2
    exit 2
  fi
  arg=${arg#--}
  if [[ $arg == *=* ]]; then
    name=${arg%%=*}
    value=${arg#*=}
  elif [[ $# -gt 0 && $1 != --* ]]; then
    name=$arg
    value=$1
    shift
  else
    name=$arg
    value=true
  fi
  name=${name//-/_}
  if [[ $value == *"~"* ]]; then
    echo "error: --$name: '~' cannot be passed through gcloud's parameter list" >&2
    exit 2
  fi
  if [[ -v "values[$name]" ]]; then
    if [[ $name != input ]]; then
      echo "error: --$name given twice" >&2
      exit 2
    fi
    values[input]+=";$value"
  else
    values[$name]=$value
    order+=("$name")
  fi
done
if [[ ! -v "values[output]" || ! -v "values[input]" ]]; then
  echo "error: --input and --output (gs:// paths) are required" >&2
  exit 2
fi

bucket=$(echo "${values[output]}" | cut -d/ -f1-3)
temp=${TEMP:-$bucket/tmp}

# gcloud splits --parameters on commas, which field lists and globs may hold: '^~^' makes
# '~' the separator instead (see `gcloud topic escaping`).
params="^~^sdk_container_image=$image"
for name in "${order[@]}"; do
  params+="~$name=${values[$name]}"
done

gcloud dataflow flex-template run "${JOB:-firsthand-$(date -u +%Y%m%d-%H%M%S)}" \
  ${PROJECT:+--project "$PROJECT"} \
  --region "${REGION:-us-central1}" \
  --template-file-gcs-location "$template" \
  --temp-location "$temp/temp" \
  --staging-location "$temp/staging" \
  --worker-machine-type "${MACHINE:-n2-standard-4}" \
  --max-workers "${MAX_WORKERS:-100}" \
  --parameters "$params"
