#!/usr/bin/env python3
"""Print botocore's RDS IAM auth token for fixed inputs at a fixed time.

    botocore_token.py HOST PORT USER REGION AKID SECRET [SESSION_TOKEN] EPOCH_SECONDS

The oracle for `migrator`'s Rust token generator (functions/migrator/src/aws/rds_token.rs):
it calls botocore's own `generate_db_auth_token` (what `aws rds generate-db-auth-token`
runs) through a real `Session` and `rds` client with static credentials, and prints the
token alone on stdout. Nothing is sent over the network.

How the clock is fixed: botocore's SigV4 signers (`SigV4Auth.add_auth`, and so
`SigV4QueryAuth`, which presigns the token) take "now" from `get_current_datetime()`,
which `botocore/auth.py` imports by name from `botocore.compat` (botocore >= 1.34.x;
checked with botocore 1.44.5, the version `tests/scripts/setup.sh` pins). Patching that
name in `botocore.auth` with `unittest.mock.patch` makes the signer see EPOCH_SECONDS and
changes nothing else (the global `datetime` module is untouched). Older botocore read
`datetime.datetime.utcnow()` directly: with such a version, or when awscrt is installed
(botocore then signs with the CRT, which has its own clock), the script stops with an
error instead of printing a token signed at the wrong time.

Exit codes: 0 token printed, 2 usage, 3 this botocore cannot be clocked this way.
"""

import datetime
import sys
from unittest import mock


def main(argv):
    if len(argv) not in (8, 9):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    host, port, user, region, akid, secret = argv[1:7]
    session_token = argv[7] if len(argv) == 9 else None
    epoch = int(argv[-1])

    import botocore.auth
    import botocore.compat
    import botocore.session

    if not hasattr(botocore.auth, "get_current_datetime"):
        print(
            f"botocore {botocore.__version__}: botocore.auth has no get_current_datetime "
            "to patch; install the version tests/scripts/setup.sh pins",
            file=sys.stderr,
        )
        return 3
    if getattr(botocore.compat, "HAS_CRT", False):
        print("awscrt is installed: botocore would sign with the CRT's clock", file=sys.stderr)
        return 3

    # Naive UTC, as botocore's get_current_datetime() returns by default.
    fixed = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)

    def fixed_now(remove_tzinfo=True):
        return fixed.replace(tzinfo=None) if remove_tzinfo else fixed

    session = botocore.session.Session()
    session.set_credentials(akid, secret, session_token)
    client = session.create_client("rds", region_name=region)
    with mock.patch.object(botocore.auth, "get_current_datetime", fixed_now):
        token = client.generate_db_auth_token(
            DBHostname=host, Port=int(port), DBUsername=user, Region=region
        )
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
