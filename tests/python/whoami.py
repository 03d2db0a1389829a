"""Prints which credentials boto3's default chain found and whom STS says they belong to.

Usage: whoami.py STS_ENDPOINT_URL. The environment chooses the provider (IMDS through
AWS_EC2_METADATA_SERVICE_ENDPOINT, ECS through AWS_CONTAINER_CREDENTIALS_FULL_URI).
Output: one JSON object with method, access_key and arn.
"""

import json
import sys

import boto3

session = boto3.Session(region_name="us-east-1")
credentials = session.get_credentials()
if credentials is None:
    sys.exit("boto3 found no credentials")
identity = session.client("sts", endpoint_url=sys.argv[1]).get_caller_identity()
print(
    json.dumps(
        {
            "method": credentials.method,
            "access_key": credentials.get_frozen_credentials().access_key,
            "arn": identity["Arn"],
        }
    )
)
