#!/usr/bin/env bash
# Build and push firsthand's Dataflow image (SDK container + Flex Template launcher), then
# write the Flex Template spec that points at it.
#
#   deploy/dataflow/build.sh REGION-docker.pkg.dev/PROJECT/REPO/firsthand:TAG gs://BUCKET/templates/firsthand.json
#
# Needs docker (with buildx) and gcloud, authenticated for the Artifact Registry repository.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 IMAGE TEMPLATE_GCS_PATH" >&2
  exit 2
fi
image=$1
template=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
launcher_base=gcr.io/dataflow-templates-base/python311-template-launcher-base:latest

# Pin the launcher base by digest, so the image can be rebuilt byte for byte later.
launcher_digest=$(docker buildx imagetools inspect "$launcher_base" --format '{{json .Manifest.Digest}}' | tr -d '"')
launcher_image="${launcher_base%:*}@${launcher_digest}"

# Dataflow workers are x86-64, whatever machine builds the image.
docker build --platform linux/amd64 -f "$root/deploy/dataflow/Dockerfile" \
  --build-arg "LAUNCHER_IMAGE=$launcher_image" -t "$image" "$root"
docker push "$image"

gcloud dataflow flex-template build "$template" \
  --image "$image" \
  --sdk-language PYTHON \
  --metadata-file "$root/deploy/dataflow/metadata.json"

echo "image:    $image (launcher base $launcher_image)"
echo "template: $template"
