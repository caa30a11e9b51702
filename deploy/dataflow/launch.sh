#!/usr/bin/env bash
# Launch a firsthand job from the Flex Template built by build.sh.
#
#   deploy/dataflow/launch.sh gs://BUCKET/templates/firsthand.json IMAGE \
#       --input 'gs://BUCKET/crawl/*.warc.gz' --output gs://BUCKET/runs/cc-2026-10 [more parameters]
#
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

params=()
output=""
while [[ $# -gt 0 ]]; do
  name=${1#--}
  name=${name//-/_}
  if [[ $# -lt 2 || $2 == --* ]]; then  # a switch given alone means true
    value=true
    shift
  else
    value=$2
    shift 2
  fi
  [[ $name == output ]] && output=$value
  params+=("$name=$value")
done
if [[ -z $output ]]; then
  echo "error: --output gs://... is required" >&2
  exit 2
fi

bucket=$(echo "$output" | cut -d/ -f1-3)
region=${REGION:-us-central1}
temp=${TEMP:-$bucket/tmp}

# --parameters takes one comma-separated list; a value holding a comma (several field
# paths) needs gcloud's alternate delimiter syntax: see `gcloud topic escaping`.
joined=$(IFS=,; echo "${params[*]}")

gcloud dataflow flex-template run "${JOB:-firsthand-$(date -u +%Y%m%d-%H%M%S)}" \
  ${PROJECT:+--project "$PROJECT"} \
  --region "$region" \
  --template-file-gcs-location "$template" \
  --temp-location "$temp/temp" \
  --staging-location "$temp/staging" \
  --worker-machine-type "${MACHINE:-n2-standard-4}" \
  --max-workers "${MAX_WORKERS:-100}" \
  --additional-experiments use_runner_v2 \
  --parameters "sdk_container_image=$image,$joined"
