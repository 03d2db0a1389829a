"""Gets credentials from a Roles Anywhere endpoint with AWS Labs' iam-rolesanywhere-session,
then calls STS GetCallerIdentity with them, and prints both as one JSON object.

Run by tests/it/emulator_clients.rs against the emulator; it trusts the emulator's CA through
the library's `verify` option (a CA bundle path), never by turning verification off.
"""

import argparse
import json

from iam_rolesanywhere_session import IAMRolesAnywhereSession


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True, help="host:port of the emulator")
    p.add_argument("--ca", required=True)
    p.add_argument("--certificate", required=True)
    p.add_argument("--private-key", required=True)
    p.add_argument("--chain")
    p.add_argument("--region", required=True)
    p.add_argument("--profile-arn", required=True)
    p.add_argument("--role-arn", required=True)
    p.add_argument("--trust-anchor-arn", required=True)
    a = p.parse_args()

    session = IAMRolesAnywhereSession(
        profile_arn=a.profile_arn,
        role_arn=a.role_arn,
        trust_anchor_arn=a.trust_anchor_arn,
        certificate=a.certificate,
        private_key=a.private_key,
        certificate_chain=a.chain,
        region=a.region,
        endpoint=a.endpoint,
        verify=a.ca,
        session_duration=3600,
    )
    boto = session.get_session()
    frozen = boto.get_credentials().get_frozen_credentials()
    sts = boto.client("sts", endpoint_url=f"https://{a.endpoint}", verify=a.ca)
    identity = sts.get_caller_identity()
    print(
        json.dumps(
            {
                "access_key": frozen.access_key,
                "arn": identity["Arn"],
                "account": identity["Account"],
                "user_id": identity["UserId"],
            }
        )
    )


if __name__ == "__main__":
    main()
