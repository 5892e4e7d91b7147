"""Creates the (empty) test bucket on a freshly started MinIO.

Used by start.sh. Reads AG_TEST_S3_ENDPOINT, AG_TEST_S3_ACCESS_KEY,
AG_TEST_S3_SECRET_KEY, AG_TEST_S3_REGION and AG_TEST_S3_BUCKET from the
environment; retries until the server accepts the request or the deadline
(seconds, first argument) passes. Exit status 0 means the bucket exists and is empty.
"""

import os
import sys
import time

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError


def main() -> int:
    deadline = time.monotonic() + float(sys.argv[1] if len(sys.argv) > 1 else 60)
    bucket = os.environ["AG_TEST_S3_BUCKET"]
    region = os.environ["AG_TEST_S3_REGION"]
    s3 = boto3.client(
        "s3",
        endpoint_url=os.environ["AG_TEST_S3_ENDPOINT"],
        aws_access_key_id=os.environ["AG_TEST_S3_ACCESS_KEY"],
        aws_secret_access_key=os.environ["AG_TEST_S3_SECRET_KEY"],
        region_name=region,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1},
            connect_timeout=2,
            read_timeout=10,
        ),
    )

    last_error = None
    while time.monotonic() < deadline:
        try:
            try:
                s3.create_bucket(Bucket=bucket)
            except ClientError as e:
                if e.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                    raise
            listing = s3.list_objects_v2(Bucket=bucket, MaxKeys=1)
            if listing.get("KeyCount", 0) != 0:
                print(f"bucket {bucket} is not empty", file=sys.stderr)
                return 1
            return 0
        except (BotoCoreError, ClientError) as e:
            # e.g. "Server not initialized yet" right after /minio/health/live turns 200
            last_error = e
            time.sleep(0.5)
    print(f"could not create bucket {bucket}: {last_error}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
