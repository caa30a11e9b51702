#!/usr/bin/env bash
# Submit a firsthand run to the Flink cluster through Beam's Flink job server.
#
#   JOB_SERVER=beam-flink-job-server:8099 deploy/flink/submit.sh \
#       --input 's3://BUCKET/crawl/*.warc.gz' --output s3://BUCKET/runs/cc-2026-10 [more firsthand options]
#
# Run it where firsthand is installed (the same version as in the image) and the job
# server is reachable, for example `kubectl port-forward svc/beam-flink-job-server 8099 8098`.
# The Python work runs in each TaskManager's worker-pool sidecar (localhost:50000 there),
# whose image already holds firsthand: the submission environment is not staged.
set -euo pipefail

job_server=${JOB_SERVER:-localhost:8099}
host=${job_server%:*}
artifact_server=${ARTIFACT_SERVER:-$host:8098}

exec firsthand run "$@" \
  --runner PortableRunner \
  --job_endpoint "$job_server" \
  --artifact_endpoint "$artifact_server" \
  --environment_type EXTERNAL \
  --environment_config localhost:50000 \
  --experiments disable_logging_submission_environment \
  --parallelism "${PARALLELISM:-16}"
